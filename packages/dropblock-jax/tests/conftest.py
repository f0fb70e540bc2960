"""Shared helpers for the dropblock-jax tests."""

from __future__ import annotations

import math

import jax
import numpy as np


def nonzero_input(shape: tuple[int, ...], seed: int = 0, dtype: object = np.float32) -> jax.Array:
    """Values in [1, 2): never zero, so the zeros of an output are exactly the dropped set."""
    rng = np.random.default_rng(seed)
    return jax.numpy.asarray((1.0 + rng.random(shape)).astype(dtype))


def within_z(observed: float, mean: float, variance: float, z: float = 5.0) -> bool:
    """``|observed - mean| <= z * sqrt(variance)`` (z = 5: a false alarm about once in 1.7 million)."""
    return abs(observed - mean) <= z * math.sqrt(variance)
