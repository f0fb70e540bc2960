"""Framework-free timing: interleaved rounds, medians and interquartile ranges.

Every implementation of one configuration runs once per round, in a fresh random order
(seeded, so runs repeat), so slow drifts of the machine (other processes, frequency, cache
state) hit all of them alike, and no implementation always runs right after the same other
one (whose freed memory and cache footprint it would always inherit: with a fixed cyclic
order, two calls of the same torch code differed by 1.5x); the first ``warmup`` calls of
each (tracing, compilation, allocator growth) are not timed. Each callable must return
only once its result is computed (the framework modules synchronise: ``block_until_ready``
in JAX, CUDA synchronisation in torch).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    """One timed callable: an implementation (``impl``) in one ``mode`` (``fwd`` or ``fwdbwd``)."""

    impl: str
    mode: str
    fn: Callable[[], Any]


@dataclass
class Stats:
    """Summary of one case's samples, in milliseconds."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    n: int
    samples_ms: list[float] = field(default_factory=list)
    other_clock_median_ms: float | None = None

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_ms": self.median_ms,
            "q1_ms": self.q1_ms,
            "q3_ms": self.q3_ms,
            "iqr_ms": self.iqr_ms,
            "n": self.n,
            "other_clock_median_ms": self.other_clock_median_ms,
        }


def summarize(samples_ms: Sequence[float]) -> Stats:
    """Median and quartiles (``statistics.quantiles``, inclusive method)."""
    values = sorted(samples_ms)
    if len(values) == 1:
        return Stats(values[0], values[0], values[0], 1, list(values))
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Stats(q2, q1, q3, len(values), list(samples_ms))


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def interleave(
    cases: Sequence[Case],
    rounds: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
    other_clock: Callable[[], float] | None = None,
    seed: int = 0,
) -> tuple[dict[tuple[str, str], Stats], dict[tuple[str, str], str]]:
    """Time every case once per round for ``rounds`` rounds after ``warmup`` untimed rounds.

    Round 0 runs the cases in the given order, every later round in an order shuffled by a
    ``random.Random(seed)``.

    ``clock`` gives the reported statistics; ``other_clock`` (if any) is read around the
    same calls and only its median is kept (wall time next to CPU time, or the reverse).
    A case that raises (in warm-up or later) is dropped from the remaining rounds; its
    error message is returned in the second dict instead of statistics.
    """
    other = other_clock or clock
    other_samples: dict[tuple[str, str], list[float]] = {(c.impl, c.mode): [] for c in cases}
    errors: dict[tuple[str, str], str] = {}
    live = list(cases)
    samples: dict[tuple[str, str], list[float]] = {(c.impl, c.mode): [] for c in cases}
    shuffle = random.Random(seed).shuffle
    for r in range(warmup + rounds):
        order = list(live)
        if r > 0:  # round 0 in the given order
            shuffle(order)
        for case in order:
            key = (case.impl, case.mode)
            if key in errors:
                continue
            try:
                o0, t0 = other(), clock()
                case.fn()
                elapsed, o1 = clock() - t0, other()
            except Exception as exc:  # an optional implementation failing is a result, not a crash
                errors[key] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                continue
            if r >= warmup:
                samples[key].append(elapsed * 1e3)
                other_samples[key].append((o1 - o0) * 1e3)
        live = [c for c in live if (c.impl, c.mode) not in errors]
    stats = {key: summarize(values) for key, values in samples.items() if values and key not in errors}
    if other_clock is not None:
        for key, s in stats.items():
            s.other_clock_median_ms = statistics.median(other_samples[key])
    return stats, errors
