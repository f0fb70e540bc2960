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


def assert_binomial_histogram(counts: np.ndarray, trials: int, p: float, family_alpha: float, what: str) -> None:
    """The histogram of ``counts`` (one per independent unit) fits Binomial(trials, p): a chi-square test.

    Bins from each tail are pooled until each expects at least 5 units; the bound is the
    chi-square quantile at ``1 - family_alpha`` (Wilson-Hilferty), so a correct sampler
    fails with probability at most ``family_alpha``. It catches count distributions with
    the right mean but the wrong shape (capped, or rounded to the mean).
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    units = counts.size
    k = np.arange(trials + 1)
    log_pmf = (
        np.array([math.lgamma(trials + 1) - math.lgamma(i + 1) - math.lgamma(trials - i + 1) for i in k])
        + k * math.log(max(p, 1e-300))
        + (trials - k) * math.log(max(1.0 - p, 1e-300))
    )
    expected = units * np.exp(log_pmf)
    observed = np.bincount(counts, minlength=trials + 1).astype(np.float64)
    edges = _pooled_bins(expected)
    exp_bins = np.array([expected[a:b].sum() for a, b in edges])
    obs_bins = np.array([observed[a:b].sum() for a, b in edges])
    dof = len(edges) - 1
    assert dof >= 1, f"{what}: too few units ({units}) for a histogram test"
    chi2 = float(((obs_bins - exp_bins) ** 2 / exp_bins).sum())
    z = NormalDist().inv_cdf(1.0 - family_alpha)
    bound = dof * (1.0 - 2.0 / (9.0 * dof) + z * math.sqrt(2.0 / (9.0 * dof))) ** 3
    assert chi2 <= bound, (
        f"{what}: the counts do not look Binomial({trials}, {p:.4g}): chi-square {chi2:.1f} > {bound:.1f} "
        f"({dof} degrees of freedom); observed {obs_bins.astype(int).tolist()}, expected "
        f"{np.round(exp_bins, 1).tolist()}"
    )


def _pooled_bins(expected: np.ndarray, least: float = 5.0) -> list[tuple[int, int]]:
    """Half-open ranges of consecutive values, the tails pooled so that each expects at least ``least``."""
    edges: list[tuple[int, int]] = []
    start, total = 0, 0.0
    for i, e in enumerate(expected):
        total += e
        if total >= least:
            edges.append((start, i + 1))
            start, total = i + 1, 0.0
    if not edges:
        return [(0, expected.size)]
    a, _ = edges[-1]
    edges[-1] = (a, expected.size)  # the upper tail joins the last bin
    return edges
