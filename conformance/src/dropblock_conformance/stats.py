"""Tolerances derived from the math: z bounds and Bonferroni-corrected binomial bounds."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np


def assert_within_z(observed: float, mean: float, variance: float, z: float, what: str) -> None:
    """``|observed - mean| <= z * sqrt(variance)``, with the numbers in the message."""
    sd = math.sqrt(max(variance, 0.0))
    deviation = abs(observed - mean)
    assert deviation <= z * sd or deviation == 0.0, (
        f"{what}: observed {observed:.6g}, expected {mean:.6g} +- {z} sd (sd {sd:.3g}); "
        f"off by {deviation / sd if sd else math.inf:.2f} sd"
    )


def bonferroni_z(family_alpha: float, tests: int) -> float:
    """Two-sided normal bound so that ``tests`` tests fail by chance with prob. <= alpha."""
    return NormalDist().inv_cdf(1.0 - family_alpha / (2.0 * max(tests, 1)))


def assert_binomial_counts(counts: np.ndarray, trials: float, p: np.ndarray, family_alpha: float, what: str) -> None:
    """Every count ~ Binomial(trials, p) within the Bonferroni bound for the family."""
    counts = np.asarray(counts, dtype=np.float64)
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), counts.shape).reshape(-1)
    counts = counts.reshape(-1)
    z = bonferroni_z(family_alpha, counts.size)
    mean = trials * p
    sd = np.sqrt(trials * p * (1.0 - p))
    # A count of a certain event (p = 0 or 1) must be exact.
    bad = np.abs(counts - mean) > z * sd + 1e-9
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {counts.size} counts outside +-{z:.2f} sd; first at flat index {i}: "
            f"observed {counts[i]:.0f}, expected {mean[i]:.1f} (sd {sd[i]:.2f})"
        )
