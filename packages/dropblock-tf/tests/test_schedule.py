"""DropBlockSchedule: the linear ramp, no retracing, and restoring from checkpoints."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from dropblock_tf import DropBlock2D, DropBlockSchedule
from dropblock_tf import layers as layers_module

DATA = np.random.default_rng(0).normal(size=(40, 6, 6, 2)).astype("float32")
TARGETS = np.zeros((40, 1), "float32")


def _model(rates=(0.2, 0.1)):
    inner = keras.Sequential([keras.Input((6, 6, 2)), DropBlock2D(rates[1], 3, seed=2)], name="inner")
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            DropBlock2D(rates[0], 3, seed=1),
            inner,  # a nested model's layers are scheduled too
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def _rates(model):
    return [
        float(model.layers[0].current_rate.value.numpy()),
        float(model.layers[1].layers[0].current_rate.value.numpy()),
    ]


def _fit(model, steps, schedule):
    model.fit(DATA[: 2 * steps], TARGETS[: 2 * steps], batch_size=2, epochs=1, verbose=0, callbacks=[schedule])


def test_rates_ramp_linearly_and_do_not_retrace(monkeypatch):
    traces = []
    original = layers_module.drop_block_nd
    monkeypatch.setattr(layers_module, "drop_block_nd", lambda *a, **k: traces.append(1) or original(*a, **k))
    model = _model()
    schedule = DropBlockSchedule(10, start=0.0)
    _fit(model, 4, schedule)
    assert _rates(model) == pytest.approx([0.08, 0.04])
    _fit(model, 4, schedule)
    assert _rates(model) == pytest.approx([0.16, 0.08])
    _fit(model, 5, schedule)
    assert _rates(model) == pytest.approx([0.2, 0.1])  # held at the target after total_steps
    assert len(traces) == 2  # one trace of the train step (two layers), whatever the rate


def test_start_value():
    model = _model()
    _fit(model, 2, DropBlockSchedule(4, start=0.05))
    assert _rates(model) == pytest.approx([0.125, 0.075])


def test_rate_at_clamps_negative_steps_and_takes_a_float32_start():
    schedule = DropBlockSchedule(4, start=float(np.float32(0.1)))  # 0.10000000149..., the layer's 0.1 in float32
    assert schedule.rate_at(-2, 0.1) == 0.1
    assert DropBlockSchedule(4, start=0.02).rate_at(-2, 0.1) == 0.02


def test_start_above_a_target_is_rejected():
    with pytest.raises(ValueError, match="start"):
        _fit(_model(), 1, DropBlockSchedule(4, start=0.15))


def test_a_model_without_dropblock_is_refused():
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="holds no DropBlock layer"):
        _fit(model, 1, DropBlockSchedule(4))


@pytest.mark.parametrize("kwargs", [{"total_steps": 0}, {"total_steps": 2.5}, {"total_steps": 4, "start": 1.5}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        DropBlockSchedule(**kwargs)


@pytest.mark.parametrize("kind", ["keras", "weights"])
def test_restored_model_resumes_the_ramp(tmp_path, kind):
    model = _model()
    _fit(model, 3, DropBlockSchedule(10))
    if kind == "keras":
        model.save(tmp_path / "m.keras")
        restored = keras.saving.load_model(tmp_path / "m.keras")
    else:
        model.save_weights(tmp_path / "m.weights.h5")
        restored = _model()
        restored.load_weights(tmp_path / "m.weights.h5")
    assert _rates(restored) == pytest.approx([0.06, 0.03])
    if kind == "keras":  # the optimizer's step count travels in .keras files
        _fit(restored, 1, DropBlockSchedule(10))
        assert _rates(restored) == pytest.approx([0.08, 0.04])


class _StepFractions(keras.metrics.Metric):
    """The fraction of zeros in every step's output, recorded inside the compiled train loop."""

    def __init__(self, steps):
        super().__init__(name="step_fractions")
        self.values = self.add_variable(shape=(steps,), initializer="zeros", name="values")
        self.index = self.add_variable(shape=(), initializer="zeros", dtype="int32", name="index")

    def update_state(self, y_true, y_pred, sample_weight=None):
        fraction = tf.reduce_mean(tf.cast(tf.equal(y_pred, 0.0), tf.float32))
        where = tf.reshape(tf.convert_to_tensor(self.index), [1, 1])
        self.values.assign(tf.tensor_scatter_nd_update(tf.convert_to_tensor(self.values), where, [fraction]))
        self.index.assign_add(1)

    def result(self):
        return 0.0

    def reset_state(self):
        pass  # keep every step's value across Keras's per-epoch reset


def test_the_ramp_advances_every_step_when_one_execution_runs_several():
    # Keras calls the callback once per execution; the ramp is computed in the train step itself.
    layer = DropBlock2D(0.3, 3, seed=0)
    conv = keras.layers.Conv2D(4, 1, kernel_initializer="ones", bias_initializer="zeros")
    model = keras.Sequential([keras.Input((16, 16, 4)), conv, layer])
    fractions = _StepFractions(10)
    model.compile(keras.optimizers.SGD(0.0), "mse", metrics=[fractions], steps_per_execution=4)
    x = np.ones((32, 16, 16, 4), "float32")
    model.fit(x, np.zeros_like(x), batch_size=4, verbose=0, callbacks=[DropBlockSchedule(8)])  # 8 steps
    steps = fractions.values.numpy()
    assert steps[0] == 0.0  # rate 0 at step 0
    assert all(steps[1:4] > 0.0), steps  # 0.0375, 0.075, 0.1125: not held at 0 until step 4
    assert float(layer.current_rate.value.numpy()) == pytest.approx(0.3)
    # Once fit has ended, current_rate is in force again, in the same traced train step.
    layer.current_rate.assign(0.0)
    model.fit(x[:8], np.zeros_like(x[:8]), batch_size=4, verbose=0)  # 2 steps
    assert list(fractions.values.numpy()[8:]) == [0.0, 0.0]
