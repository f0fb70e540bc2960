"""Data-parallel check (issue 8), run as ``python -m dropblock_tf._data_parallel``.

Splits the CPU into two logical devices (possible only before TensorFlow initialises,
hence a separate process) and prints one JSON object of named sub-checks:

* each replica of a ``MirroredStrategy`` draws its own masks (identical inputs, different
  zero patterns): the layer folds the replica id into its seed;
* ``scale="batch"`` normalises by the replica's local batch;
* ``model.fit`` trains under the strategy, and a seeded run is reproducible.
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf


def _setup() -> tf.distribute.Strategy:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def _fit_once(strategy: tf.distribute.Strategy) -> list[np.ndarray]:
    import keras

    from dropblock_tf import DropBlock2D

    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((8, 8, 3)),
                keras.layers.Conv2D(4, 3, padding="same"),
                DropBlock2D(0.2, 3, seed=5),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 8, 8, 3)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    if not np.all(np.isfinite(history.history["loss"])):
        raise RuntimeError(f"non-finite loss {history.history['loss']}")
    return [np.asarray(w) for w in model.get_weights()]


def main() -> dict[str, bool | str]:
    strategy = _setup()
    import keras

    from dropblock_tf import DropBlock2D

    checks: dict[str, bool | str] = {}
    n = strategy.num_replicas_in_sync
    checks["two_replicas"] = True if n == 2 else f"{n} replicas"
    with strategy.scope():
        layer = DropBlock2D(0.3, 3, seed=1, scale="batch")
    x = tf.ones((2, 12, 12, 4))

    @tf.function
    def step() -> tuple[tf.Tensor, ...]:
        per_replica = strategy.run(lambda: layer(x, training=True))
        return strategy.experimental_local_results(per_replica)

    outs = [np.asarray(o) for o in step()]
    differ = not np.array_equal(outs[0] == 0, outs[1] == 0)
    checks["replica_masks_differ"] = True if differ else "both replicas drew the same mask"
    local_ok = []
    for out in outs:
        kept = int((out != 0).sum())
        expected = out.size / kept if kept else 0.0
        local_ok.append(bool(np.allclose(out[out != 0], np.float32(expected), rtol=1e-6)))
    checks["batch_scale_is_local"] = True if all(local_ok) else "kept values are not numel/kept of the replica batch"
    again = [np.asarray(o) for o in step()]
    checks["successive_steps_differ"] = True if not np.array_equal(again[0], outs[0]) else "same mask twice"
    try:
        first = _fit_once(strategy)
        checks["fit_runs"] = True
        second = _fit_once(strategy)
        same = all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
        checks["seeded_fit_reproducible"] = True if same else "two seeded runs gave different weights"
    except Exception as err:  # reported as a failed sub-check
        checks["fit_runs"] = f"{type(err).__name__}: {err}"
    del keras
    return checks


if __name__ == "__main__":
    print(json.dumps(main()))
