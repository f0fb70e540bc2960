"""Stage 1: draw the seed corners (the only random part of DropBlock).

Two exact samplers of i.i.d. Bernoulli(gamma) seeds over the corner grid:

* ``sample_sparse`` draws ``capacity`` geometric gaps, ``floor(log(1 - U) / log(1 - gamma))``
  for uniform ``U`` in float64, whose running sums are the flat positions of the seeds in
  the corner grid (the gaps between successive successes of a Bernoulli process are
  Geometric(gamma)); ``running_sum`` adds them up. Slots past the end of the grid are
  marked invalid; they are never painted. The capacity covers the grid except with
  probability below 2**-64. (``ops.sample_keep`` draws each half of the batch this way,
  each half with its own seed and capacity.)
* ``sample_dense`` draws one uniform per corner (used when painting ``capacity`` blocks
  would touch more elements than the mask holds).

Uniforms are made from Philox's raw integer bits (``alg="philox"``) with our own integer
to float mapping, because TF's float conversion differs between its CPU kernels and XLA:
this way eager, ``tf.function`` and ``jit_compile=True`` draw the same seeds.
"""

from __future__ import annotations

import tensorflow as tf

from ._plan import Dim, product


def _uniform53(shape: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Uniform float64 in [0, 1) with 53 random bits, identical on CPU and under XLA."""
    bits = tf.random.stateless_uniform(shape, seed=seed, dtype=tf.int64, minval=None, maxval=None, alg="philox")
    top = tf.bitwise.right_shift(tf.bitcast(bits, tf.uint64), tf.constant(11, tf.uint64))
    return tf.cast(top, tf.float64) * 2.0**-53


def sample_sparse(
    seed: tf.Tensor, gamma: tf.Tensor, grid_dims: tuple[Dim, ...], capacity: Dim
) -> tuple[tf.Tensor, tf.Tensor]:
    """Flat seed positions in the corner grid (int64, ``[capacity]``) and which slots are valid."""
    total = tf.cast(product(grid_dims), tf.int64)
    u = _uniform53(tf.reshape(tf.cast(capacity, tf.int64), [1]), seed)
    log_keep = tf.math.log1p(-gamma)  # < 0 for 0 < gamma < 1, -inf for gamma = 1, 0 for gamma = 0
    safe = tf.where(log_keep < 0.0, log_keep, tf.constant(-1.0, tf.float64))
    gaps = tf.floor(tf.math.log1p(-u) / safe)  # log1p(-u) <= 0, so gaps >= 0 (0 everywhere at gamma = 1)
    limit = tf.cast(total, tf.float64)
    gaps = tf.where(log_keep < 0.0, tf.minimum(gaps, limit), limit)  # gamma = 0: no seed at all
    # Sums past the grid only mark empty slots; capped, they also fit in int64.
    positions = tf.cast(tf.minimum(running_sum(gaps + 1.0), limit + 1.0), tf.int64) - 1
    return positions, positions < total


_SCAN_BLOCK = 8
_SCAN_UPPER = [[1.0 if i <= j else 0.0 for j in range(_SCAN_BLOCK)] for i in range(_SCAN_BLOCK)]


def running_sum(values: tf.Tensor) -> tf.Tensor:
    """Inclusive running sum of a 1-D float64 tensor of non-negative integers.

    Sums within blocks of 8 are one matrix product with an upper-triangular matrix of
    ones, then each block adds the running sum of the blocks before it: about twice as
    fast on CPU as ``tf.cumsum``, whose scan is sequential. Every running sum below 2**53
    is exact (its terms and partial sums, added in any order, are integers below it); one
    at or above 2**53 comes out at or above 2**53 (rounding is monotone and the terms are
    non-negative), so ``positions < total`` is decided exactly.
    """
    n = tf.size(values)
    rows = (n + _SCAN_BLOCK - 1) // _SCAN_BLOCK
    blocks = tf.reshape(tf.pad(values, [[0, rows * _SCAN_BLOCK - n]]), tf.stack([rows, _SCAN_BLOCK]))
    within = tf.matmul(blocks, tf.constant(_SCAN_UPPER, tf.float64))
    before = tf.cumsum(within[:, -1], exclusive=True)
    return tf.reshape(within + before[:, None], [-1])[:n]


def sample_dense(seed: tf.Tensor, gamma: tf.Tensor, grid_dims: tuple[Dim, ...]) -> tf.Tensor:
    """One Bernoulli(gamma) draw per corner: a bool grid of ``grid_dims``."""
    shape = tf.stack([tf.cast(d, tf.int64) for d in grid_dims])
    bits = tf.random.stateless_uniform(shape, seed=seed, dtype=tf.uint32, minval=None, maxval=None, alg="philox")
    # P(bits < round(gamma * 2**32)) = gamma to within 2**-33; gamma = 1 makes every corner a seed.
    threshold = tf.cast(tf.round(gamma * 2.0**32), tf.int64)
    return tf.cast(bits, tf.int64) < threshold
