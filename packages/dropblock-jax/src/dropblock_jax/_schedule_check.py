"""The schedule behaviour end to end: an NNX train loop whose optimizer step drives the rate.

The rate is ``linear_schedule(state.step)``, fed to the model as a traced call-time
``rate``; the checkpoint is the train state's whole NNX state (model parameters, the
DropBlock RNG stream and the step) written to and read back from bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .nnx import DropBlock
from .schedule import linear_schedule


class _Net(nnx.Module):
    def __init__(self, target: float, rngs: nnx.Rngs):
        self.conv = nnx.Conv(2, 4, (3, 3), rngs=rngs)
        self.drop = DropBlock(target, 3, rngs=rngs)

    def __call__(self, x: jax.Array, rate: jax.Array) -> jax.Array:
        return self.drop(self.conv(x), rate=rate)


def save(node: Any) -> bytes:
    """An NNX object's state as ``.npz`` bytes (PRNG keys stored as their raw data)."""
    leaves = jax.tree.leaves(nnx.state(node))
    arrays = [np.asarray(jax.random.key_data(v) if jnp.issubdtype(v.dtype, jax.dtypes.prng_key) else v) for v in leaves]
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return buffer.getvalue()


def restore(node: Any, data: bytes) -> None:
    """Load ``save``'s bytes into an NNX object of the same structure, in place."""
    state = nnx.state(node)
    leaves, treedef = jax.tree.flatten(state)
    with np.load(io.BytesIO(data)) as stored:
        arrays = [stored[f"arr_{i}"] for i in range(len(leaves))]
    new = [
        jax.random.wrap_key_data(a, impl=jax.random.key_impl(v))
        if jnp.issubdtype(v.dtype, jax.dtypes.prng_key)
        else jnp.asarray(a, dtype=v.dtype)
        for v, a in zip(leaves, arrays, strict=True)
    ]
    nnx.update(node, jax.tree.unflatten(treedef, new))


class TrainState(nnx.Module):
    """The model and the training step counter that drives the schedule (both checkpointed)."""

    def __init__(self, target: float, seed: int):
        self.model = _Net(target, nnx.Rngs(params=seed, dropout=seed + 1))
        self.step = nnx.Variable(jnp.zeros((), dtype=jnp.int32))


def make_trainer(target: float, total_steps: int, start: float, seed: int) -> tuple[TrainState, Any, list[int]]:
    """A train state, a jitted SGD step returning the rate it used, and a trace counter."""
    state = TrainState(target, seed)
    traces: list[int] = []

    @nnx.jit
    def train_step(state: TrainState, x: jax.Array) -> jax.Array:
        traces.append(1)
        rate = linear_schedule(state.step[...], total_steps, target, start)
        grads = nnx.grad(lambda m: jnp.mean(m(x, rate) ** 2))(state.model)
        params = nnx.state(state.model, nnx.Param)
        nnx.update(state.model, jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads))
        state.step[...] += 1
        return rate

    return state, train_step, traces


def current_rate(state: TrainState, target: float, total_steps: int, start: float) -> float:
    return float(linear_schedule(state.step[...], total_steps, target, start))


def schedule_round_trip(
    target: float, total_steps: int, start: float, probe_steps: Sequence[int], restore_step: int
) -> tuple[list[float], float, float]:
    """Rates after each probe step; after a restore at ``restore_step``; and one step later."""
    x = jnp.ones((2, 8, 8, 2))
    state, train_step, _ = make_trainer(target, total_steps, start, seed=0)
    rates, checkpoint, done = {}, b"", 0
    for goal in sorted({*probe_steps, restore_step}):
        while done < goal:
            train_step(state, x)
            done += 1
        rates[goal] = current_rate(state, target, total_steps, start)
        if goal == restore_step:
            checkpoint = save(state)
    fresh, fresh_step, _ = make_trainer(target, total_steps, start, seed=1)
    restore(fresh, checkpoint)
    restored = current_rate(fresh, target, total_steps, start)
    fresh_step(fresh, x)
    return [rates[s] for s in probe_steps], restored, current_rate(fresh, target, total_steps, start)
