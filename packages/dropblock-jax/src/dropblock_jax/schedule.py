"""The paper's scheduled DropBlock: a linear ramp of the rate, as a traced-friendly function."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._core import linear_ramp, validate_schedule

__all__ = ["linear_schedule"]


def linear_schedule(step: Any, total_steps: int, target: float, start: float = 0.0) -> jax.Array:
    """Rate after ``step`` steps: ``start + (target - start) * min(step / total_steps, 1)``.

    ``step`` may be a traced integer (e.g. the optimizer's step counter in the train
    state), so feeding the result to the layer as its call-time ``rate`` never recompiles;
    a negative step gives ``start``.
    ``target`` and ``start`` are static and validated (rates in [0, 1], ``total_steps`` a
    positive int). Pass ``max_rate=max(start, target)`` (the modules do this for you:
    their configured ``rate`` is the bound, so configure them with the largest rate of
    the ramp) so the sampler is sized for the largest rate.

    Example:
      >>> from dropblock_jax import linear_schedule
      >>> linear_schedule(250, 1000, 0.1)
      Array(0.025, dtype=float32)
      >>> linear_schedule(5000, 1000, 0.1)  # stays at the target
      Array(0.1, dtype=float32)
    """
    target, total_steps, start = validate_schedule(target, total_steps, start)
    step = jnp.maximum(jnp.asarray(step, dtype=jnp.float32), 0.0)  # before the ramp: its start
    ramp = jnp.asarray(linear_ramp(step, total_steps, target, start, minimum=jnp.minimum), dtype=jnp.float32)
    # Rounded twice in float32, the ramp can end an ulp off float32(target) (above it, a
    # layer configured with `target` would refuse it): it stays between its ends, and is
    # the target itself from the last step on.
    low, high = np.float32(min(start, target)), np.float32(max(start, target))
    return jnp.where(step >= total_steps, np.float32(target), jnp.clip(ramp, low, high))
