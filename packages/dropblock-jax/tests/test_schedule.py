"""linear_schedule and the checkpointed train-state schedule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from dropblock_jax import linear_schedule
from dropblock_jax._schedule_check import make_trainer, schedule_round_trip
from dropblock_jax.nnx import DropBlock


def test_values_and_traced_steps():
    assert float(linear_schedule(0, 10, 0.1)) == 0.0
    assert abs(float(linear_schedule(5, 10, 0.1)) - 0.05) < 1e-7
    assert abs(float(linear_schedule(50, 10, 0.1)) - 0.1) < 1e-7
    assert abs(float(linear_schedule(4, 8, 0.25, start=0.05)) - 0.15) < 1e-7
    assert float(linear_schedule(-5, 10, 0.1)) == 0.0  # before the ramp: its start
    assert abs(float(linear_schedule(-5, 10, 0.2, start=0.05)) - 0.05) < 1e-7
    rates = jax.jit(jax.vmap(lambda s: linear_schedule(s, 10, 0.2)))(jnp.arange(12))
    assert rates.shape == (12,)
    assert float(rates[-1]) == pytest.approx(0.2)


def test_the_ramp_never_passes_its_ends_in_float32():
    # Rounded twice, start + (target - start) * 1 can end an ulp above float32(target),
    # and a layer configured with `target` would refuse it.
    for start in (0.0, 0.01, 0.03, 0.07):
        for target in (0.06, 0.1, 0.13, 0.3):
            rates = np.asarray(linear_schedule(jnp.arange(0, 1200, 7), 1000, target, start=start))
            low, high = np.float32(min(start, target)), np.float32(max(start, target))
            assert ((rates >= low) & (rates <= high)).all(), (start, target)
            assert rates[-1] == np.float32(target)
    x = jnp.ones((8, 8, 8, 4))
    DropBlock(0.06, 3, rngs=nnx.Rngs(0))(x, rate=linear_schedule(1000, 1000, 0.06, start=0.01))


def test_validation():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        linear_schedule(0, 10, 1.5)
    with pytest.raises(ValueError, match="total_steps"):
        linear_schedule(0, 0, 0.1)


def test_round_trip_through_a_checkpoint():
    rates, restored, continued = schedule_round_trip(0.1, 10, 0.0, [0, 1, 5, 10, 25], 4)
    assert rates == pytest.approx([0.0, 0.01, 0.05, 0.1, 0.1], abs=1e-6)
    assert restored == pytest.approx(0.04, abs=1e-6)
    assert continued == pytest.approx(0.05, abs=1e-6)


def test_train_steps_compile_once():
    state, train_step, traces = make_trainer(0.2, 5, 0.0, seed=0)
    for _ in range(4):
        train_step(state, jnp.ones((2, 8, 8, 2)))
    assert len(traces) == 1
    assert int(state.step[...]) == 4
