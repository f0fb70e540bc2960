"""The Keras layers: API, validation, dtypes, graph modes, serialization and export."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import dropblock_tf
from dropblock_tf import DropBlock1D, DropBlock2D, DropBlock3D, drop_block, ops
from dropblock_tf import layers as layers_module
from dropblock_tf._plan import make_plan

RNG = np.random.default_rng(0)


def _x(shape, dtype="float32"):
    return tf.constant(RNG.uniform(0.5, 1.5, size=shape).astype(dtype))


# -- API and validation ------------------------------------------------------------------------


def test_signature_and_config_round_trip():
    layer = DropBlock2D(0.1, (3, 5), seed=7, data_format="channels_first", per_channel=False, scale="sample", name="db")
    config = layer.get_config()
    assert {k: config[k] for k in ("rate", "block_size", "seed", "data_format", "per_channel", "scale")} == {
        "rate": 0.1,
        "block_size": [3, 5],
        "seed": 7,
        "data_format": "channels_first",
        "per_channel": False,
        "scale": "sample",
    }
    clone = DropBlock2D.from_config(config)
    assert clone.get_config() == config
    assert keras.saving.get_registered_name(DropBlock2D) == "dropblock>DropBlock2D"


def test_data_format_defaults_to_keras_config():
    keras.config.set_image_data_format("channels_first")
    assert DropBlock1D(0.1, 3).data_format == "channels_first"
    keras.config.set_image_data_format("channels_last")
    assert DropBlock3D(0.1, 3).data_format == "channels_last"


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), True, "0.1", None])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match=r"`rate`.*\[0, 1\]"):
        DropBlock2D(rate, 3)


@pytest.mark.parametrize("rate", [np.array(0.1), tf.constant(0.1)])
def test_a_layer_rate_held_in_an_array_gets_the_float_hint(rate):
    # A layer's rate is a Python number (it is saved in get_config); a 0-dim array says how to convert it.
    with pytest.raises(ValueError, match=r"`rate`: .*convert a 0-dim array with float\(\)\), got .* of shape \(\)"):
        DropBlock2D(rate, 3)


@pytest.mark.parametrize("block_size", [0, -1, (3,), (3, 0), 2.5, "3", (3, 3, 3)])
def test_bad_block_size(block_size):
    with pytest.raises(ValueError, match="block_size"):
        DropBlock2D(0.1, block_size)


@pytest.mark.parametrize("kwargs", [{"data_format": "NHWC"}, {"per_channel": 1}, {"scale": "global"}])
def test_bad_options(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DropBlock2D(0.1, 3, **kwargs)


@pytest.mark.parametrize("dtype", ["int32", "bool"])
def test_integer_and_bool_inputs_raise_type_error(dtype):
    with pytest.raises(TypeError, match="floating-point"):
        DropBlock2D(0.1, 3)(tf.zeros((1, 4, 4, 2), dtype), training=True)
    with pytest.raises(TypeError, match="floating-point"):
        drop_block(tf.zeros((1, 4, 4, 2), dtype), 0.1, 3, seed=(0, 0))


def test_wrong_rank_names_the_expected_rank():
    with pytest.raises(ValueError, match="4D input"):
        DropBlock2D(0.1, 3)(tf.zeros((2, 4, 4)), training=True)
    with pytest.raises(ValueError, match="3D input"):
        DropBlock1D(0.1, 3)(tf.zeros((2, 4, 4, 4)), training=True)


def test_a_model_with_a_bad_input_fails_when_it_is_built():
    # As Conv2D does: the symbolic call checks rank, dtype and density, with the eager messages.
    with pytest.raises(ValueError, match="4D input"):
        DropBlock2D(0.1, 3)(keras.Input((16, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        DropBlock2D(0.1, 3)(keras.Input((8, 8, 3), dtype="int32"))
    with pytest.raises(TypeError, match="dense tensor"):
        DropBlock2D(0.1, 3)(keras.Input((8, 8, 3), sparse=True))
    with pytest.raises(TypeError, match="dense tensor"):
        DropBlock2D(0.1, 3)(tf.sparse.from_dense(tf.ones((2, 4, 4, 3))), training=True)
    outputs = DropBlock2D(0.1, 3, dtype="mixed_float16")(keras.Input((8, 8, 3)))
    assert (tuple(outputs.shape), outputs.dtype) == ((None, 8, 8, 3), "float16")


def test_setting_rate_sets_the_rate_in_force_and_is_checked():
    layer = DropBlock2D(0.1, 3, seed=0)
    layer.rate = 0.4
    assert float(layer.current_rate) == pytest.approx(0.4)
    assert layer.get_config()["rate"] == 0.4
    with pytest.raises(ValueError, match=r"`rate`.*\[0, 1\]"):
        layer.rate = 1.5
    assert layer.rate == 0.4


@pytest.mark.parametrize("rate", [0.3, 1.0])  # the sparse sampler, and the dense one for a bound of 1
def test_a_rate_in_force_out_of_range_is_clipped_and_nan_counts_as_zero(rate):
    # current_rate assigned directly (or loaded) skips the `rate` setter's validation.
    x = _x((8, 16, 16, 16))

    def first_call_with(rate_in_force):  # a fresh layer per value: every call draws the same masks
        layer = DropBlock2D(rate, 3, seed=0)
        layer.current_rate.assign(rate_in_force)
        return np.asarray(layer(x, training=True))

    for nothing in (float("nan"), -0.5, -float("inf")):
        assert np.array_equal(first_call_with(nothing), x), nothing
    at_rate = first_call_with(rate)
    assert (at_rate == 0).any()
    for above in (1.5, float("inf")):
        assert np.array_equal(first_call_with(above), at_rate), above


def test_a_rate_just_below_one_does_not_drop_everything():
    # float32(1 - 1e-9) is 1.0; the rate in force is clipped to `rate` in float64, below 1.
    x = _x((16, 14, 14, 16))
    for rate in (1 - 1e-9, 1 - 1e-12):
        y = np.asarray(DropBlock2D(rate, 3, seed=0)(x, training=True))
        assert (y != 0).any(), rate
    assert not np.asarray(DropBlock2D(1.0, 3, seed=0)(x, training=True)).any()


def test_stateless_call_takes_numpy_input():
    layer = DropBlock2D(0.3, 3, seed=1)
    x = np.ones((2, 8, 8, 3), "float32")
    out, _ = layer.stateless_call(layer.trainable_variables, layer.non_trainable_variables, x, training=True)
    assert tuple(out.shape) == x.shape


def test_unknown_rank_is_named():
    step = tf.function(lambda v: DropBlock2D(0.1, 3)(v, training=True), input_signature=[tf.TensorSpec(None)])
    with pytest.raises(ValueError, match="expects a 4D input, got an input of unknown rank"):
        step.get_concrete_function()


@pytest.mark.parametrize("seed", [None, "bogus", (1, 2, 3), 1.5])
@pytest.mark.parametrize("kwargs", [{}, {"training": False}, {"rate": 0.0}, {"rate": 1.0}])
def test_bad_seed_is_named_on_every_path(seed, kwargs):
    args = {"rate": 0.1, **kwargs}
    with pytest.raises(ValueError, match=r"`seed`.*shape \[2\] integer"):
        drop_block(tf.ones((1, 4, 4, 1)), args.pop("rate"), 3, seed=seed, **args)


def test_bad_seed_message_shows_the_value_given():
    with pytest.raises(ValueError, match=r"`seed`.*got 3\."):
        drop_block(tf.ones((1, 4, 4, 1)), 0.1, 3, seed=3)


@pytest.mark.parametrize("training", ["no", 1, tf.constant([True])])
@pytest.mark.parametrize("rate", [0.1, 0.0])
def test_function_training_must_be_a_bool_none_or_a_bool_scalar_tensor(training, rate):
    with pytest.raises(ValueError, match=r"`training`: expected True, False, None or a scalar bool tensor"):
        drop_block(tf.ones((1, 4, 4, 1)), rate, 3, seed=(1, 2), training=training)


def test_function_in_a_custom_layer_follows_keras_training_none():
    # Keras calls a layer's `call` with training=None while building a model and in inference.
    class Wrapped(keras.layers.Layer):
        def call(self, x, training=None):
            return drop_block(x, 0.3, 3, seed=(1, 2), training=training)

    inputs = keras.Input((12, 12, 4))
    model = keras.Model(inputs, Wrapped()(inputs))
    x = _x((2, 12, 12, 4))
    assert np.array_equal(model(x), x)
    assert np.array_equal(model(x, training=True), drop_block(x, 0.3, 3, seed=(1, 2)))
    assert np.array_equal(drop_block(x, 0.3, 3, seed=(1, 2), training=np.bool_(True)), model(x, training=True))


def test_function_training_tensor_picks_the_branch_at_run_time():
    x = _x((4, 12, 12, 8))

    @tf.function
    def step(training):
        return drop_block(x, 0.3, 3, seed=(1, 2), training=training)

    assert np.array_equal(step(tf.constant(False)), x)
    assert np.array_equal(step(tf.constant(True)), drop_block(x, 0.3, 3, seed=(1, 2)))
    assert np.array_equal(drop_block(x, 0.3, 3, seed=(1, 2), training=tf.constant(False)), x)


def test_function_data_format_defaults_to_the_keras_config():
    x = _x((2, 4, 12, 12))  # channels first
    before = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        default = drop_block(x, 0.3, 3, seed=(1, 2), per_channel=False)
    finally:
        keras.config.set_image_data_format(before)
    explicit = drop_block(x, 0.3, 3, seed=(1, 2), per_channel=False, data_format="channels_first")
    assert np.array_equal(default, explicit)
    assert not np.array_equal(default, drop_block(x, 0.3, 3, seed=(1, 2), per_channel=False))


def test_backend_other_than_tensorflow_raises_import_error():
    # Keras picks its backend once per process; pretend it picked JAX.
    code = "import keras; keras.backend.backend = lambda: 'jax'; import dropblock_tf"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert "'jax'" in proc.stderr
    assert "dropblock-torch" in proc.stderr
    assert "dropblock-jax" in proc.stderr


# -- behaviour ---------------------------------------------------------------------------------


def test_training_none_and_false_are_identity():
    layer, x = DropBlock2D(0.5, 3, seed=1), _x((2, 8, 8, 3))
    assert layer(x) is x or np.array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_training_as_a_tensor():
    layer, x = DropBlock2D(0.5, 3, seed=1), _x((2, 8, 8, 3))
    fn = tf.function(lambda x, t: layer(x, training=t))
    np.testing.assert_array_equal(fn(x, tf.constant(False)), x)
    assert np.any(np.asarray(fn(x, tf.constant(True))) == 0)


@pytest.mark.parametrize(("layer_cls", "shape"), [(DropBlock1D, (2, 40, 3)), (DropBlock3D, (2, 8, 8, 8, 3))])
def test_other_ranks_drop_blocks(layer_cls, shape):
    out = np.asarray(layer_cls(0.3, 3, seed=2)(tf.ones(shape), training=True))
    assert (out == 0).any()
    assert np.isclose(out.mean(), 1.0, atol=1e-5)


def test_shared_mask_across_channels():
    out = np.asarray(DropBlock2D(0.3, 3, seed=3, per_channel=False)(tf.ones((4, 10, 10, 5)), training=True))
    assert (out == out[..., :1]).all()
    assert (out == 0).any()


def test_gradient_is_keep_times_scale():
    layer, x = DropBlock2D(0.3, 3, seed=4), _x((2, 10, 10, 4))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    g = _x((2, 10, 10, 4))
    grad = np.asarray(tape.gradient(y, x, output_gradients=g))
    kept = np.asarray(y) != 0
    s = np.asarray(y)[kept][0] / np.asarray(x)[kept][0]
    np.testing.assert_allclose(grad[kept], np.asarray(g)[kept] * s, rtol=1e-6)
    assert (grad[~kept] == 0).all()


@pytest.mark.parametrize(("policy", "expected"), [("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")])
def test_mixed_precision_policies(policy, expected, monkeypatch):
    rates = []
    original = layers_module.drop_block_nd
    monkeypatch.setattr(
        layers_module, "drop_block_nd", lambda x, rate, **k: rates.append(rate) or original(x, rate, **k)
    )
    keras.config.set_dtype_policy(policy)
    layer = DropBlock2D(0.2, 3, seed=5)
    out = layer(_x((2, 8, 8, 4)), training=True)
    assert out.dtype.name == expected
    assert layer.current_rate.dtype == "float32"
    assert np.isfinite(np.asarray(tf.cast(out, tf.float32))).all()
    assert rates[0].dtype == tf.float32  # the rate is not autocast to the compute dtype


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_explicit_dtype_policy(dtype):
    out = DropBlock2D(0.2, 3, seed=6, dtype=dtype)(tf.cast(_x((2, 8, 8, 4)), dtype), training=True)
    assert out.dtype.name == dtype


def test_float16_ten_million_elements_keep_their_mean():
    out = drop_block(tf.ones((16, 100, 100, 64), tf.float16), 0.1, 7, seed=(1, 1))
    assert out.dtype == tf.float16
    # On ones the mean is kept/numel * s, s = numel/kept rounded to float16 (2**-11 relative)
    # after float32 (2**-24); a float16 count would overflow and give NaN or zeros.
    assert abs(float(tf.reduce_mean(tf.cast(out, tf.float64))) - 1.0) <= 2**-11 + 2**-24


@pytest.mark.parametrize("scale", ["batch", "sample", "none"])
def test_empty_batch(scale):
    assert DropBlock2D(0.2, 3, scale=scale)(tf.zeros((0, 8, 8, 2)), training=True).shape == (0, 8, 8, 2)
    spec = tf.TensorSpec([None, 8, 8, 2])
    fn = tf.function(lambda x: drop_block(x, 0.2, 3, seed=(0, 0), scale=scale), input_signature=[spec])
    assert fn(tf.zeros((0, 8, 8, 2))).shape == (0, 8, 8, 2)


# -- graph modes -------------------------------------------------------------------------------


def test_tf_function_and_fully_dynamic_shapes(zero_blocks_ok):
    layer = DropBlock2D(0.2, 5, seed=7)
    fn = tf.function(lambda x: layer(x, training=True), input_signature=[tf.TensorSpec([None, None, None, 3])])
    for shape in [(2, 12, 12, 3), (1, 20, 7, 3), (3, 4, 4, 3), (0, 6, 6, 3)]:
        out = np.asarray(fn(tf.ones(shape)))
        assert out.shape == shape
        assert zero_blocks_ok(out, (5, 5))
        if out.size:
            np.testing.assert_allclose(out[out != 0], out.size / (out != 0).sum(), rtol=1e-6)
    assert fn.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(
    ("shape", "block"),
    [((3, 14, 14, 8), 7), ((1, 28, 28, 8), 3), ((2, 28, 28, 8), 3)],  # the sparse sampler, batch split or not
)
@pytest.mark.parametrize("scale", ["batch", "sample"])
def test_dynamic_shapes_match_static_shapes_bit_for_bit(shape, block, scale):
    x = _x(shape)
    static = drop_block(x, 0.1, block, seed=(9, 9), scale=scale)
    spec = tf.TensorSpec([None, None, None, 8])
    dynamic = tf.function(lambda x: drop_block(x, 0.1, block, seed=(9, 9), scale=scale), input_signature=[spec])(x)
    np.testing.assert_array_equal(static, dynamic)
    assert make_plan(list(shape), (block, block), channels_last=True, per_channel=True, max_rate=0.1).sparse


def test_drop_block_in_a_tf_data_pipeline_matches_a_direct_call():
    # The XLA-fused output pass also runs inside tf.data's own function runtime.
    x = _x((4, 9, 9, 3))
    batches = tf.data.Dataset.from_tensors(x).repeat(2).map(lambda t: drop_block(t, 0.2, 3, seed=(4, 5)))
    for batch in batches:
        np.testing.assert_array_equal(batch, drop_block(x, 0.2, 3, seed=(4, 5)))


def test_jit_compile_matches_eager_and_does_not_retrace_on_rate_change():
    layer = DropBlock2D(0.3, 3, seed=8)
    x = _x((2, 10, 10, 4))
    step = tf.function(lambda x, seed: drop_block(x, 0.3, 3, seed=seed), jit_compile=True)
    np.testing.assert_array_equal(step(x, tf.constant([1, 2])), drop_block(x, 0.3, 3, seed=(1, 2)))
    traced = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    outs = []
    for rate in (0.0, 0.1, 0.3):
        layer.current_rate.assign(rate)
        outs.append(np.asarray(traced(x)))
    np.testing.assert_array_equal(outs[0], x)
    assert (outs[1] == 0).any()
    assert (outs[2] == 0).any()
    assert traced.experimental_get_tracing_count() == 1


def test_eager_layer_calls_match_graph_calls_without_retracing():
    x = _x((4, 28, 28, 8))
    eager, graph = DropBlock2D(0.1, 3, seed=5), DropBlock2D(0.1, 3, seed=5)
    step = tf.function(lambda v: graph(v, training=True))
    np.testing.assert_array_equal(eager(x, training=True), step(x))
    traces = _eager_traces()
    for rate in (0.1, 0.05, 0.1):  # the schedule's rate is a tensor
        eager.current_rate.assign(rate)
        graph.current_rate.assign(rate)
        np.testing.assert_array_equal(eager(x, training=True), step(x))
    assert _eager_traces() == traces


def test_a_new_layer_rate_does_not_retrace_eagerly_nor_grow_the_cache():
    x = _x((2, 14, 14, 16))
    layer = DropBlock2D(0.1, 7, seed=0)
    layer(x, training=True)
    graphs, traces = len(ops._EAGER_GRAPHS), _eager_traces()
    for rate in (0.12, 0.14, 0.2):  # a sweep: each rate used to trace and keep its own graph
        layer.rate = rate
        assert (np.asarray(layer(x, training=True)) == 0).any()
    assert (len(ops._EAGER_GRAPHS), _eager_traces()) == (graphs, traces)


def test_differently_configured_layers_each_trace_once_eagerly():
    # One traced sampler per configuration: TF warns when one function keeps retracing.
    x = _x((2, 12, 12, 4))
    ops._EAGER_GRAPHS.clear()
    for block in (7, 5, 3, 2, 1, 4):
        for _ in range(2):
            DropBlock2D(0.1 * block / 7, block, seed=block)(x, training=True)
    assert len(ops._EAGER_GRAPHS) == 6
    assert [graph.experimental_get_tracing_count() for graph in ops._EAGER_GRAPHS.values()] == [1] * 6


def test_new_eager_input_shapes_do_not_retrace(caplog):
    # Multi-size inputs: each axis used to retrace once, and TF warned on the fifth shape.
    from dropblock_tf import _masking

    ops._EAGER_GRAPHS.clear()
    _masking._SCALED.clear()
    layer, graph = DropBlock2D(0.2, 3, seed=0), DropBlock2D(0.2, 3, seed=0)
    inputs = [_x(s) for s in [(2, 8, 8, 2), (3, 8, 8, 2), (2, 9, 8, 2), (2, 10, 11, 2), (2, 10, 11, 3), (5, 12, 7, 2)]]
    outputs = []
    for x in inputs:
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs.append(layer(x, training=True))
        assert tape.gradient(outputs[-1], x).shape == x.shape
    functions = [*ops._EAGER_GRAPHS.values(), *_masking._SCALED.values()]
    assert [f.experimental_get_tracing_count() for f in functions] == [1] * len(functions)
    assert "retracing" not in caplog.text
    for x, y in zip(inputs, outputs, strict=True):  # the same draws as a trace for that static shape
        step = tf.function(lambda v: graph(v, training=True))
        assert step.get_concrete_function(tf.TensorSpec(x.shape)).structured_outputs.shape == x.shape
        np.testing.assert_array_equal(y, step(x))


@pytest.mark.parametrize("dynamic", [False, True], ids=["eager", "unknown-map-size"])
def test_a_block_larger_than_the_map_costs_the_clamped_block(dynamic):
    # Painting enumerates the clamped block's offsets, also when the map size is known only
    # at run time: a 10^6-element block used to cost 10^6 offsets per seed, and 2**64 overflowed.
    x = _x((4, 7, 7, 8))
    expected = DropBlock2D(0.1, 7, seed=2)(x, training=True)
    for block in (1000, 2**64):
        layer = DropBlock2D(0.1, block, seed=2)
        if dynamic:
            spec = tf.TensorSpec([None, None, None, 8])
            np.testing.assert_array_equal(
                tf.function(lambda v, layer=layer: layer(v, training=True), input_signature=[spec])(x), expected
            )
        else:
            np.testing.assert_array_equal(layer(x, training=True), expected)


def test_scale_modes_and_dtypes_each_trace_their_own_function_once():
    # TF warns when one Python function keeps retracing: each kind of call has its own.
    from dropblock_tf import _masking

    x = tf.ones((4, 10, 10, 6))
    ops._EAGER_GRAPHS.clear()
    _masking._SCALED.clear()
    for scale in ("batch", "sample", "none"):
        for per_channel in (True, False):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = DropBlock2D(0.4, 3, seed=3, scale=scale, per_channel=per_channel)(x, training=True)
            tape.gradient(y, x)
    for dtype in ("float16", "bfloat16", "float64"):
        DropBlock2D(0.4, 3, seed=1, dtype=dtype)(x, training=True)
    functions = [*ops._EAGER_GRAPHS.values(), *_masking._SCALED.values()]
    assert len({id(f.python_function) for f in functions}) == len(functions)
    assert [f.experimental_get_tracing_count() for f in functions] == [1] * len(functions)


def test_current_rate_above_rate_is_clipped_to_rate():
    # A checkpoint saved at a higher rate must not outrun the sampler sized for `rate`.
    x = _x((16, 14, 14, 32))
    expected = np.asarray(DropBlock2D(0.1, 3, seed=0)(x, training=True))
    layer = DropBlock2D(0.1, 3, seed=0)
    layer.current_rate.assign(0.5)
    np.testing.assert_array_equal(layer(x, training=True), expected)
    traced = DropBlock2D(0.1, 3, seed=0)
    traced.current_rate.assign(0.5)
    np.testing.assert_array_equal(tf.function(lambda v: traced(v, training=True))(x), expected)


@pytest.mark.parametrize("shape", [(2, 0, 8, 3), (2, 8, 0, 3), (0, 8, 8, 3)])
def test_empty_maps_return_empty_outputs(shape):
    x = tf.ones(shape)
    dynamic = tf.TensorSpec([None, None, None, 3])
    layer = DropBlock2D(0.1, 3)
    calls = {
        "eager": lambda v: drop_block(v, 0.1, 3, seed=(1, 2)),
        "sample": lambda v: drop_block(v, 0.1, 3, seed=(1, 2), scale="sample"),
        "dynamic": tf.function(lambda v: drop_block(v, 0.1, 3, seed=(1, 2)), input_signature=[dynamic]),
        "jit": tf.function(lambda v: drop_block(v, 0.1, 3, seed=(1, 2)), jit_compile=True),
        "layer": lambda v: layer(v, training=True),
        "layer-dynamic": tf.function(lambda v: layer(v, training=True), input_signature=[dynamic]),
    }
    for name, call in calls.items():
        assert tuple(call(x).shape) == shape, name


def test_eager_functional_calls_match_graph_calls_without_retracing_per_rate():
    x = _x((4, 28, 28, 8))
    np.testing.assert_array_equal(drop_block(x, 0.1, 3, seed=(2, 3)), _traced_drop_block(x, 0.1))
    traces = _eager_traces()
    for rate in (0.2, 0.05, 0.3):
        np.testing.assert_array_equal(drop_block(x, rate, 3, seed=(2, 3)), _traced_drop_block(x, rate))
    assert _eager_traces() == traces


def _eager_traces():
    return sum(graph.experimental_get_tracing_count() for graph in ops._EAGER_GRAPHS.values())


def _traced_drop_block(x, rate):
    return tf.function(lambda v: drop_block(v, rate, 3, seed=(2, 3)))(x)


def _model(input_shape=(None, None, 3)):
    inputs = keras.Input(input_shape)
    h = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = DropBlock2D(0.1, block_size=5, seed=3)(h)
    outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(h))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_evaluate_predict_in_graph_mode(jit_compile):
    model = _model()
    model.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
    x, y = RNG.normal(size=(12, 10, 10, 3)).astype("float32"), RNG.normal(size=(12, 1)).astype("float32")
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(model.evaluate(x, y, verbose=0))
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


# -- serialization and export --------------------------------------------------------------


def test_keras_file_round_trip_without_custom_objects(tmp_path):
    model = _model((12, 12, 3))
    x = RNG.normal(size=(2, 12, 12, 3)).astype("float32")
    model.layers[4].current_rate.assign(0.05)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.layers[4]
    assert isinstance(layer, DropBlock2D)
    assert layer.get_config() == model.layers[4].get_config()
    assert float(layer.current_rate.value.numpy()) == pytest.approx(0.05)
    np.testing.assert_array_equal(loaded(x), model(x))
    # The seed generator's state is saved too: the next training-mode calls agree.
    np.testing.assert_array_equal(loaded(x, training=True), model(x, training=True))


def test_saved_model_export(tmp_path):
    model = _model((12, 12, 3))
    x = RNG.normal(size=(2, 12, 12, 3)).astype("float32")
    model(x)
    model.export(str(tmp_path / "sm"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(reloaded.serve(x), model(x), rtol=1e-6, atol=1e-6)


def test_public_names():
    assert set(dropblock_tf.__all__) >= {"DropBlock1D", "DropBlock2D", "DropBlock3D", "DropBlockSchedule", "drop_block"}


@pytest.mark.parametrize("seed", [True, "1", 1.0, (1, 2), tf.constant(3), 2**63, -(2**63) - 1])
def test_bad_layer_seed_is_named(seed):
    # Beyond int64 the seed used to fail inside Keras: "Can't convert Python sequence ...".
    with pytest.raises(ValueError, match=r"`seed`: expected an int in \[-2\*\*63, 2\*\*63 - 1\] \(int64\) or None"):
        DropBlock2D(0.1, 3, seed=seed)
    DropBlock2D(0.1, 3, seed=2**63 - 1)(tf.ones((2, 8, 8, 2)), training=True)


def test_a_numpy_integer_seed_is_stored_as_an_int():
    layer = DropBlock2D(0.1, 3, seed=np.int64(7))
    assert type(layer.seed) is int
    assert layer.get_config()["seed"] == 7
    x = np.ones((2, 8, 8, 3), "float32")
    np.testing.assert_array_equal(layer(x, training=True), DropBlock2D(0.1, 3, seed=7)(x, training=True))


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("block_size", 0, "block_size"),
        ("block_size", (3, 3, 3), "block_size"),
        ("per_channel", 1, "per_channel"),
        ("scale", "global", "scale"),
        ("data_format", "NHWC", "data_format"),
    ],
)
def test_setting_an_option_is_checked(attribute, value, message):
    layer = DropBlock2D(0.1, 3)
    before = getattr(layer, attribute)
    with pytest.raises(ValueError, match=f"`{message}`"):
        setattr(layer, attribute, value)
    assert getattr(layer, attribute) == before


def test_setting_options_normalises_them():
    layer = DropBlock2D(0.1, 3)
    layer.block_size = 5
    layer.data_format = None
    assert layer.block_size == (5, 5)
    assert layer.data_format == keras.config.image_data_format()
    assert layer.get_config()["block_size"] == [5, 5]


def test_a_new_rate_after_tracing_warns_that_traced_functions_keep_the_old_bound():
    layer = DropBlock2D(0.1, 3, seed=0)
    x = tf.ones((4, 16, 16, 8))
    layer.rate = 0.2  # nothing traced yet: no warning
    layer(x, training=True)  # eager: nothing baked in
    layer.rate = 0.1
    step = tf.function(lambda v: layer(v, training=True))
    step(x)
    with pytest.warns(UserWarning, match=r"traced this layer at rate 0.1.*until the model is compiled again"):
        layer.rate = 0.5
    assert float(layer.current_rate) == pytest.approx(0.5)
    kept = float(tf.reduce_mean(tf.cast(step(x) != 0, tf.float32)))
    assert kept > 0.8  # the traced function still drops at about 0.1, as the warning says


@pytest.mark.parametrize("training", [False, None, np.False_])
def test_inference_tracing_does_not_count_as_training_tracing(training):
    layer = DropBlock2D(0.1, 3, seed=0)
    tf.function(lambda v: layer(v, training=training))(tf.ones((2, 8, 8, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer.rate = 0.3


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_weights_saved_without_the_layer_load_into_a_model_with_it(tmp_path, suffix):
    # As for SpatialDropout2D: adding DropBlock to a trained model keeps its checkpoints loadable.
    def model(with_dropblock):
        extra = [DropBlock2D(0.2, 3)] if with_dropblock else []
        conv = keras.layers.Conv2D
        return keras.Sequential([keras.Input((8, 8, 3)), conv(4, 3, name="a"), *extra, conv(2, 3, name="b")])

    trained = model(False)
    path = tmp_path / f"m{suffix}"
    trained.save_weights(path) if suffix == ".weights.h5" else trained.save(path)
    extended = model(True)
    extended.load_weights(path)
    for name in ("a", "b"):
        got, want = extended.get_layer(name).get_weights(), trained.get_layer(name).get_weights()
        for got_array, want_array in zip(got, want, strict=True):
            np.testing.assert_array_equal(got_array, want_array)
    assert float(extended.layers[1].current_rate) == pytest.approx(0.2)


@pytest.mark.parametrize("training", ["False", 0, 1, [False]])
def test_a_training_flag_that_is_not_a_bool_is_refused(training):
    # Keras's Dropout trains on any truthy value; training="False" would silently train.
    with pytest.raises(ValueError, match=r"Invalid value for `training`: expected True, False, None"):
        DropBlock2D(0.1, 3)(tf.ones((2, 8, 8, 3)), training=training)


def test_the_op_takes_a_tensor_rate_under_max_rate_without_retracing():
    x = _x((4, 16, 16, 8))
    rate = tf.Variable(0.0)
    step = tf.function(lambda v: drop_block(v, rate, 3, seed=(1, 2), max_rate=0.3))
    outs = []
    for value in (0.0, 0.3, 0.5, float("nan")):  # above max_rate: clipped to it; NaN counts as 0
        rate.assign(value)
        outs.append(np.asarray(step(x)))
    assert step.experimental_get_tracing_count() == 1
    zero, full, above, nan = outs
    np.testing.assert_array_equal(zero, x)
    np.testing.assert_array_equal(nan, x)
    np.testing.assert_array_equal(above, full)
    # The same masks for the rate as a number, eagerly, under the same max_rate.
    np.testing.assert_array_equal(full, drop_block(x, 0.3, 3, seed=(1, 2), max_rate=0.3))
    rate.assign(0.1)
    np.testing.assert_array_equal(step(x), drop_block(x, tf.constant(0.1), 3, seed=(1, 2), max_rate=0.3))


@pytest.mark.parametrize(
    ("rate", "max_rate", "message"),
    [
        (tf.constant(0.1), None, "`max_rate`: expected a real number in \\[0, 1\\] when `rate` is a tensor"),
        (0.4, 0.3, "`rate`: expected at most max_rate \\(0.3\\), got 0.4"),
        (tf.constant([0.1]), 0.3, "`rate`: expected a real number in \\[0, 1\\] or a scalar float tensor"),
        (tf.constant(1), 0.3, "`rate`: expected a real number in \\[0, 1\\] or a scalar float tensor"),
        (0.1, 1.5, "`max_rate`: expected a real number in \\[0, 1\\]"),
    ],
)
def test_the_op_refuses_a_bad_tensor_rate_or_max_rate(rate, max_rate, message):
    with pytest.raises(ValueError, match=message):
        drop_block(tf.ones((2, 8, 8, 3)), rate, 3, seed=(1, 2), max_rate=max_rate)


# 2048 independent maps (per-channel masks) on ones. mean and sd are the conformance oracle's
# closed forms (expected_drop_fraction; sqrt(drop_fraction_variance / 2048)), written out so
# that a wrong gamma or sampler here cannot move them: within 5 sd.
CLOSED_FORMS = [
    (0.5, (16, 16), (3, 3), 0.39262, 0.00181),
    (0.1, (14, 14), (7, 7), 0.09294, 0.00307),
    (0.25, (12, 20), (5, 3), 0.21726, 0.00212),
    (0.2, (4, 9), (7, 7), 0.18647, 0.00744),  # the block clamped to (4, 7)
]


@pytest.mark.parametrize(("rate", "spatial", "block", "mean", "sd"), CLOSED_FORMS)
def test_dropped_fraction_matches_the_closed_form(rate, spatial, block, mean, sd):
    y = drop_block(tf.ones((64, *spatial, 32)), rate, block, seed=(3, 4))
    assert abs(float(np.mean(y.numpy() == 0)) - mean) <= 5 * sd
