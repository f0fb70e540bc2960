"""The seed document's examples (keras-cv's DropBlock2D page), run as written with our import.

Its printed numbers came from an older random generator; what they show must hold:
a 2x2 block dropped in 4x4 maps, survivors scaled by one common factor (numel / kept),
a varying number of blocks per channel, and the identity without ``training=True``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras.layers import BatchNormalization, Conv2D, ReLU

from dropblock_tf import DropBlock2D


def _common_factor(features: tf.Tensor, output: tf.Tensor) -> float:
    x, y = np.asarray(features), np.asarray(output)
    kept = y != 0
    ratios = y[kept] / x[kept]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)  # one common factor
    np.testing.assert_allclose(ratios[0], x.size / kept.sum(), rtol=1e-6)  # = numel / kept
    return float(ratios[0])


def test_in_a_model_after_conv_bn_relu(zero_blocks_ok):
    inputs = keras.Input((14, 14, 3))
    x = Conv2D(32, (1, 1))(inputs)
    x = BatchNormalization()(x)
    x = ReLU()(x)
    features = x
    x = DropBlock2D(0.1, block_size=7)(x)
    model = keras.Model(inputs, x)
    data = np.random.default_rng(0).normal(size=(4, 14, 14, 3)).astype("float32")
    before = keras.Model(inputs, features)(data, training=False)
    np.testing.assert_array_equal(model(data), before)  # inference: DropBlock is the identity
    out = np.asarray(model(data, training=True))
    pre = np.asarray(keras.Model(inputs, features)(data, training=True))
    kept = out != 0
    np.testing.assert_allclose(out[kept] / pre[kept], out[kept][0] / pre[kept][0], rtol=1e-5)
    blocks = np.asarray(model.layers[-1](np.ones((4, 14, 14, 32), "float32"), training=True))
    assert zero_blocks_ok(blocks, (7, 7))
    assert (blocks == 0).any()


def test_single_channel_example(zero_blocks_ok):
    features = tf.random.stateless_uniform((1, 4, 4, 1), seed=[0, 1])
    layer = DropBlock2D(0.1, block_size=2, seed=1234)  # Small size for demonstration
    output = layer(features, training=True)
    assert output.shape == features.shape
    assert zero_blocks_ok(np.asarray(output), (2, 2))
    _common_factor(features, output)
    # The layer keeps drawing new masks; within a few calls one 2x2 block is dropped.
    outputs = [output] + [layer(features, training=True) for _ in range(5)]
    dropped = [o for o in outputs if np.any(np.asarray(o) == 0)]
    assert dropped, "no block dropped in six calls"
    first = np.asarray(dropped[0])[0, ..., 0]
    assert (first == 0).sum() == 4
    assert zero_blocks_ok(np.asarray(dropped[0]), (2, 2))
    assert np.isclose(_common_factor(features, dropped[0]), 16 / 12)  # the document's 16/12
    np.testing.assert_array_equal(layer(features), features)  # without training=True: identity


def test_36_channel_example(zero_blocks_ok):
    features = tf.random.stateless_uniform((1, 4, 4, 36), seed=[0, 1])
    layer = DropBlock2D(0.1, (2, 2), seed=123)
    output = layer(features, training=True)
    assert zero_blocks_ok(np.asarray(output), (2, 2))
    _common_factor(features, output)
    zeros = (np.asarray(output) == 0).sum(axis=(0, 1, 2))
    assert (zeros == 0).any(), "every channel lost a block"
    assert (zeros >= 4).any(), "no channel lost a block"
    # Over further calls some channel gets several (possibly overlapping) blocks.
    more = [np.asarray(layer(features, training=True)) for _ in range(5)]
    assert any(((o == 0).sum(axis=(0, 1, 2)) > 4).any() for o in [np.asarray(output), *more])
    for o in more:
        assert zero_blocks_ok(o, (2, 2))
        _common_factor(features, o)
