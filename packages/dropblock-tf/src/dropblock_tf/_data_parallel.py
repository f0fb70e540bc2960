"""Data-parallel run (issue 8): ``python -m dropblock_tf._data_parallel '{"rate": 0.3, "block_size": 3, ...}'``.

Splits the CPU into two logical devices (possible only before TensorFlow initialises,
hence a separate process) and prints one JSON object: each replica's output of one layer
call under a ``MirroredStrategy`` on the same all-ones input (the conformance suite judges
their masks and scales: the layer folds the replica id into its seed, and
``scale="batch"`` counts the replica's local batch), and named sub-checks:

* successive steps draw new masks;
* ``model.fit`` trains under the strategy, and a seeded run is reproducible.
"""

from __future__ import annotations

import json
import sys
from typing import Any

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


def main(layer_args: dict[str, Any]) -> dict[str, Any]:
    strategy = _setup()
    import keras

    from dropblock_tf import DropBlock2D

    checks: dict[str, bool | str] = {}
    n = strategy.num_replicas_in_sync
    checks["two_replicas"] = True if n == 2 else f"{n} replicas"
    with strategy.scope():
        layer = DropBlock2D(layer_args["rate"], layer_args["block_size"], seed=1, **_options(layer_args))
    x = tf.ones((2, 12, 12, 4))

    @tf.function
    def step() -> tuple[tf.Tensor, ...]:
        per_replica = strategy.run(lambda: layer(x, training=True))
        return strategy.experimental_local_results(per_replica)

    outs = [np.asarray(o) for o in step()]
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
    return {
        "data_format": "channels_last",
        "input": np.asarray(x).tolist(),
        "outputs": [out.tolist() for out in outs],
        "checks": checks,
    }


def _options(layer_args: dict[str, Any]) -> dict[str, Any]:
    return {k: layer_args[k] for k in ("scale", "per_channel") if k in layer_args}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
