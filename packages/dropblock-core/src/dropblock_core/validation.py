"""Argument validation with the messages users see.

Every check raises ``ValueError`` naming the parameter (in the caller's spelling, so
PyTorch users read ``p`` and Keras users ``rate``), the allowed values and what was
received.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

SCALE_MODES = ("batch", "sample", "none")
DATA_FORMATS = ("channels_first", "channels_last")


def _invalid(name: str, expected: str, value: object) -> ValueError:
    return ValueError(f"Invalid value for `{name}`: expected {expected}, got {_shown(value)}.")


def _shown(value: object) -> str:
    """``repr`` of a Python or NumPy scalar, string or tuple; the type of anything else.

    A tensor or array says what it is, not its values: a 0-dim tensor holding 0.1 would
    read as a valid rate, a large one would flood the message, and under a compiler its
    values are not known at all.

    >>> _shown((3, 2.5)), _shown(float("nan"))
    ('(3, 2.5)', 'nan')
    >>> import numpy as np
    >>> _shown(np.array(0.1))
    'an array or tensor (numpy.ndarray)'
    """
    if value is None or isinstance(value, bool | numbers.Number | str | bytes | tuple | list):
        return repr(value)
    kind = type(value)
    return f"an array or tensor ({kind.__module__}.{kind.__qualname__})"


def validate_rate(value: object, name: str = "rate") -> float:
    """Return ``value`` as a float in [0, 1], or raise ``ValueError``.

    Booleans and NaN are rejected: ``True`` is not a probability.

    >>> validate_rate(0.25), validate_rate(-0.0)
    (0.25, 0.0)
    >>> validate_rate(1.5, name="p")
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for `p`: expected a real number in [0, 1], got 1.5.
    """
    expected = "a real number in [0, 1]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _invalid(name, expected, value)
    rate = float(value)
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise _invalid(name, expected, value)
    return rate + 0.0  # -0.0 is 0.0 (in a repr or a saved config too)


def _is_positive_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) > 0


def normalize_block_size(value: object, rank: int, name: str = "block_size") -> tuple[int, ...]:
    """Return the block size as one positive int per spatial dimension.

    >>> normalize_block_size(3, rank=3)
    (3, 3, 3)
    >>> normalize_block_size((5, 3), rank=2)
    (5, 3)
    >>> normalize_block_size((5, 3), rank=3)
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for `block_size`: expected a positive int or a tuple of 3 positive ints, got (5, 3).
    """
    if _is_positive_int(value):
        return (int(value),) * rank  # type: ignore[call-overload, unused-ignore]
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == rank
        and all(_is_positive_int(v) for v in value)
    ):
        return tuple(int(v) for v in value)
    expected = f"a positive int or a tuple of {rank} positive ints"
    raise _invalid(name, expected, value)


def validate_scale(value: object, name: str = "scale") -> str:
    """Return the scale mode, one of ``SCALE_MODES``.

    >>> validate_scale("sample")
    'sample'
    """
    if value not in SCALE_MODES:
        raise _invalid(name, "one of 'batch', 'sample', 'none'", value)
    return str(value)


def validate_data_format(value: object, name: str = "data_format") -> str:
    """Return the data format, one of ``DATA_FORMATS``.

    >>> validate_data_format("channels_last")
    'channels_last'
    """
    if value not in DATA_FORMATS:
        raise _invalid(name, "'channels_first' or 'channels_last'", value)
    return str(value)


def validate_flag(value: object, name: str, expected: str = "True or False") -> bool:
    """Return ``value`` if it is a bool (``1`` and ``None`` are not).

    ``expected`` is what the message lists as allowed, for a caller that also takes
    something else (a tensor it handles before calling this).

    >>> validate_flag(True, "inplace")
    True
    >>> validate_flag(None, "inplace")
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for `inplace`: expected True or False, got None.
    """
    if not isinstance(value, bool):
        raise _invalid(name, expected, value)
    return value


def validate_per_channel(value: object, name: str = "per_channel") -> bool:
    """Return ``value`` if it is a bool.

    >>> validate_per_channel(False)
    False
    """
    return validate_flag(value, name)
