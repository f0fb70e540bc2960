"""Shared helpers for the dropblock-tf tests."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _float32_policy():
    """Tests that change the global dtype policy or data format must not leak it."""
    policy, data_format = keras.config.dtype_policy(), keras.config.image_data_format()
    yield
    keras.config.set_dtype_policy(policy)
    keras.config.set_image_data_format(data_format)


@pytest.fixture
def zero_blocks_ok():
    """``check(out, block)``: whether every zero of a channels-last 2D output lies in a full zero block."""
    return _zero_blocks_ok


def _zero_blocks_ok(out: np.ndarray, block: tuple[int, int]) -> bool:
    """Every zero of a channels-last 2D output lies in a full all-zero block of ``block`` (clamped)."""
    _n, h, w, _c = out.shape
    kh, kw = min(block[0], h), min(block[1], w)
    zero = out == 0
    covered = np.zeros_like(zero)
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            full = zero[:, i : i + kh, j : j + kw, :].all(axis=(1, 2))
            covered[:, i : i + kh, j : j + kw, :] |= full[:, None, None, :]
    return bool((covered == zero).all())
