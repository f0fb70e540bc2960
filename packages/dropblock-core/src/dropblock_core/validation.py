"""Argument validation with the messages users see.

Every check raises ``ValueError`` naming the parameter (in the caller's spelling, so
PyTorch users read ``p`` and Keras users ``rate``), the allowed values and what was
received.
"""

from __future__ import annotations

import math
import numbers
import reprlib
import struct
from collections.abc import Sequence
from typing import Literal, cast, get_args

ScaleMode = Literal["batch", "sample", "none"]
"""The ``scale`` argument: kept values are scaled by the batch's ``numel / kept``, each sample's, or not at all."""

DataFormat = Literal["channels_first", "channels_last"]
"""The ``data_format`` argument: ``(N, C, *spatial)`` or ``(N, *spatial, C)``."""

SCALE_MODES: tuple[ScaleMode, ...] = get_args(ScaleMode)
DATA_FORMATS: tuple[DataFormat, ...] = get_args(DataFormat)


def invalid_value(name: str, expected: str, value: object) -> ValueError:
    """The error every check raises: the parameter, what it allows, what it got.

    >>> invalid_value("seed", "a shape [2] integer tensor", 3)
    ValueError('Invalid value for `seed`: expected a shape [2] integer tensor, got 3.')
    """
    return ValueError(f"Invalid value for `{name}`: expected {expected}, got {_shown(value)}.")


def _is_array(value: object) -> bool:
    """An array or tensor of any framework (a NumPy scalar such as ``np.float32(0.1)`` is not one)."""
    kind = type(value)
    is_numpy_scalar = kind.__module__ == "numpy" and kind.__name__ != "ndarray"
    return hasattr(value, "shape") and hasattr(value, "dtype") and not is_numpy_scalar


def _shown(value: object) -> str:
    """How a received value appears in a message: its ``repr``, except for arrays and tensors.

    An array or tensor says what it is and its shape, not its values: a 0-dim tensor
    holding 0.1 would read as a valid rate, a large one would flood the message, and under
    a compiler its values are not known at all. Tuples and lists show their items the same
    way; long reprs are shortened.

    >>> _shown((3, 2.5)), _shown(float("nan")), _shown({"p": 0.1})
    ('(3, 2.5)', 'nan', "{'p': 0.1}")
    >>> import numpy as np
    >>> _shown(np.array(0.1)), _shown([3, np.ones(2)])
    ('an array or tensor (numpy.ndarray) of shape ()', '[3, an array or tensor (numpy.ndarray) of shape (2,)]')
    >>> _shown(np.float32(0.5)) == repr(np.float32(0.5))  # a NumPy scalar is a number
    True
    """
    if _is_array(value):
        kind = type(value)
        return f"an array or tensor ({kind.__module__}.{kind.__qualname__}) of shape {_shape(value)}"
    if type(value) in (tuple, list):
        items = cast("tuple[object, ...] | list[object]", value)
        shown = ", ".join(_shown(item) for item in items[:8]) + (", ..." if len(items) > 8 else "")
        return f"({shown}{',' if len(items) == 1 else ''})" if type(value) is tuple else f"[{shown}]"
    return reprlib.repr(value)


def _shape(array: object) -> str:
    """An array's shape as a tuple, with ``?`` for an axis TensorFlow does not know, or ``unknown``.

    Axes are formatted with f-strings, not ``str()`` or ``repr()``: ``torch.compile`` traces
    this, and cannot apply those to a symbolic size.
    """
    try:
        dims = tuple(array.shape)  # type: ignore[attr-defined]
    except (TypeError, ValueError):  # an unknown rank
        return "unknown"
    axes = ["?" if axis is None else f"{axis}" for axis in dims]
    return f"({', '.join(axes)}{',' if len(axes) == 1 else ''})"


def invalid_dtype(caller: str, dtype: object) -> TypeError:
    """The error for an input that is not float16, bfloat16, float32 or float64 (float8 and integers included).

    >>> invalid_dtype("DropBlock", "int32")
    TypeError('DropBlock expects a floating-point input (float16, bfloat16, float32 or float64), got dtype int32.')
    """
    return TypeError(
        f"{caller} expects a floating-point input (float16, bfloat16, float32 or float64), got dtype {dtype}."
    )


def validate_rate(value: object, name: str = "rate") -> float:
    """Return ``value`` as a float in [0, 1], or raise ``ValueError``.

    Booleans and NaN are rejected: ``True`` is not a probability. So are arrays and
    tensors, even 0-dim ones; the error says to convert those with ``float()``.

    >>> validate_rate(0.25), validate_rate(-0.0)
    (0.25, 0.0)
    >>> validate_rate(1.5, name="p")
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for `p`: expected a real number in [0, 1], got 1.5.
    >>> import numpy as np
    >>> validate_rate(np.array(0.2), name="p")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for `p`: expected ... convert a 0-dim array with float()), got ... of shape ().
    """
    expected = "a real number in [0, 1]"
    if _is_array(value) and _shape(value) == "()":
        raise invalid_value(name, f"{expected} (a Python number: convert a 0-dim array with float())", value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid_value(name, expected, value)
    rate = float(value)
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise invalid_value(name, expected, value)
    return rate + 0.0  # -0.0 is 0.0 (in a repr or a saved config too)


def at_most(rate: float, bound: float, name: str, expected: str) -> float:
    """``rate`` if it is at most ``bound`` in float32, the precision rates are applied in; else raise.

    A rate above ``bound`` that rounds to the same float32 (``0.1`` read back from a float32
    buffer is ``0.10000000149011612``) comes back as ``bound``. ``expected`` says what
    ``name`` allows, for the error.

    >>> at_most(0.10000000149011612, 0.1, "p", "at most p (0.1)")
    0.1
    >>> at_most(0.2, 0.1, "p", "at most p (0.1)")
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for `p`: expected at most p (0.1), got 0.2.
    """
    if rate <= bound:
        return rate
    if _float32(rate) <= _float32(bound):
        return bound
    raise invalid_value(name, expected, rate)


def _float32(value: float) -> float:
    """``value`` rounded to the nearest float32 (``value`` within float32's range)."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


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
    raise invalid_value(name, expected, value)


def validate_scale(value: object, name: str = "scale") -> ScaleMode:
    """Return the scale mode, one of ``SCALE_MODES`` (a ``str``, not an array holding one).

    >>> validate_scale("sample")
    'sample'
    """
    if not isinstance(value, str) or value not in SCALE_MODES:
        raise invalid_value(name, "one of 'batch', 'sample', 'none'", value)
    return cast("ScaleMode", str(value))


def validate_data_format(value: object, name: str = "data_format") -> DataFormat:
    """Return the data format, one of ``DATA_FORMATS`` (a ``str``, not an array holding one).

    >>> validate_data_format("channels_last")
    'channels_last'
    """
    if not isinstance(value, str) or value not in DATA_FORMATS:
        raise invalid_value(name, "'channels_first' or 'channels_last'", value)
    return cast("DataFormat", str(value))


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
        raise invalid_value(name, expected, value)
    return value


def validate_per_channel(value: object, name: str = "per_channel") -> bool:
    """Return ``value`` if it is a bool.

    >>> validate_per_channel(False)
    False
    """
    return validate_flag(value, name)
