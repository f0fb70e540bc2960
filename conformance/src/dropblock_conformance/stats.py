"""Tolerances derived from the math: z bounds and Bonferroni-corrected exact binomial bounds."""

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


def assert_binomial_counts(counts: np.ndarray, trials: float, p: np.ndarray, family_alpha: float, what: str) -> None:
    """Every count ~ Binomial(trials, p) inside its exact two-sided bound, Bonferroni-corrected for the family.

    A count fails when the probability of a count at least that far into either tail is
    below ``family_alpha / (2 * counts.size)``, so a correct sampler fails with probability
    at most ``family_alpha``. The tails are summed exactly: a count whose mean is near 1 is
    far from normal, and a normal bound there fails up to 100 times more often than claimed.
    A count of a certain event (p = 0 or 1) must be exact.
    """
    n = round(trials)
    assert n == trials, f"{what}: a binomial count needs a whole number of trials, got {trials}"
    counts = np.asarray(counts, dtype=np.int64)
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), counts.shape).reshape(-1)
    counts = counts.reshape(-1)
    log_cut = math.log(family_alpha / (2.0 * max(counts.size, 1)))
    bad = (counts < 0) | (counts > n)
    for q in np.unique(p):
        at = (p == q) & ~bad
        log_pmf = _binomial_log_pmf(n, float(q))
        lower = np.logaddexp.accumulate(log_pmf)  # log P(X <= k)
        upper = np.logaddexp.accumulate(log_pmf[::-1])[::-1]  # log P(X >= k)
        bad[at] = (lower[counts[at]] < log_cut) | (upper[counts[at]] < log_cut)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        mean, sd = n * p[i], math.sqrt(n * p[i] * (1.0 - p[i]))
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {counts.size} counts outside their exact Binomial({n}, p) bounds at "
            f"alpha {family_alpha:.3g} for the family; first at flat index {i}: observed {counts[i]}, "
            f"expected {mean:.1f} (sd {sd:.2f})"
        )


def _binomial_log_pmf(trials: int, p: float) -> np.ndarray:
    """``log P(X = k)`` for ``k = 0..trials``, X ~ Binomial(trials, p); ``-inf`` where impossible."""
    k = np.arange(trials + 1)
    if p in (0.0, 1.0):  # every draw ends the same way
        return np.where(k == (trials if p == 1.0 else 0), 0.0, -np.inf)
    log_choose = np.array([math.lgamma(trials + 1) - math.lgamma(i + 1) - math.lgamma(trials - i + 1) for i in k])
    return log_choose + k * math.log(p) + (trials - k) * math.log1p(-p)


def assert_binomial_histogram(counts: np.ndarray, trials: int, p: float, family_alpha: float, what: str) -> None:
    """The histogram of ``counts`` (one per independent unit) fits Binomial(trials, p): a chi-square test.

    Bins from each tail are pooled until each expects at least 5 units; the bound is the
    chi-square quantile at ``1 - family_alpha`` (Wilson-Hilferty), so a correct sampler
    fails with probability at most ``family_alpha``. It catches count distributions with
    the right mean but the wrong shape (capped, or rounded to the mean).
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    units = counts.size
    expected = units * np.exp(_binomial_log_pmf(trials, p))
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
