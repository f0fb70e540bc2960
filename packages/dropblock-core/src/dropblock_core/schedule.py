"""The paper's scheduled DropBlock: the rate ramps linearly over a number of steps."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from .validation import validate_rate


def validate_schedule(target: object, total_steps: object, start: object = 0.0) -> tuple[float, int, float]:
    """Validate a ramp: rates in [0, 1] and ``total_steps`` a positive int.

    >>> validate_schedule(0.1, 1000)
    (0.1, 1000, 0.0)
    """
    target_rate = validate_rate(target, "target")
    start_rate = validate_rate(start, "start")
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) or total_steps <= 0:
        raise ValueError(f"Invalid value for `total_steps`: expected a positive int, got {total_steps!r}.")
    return target_rate, int(total_steps), start_rate


def linear_ramp(
    step: Any,
    total_steps: int,
    target: Any,
    start: Any = 0.0,
    *,
    minimum: Callable[[Any, Any], Any] = min,
) -> Any:
    """Rate after ``step`` steps: ``start + (target - start) * min(step / total_steps, 1)``.

    ``step`` and the rates may be framework tensors when ``minimum`` is that
    framework's element-wise minimum, so one formula serves every package.

    >>> linear_ramp(250, 1000, 0.1)
    0.025
    >>> linear_ramp(5000, 1000, 0.1)
    0.1
    """
    return start + (target - start) * minimum(step / total_steps, 1.0)
