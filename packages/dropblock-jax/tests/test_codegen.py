"""Outputs do not depend on XLA's LLVM optimization level.

The nox sessions run the JAX tests with ``XLA_FLAGS=--xla_backend_optimization_level=0``:
XLA compiles the same HLO about five times faster, and compiling is most of those
sessions' time. That is sound only while the level changes no result, so this test draws
masks and gradients for every dtype, both samplers and every scale mode in two fresh
interpreters, one at the level nox sets and one at XLA's default, and requires the same
bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dropblock_jax._layout import Layout
from dropblock_jax.functional import draw_seeds, drop_block

FAST = "--xla_backend_optimization_level=0"

#: (shape, block_size, rate): the first uses the sparse sampler, the second the dense one.
GEOMETRIES = (((2, 4, 56, 56), 7, 0.05), ((4, 3, 12, 12), 3, 0.9))
#: Every dtype with both samplers, the scale modes in turn.
CALLS = [
    (dtype, geometry, scale)
    for (dtype, geometry), scale in zip(
        itertools.product(("float16", "bfloat16", "float32", "float64"), GEOMETRIES),
        itertools.cycle(("batch", "sample", "none")),
    )
]


def _digest() -> str:
    """A hash of the outputs and gradients of :data:`CALLS` (run in a child interpreter)."""
    jax.config.update("jax_enable_x64", True)
    digest = hashlib.sha256()
    rng = np.random.default_rng(0)
    for number, (dtype, (shape, block, rate), scale) in enumerate(CALLS):
        x = jnp.asarray(rng.standard_normal(shape)).astype(dtype)

        def loss(x, key, block=block, rate=rate, scale=scale):
            y = drop_block(key, x, rate, block, data_format="channels_first", scale=scale)
            return (y.astype(jnp.float32) ** 2).sum(), y

        (_, y), grad = jax.value_and_grad(loss, has_aux=True)(x, jax.random.key(number))
        for array in (y, grad):
            digest.update(np.asarray(array.astype(jnp.float64)).tobytes())
    return digest.hexdigest()


def _digest_with(xla_flags: str) -> str:
    pythonpath = os.pathsep.join(filter(None, [os.path.dirname(__file__), os.environ.get("PYTHONPATH")]))
    code = "from test_codegen import _digest; print(_digest())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "XLA_FLAGS": xla_flags, "JAX_PLATFORMS": "cpu", "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()[-1]


def test_the_fast_level_changes_no_result() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    default = " ".join(flag for flag in flags.split() if not flag.startswith("--xla_backend_optimization_level"))
    assert _digest_with(f"{default} {FAST}".strip()) == _digest_with(default)


@pytest.mark.parametrize(("geometry", "sparse"), zip(GEOMETRIES, (True, False), strict=True))
def test_the_calls_cover_both_samplers(geometry: tuple[tuple[int, ...], int, float], sparse: bool) -> None:
    shape, block, rate = geometry
    layout = Layout.of(shape, block, "channels_first", True)
    assert draw_seeds(jax.random.key(0), layout, jnp.float32(rate), rate)[0] == sparse
