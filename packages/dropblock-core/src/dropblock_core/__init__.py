"""Framework-free rules shared by every dropblock package.

Nothing here imports a framework or NumPy: the functions take and return Python
numbers and tuples, so each framework package can call them while it traces a graph
(shapes and hyper-parameters are static there) and keep only tensor work of its own.

Example (after ``from dropblock_core import gamma, normalize_block_size``):

>>> normalize_block_size(7, rank=2)
(7, 7)
>>> round(gamma(0.1, spatial=(14, 14), block=(7, 7)), 6)
0.00625
"""

from ._version import __version__
from .geometry import (
    clamp_block,
    gamma,
    gamma_factor,
    num_corners,
    seed_capacity,
    sparse_is_cheaper,
    valid_corners,
)
from .schedule import linear_ramp, validate_schedule
from .validation import (
    DATA_FORMATS,
    SCALE_MODES,
    DataFormat,
    ScaleMode,
    at_most,
    invalid_dtype,
    invalid_value,
    normalize_block_size,
    validate_data_format,
    validate_flag,
    validate_per_channel,
    validate_rate,
    validate_scale,
)

__all__ = [
    "DATA_FORMATS",
    "SCALE_MODES",
    "DataFormat",
    "ScaleMode",
    "__version__",
    "at_most",
    "clamp_block",
    "gamma",
    "gamma_factor",
    "invalid_dtype",
    "invalid_value",
    "linear_ramp",
    "normalize_block_size",
    "num_corners",
    "seed_capacity",
    "sparse_is_cheaper",
    "valid_corners",
    "validate_data_format",
    "validate_flag",
    "validate_per_channel",
    "validate_rate",
    "validate_scale",
    "validate_schedule",
]
