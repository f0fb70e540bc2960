"""TensorFlow timings (NHWC): ours, tf.nn.dropout, x * 2 and the dense algorithm under tf.function; keras-cv eager.

Run it in an environment with ``tensorflow``, ``keras`` and ``dropblock-tf`` (optionally
``keras-cv``)::

    python -m dropblock_bench.tf_bench --out build/bench/tf.json

``ours`` is the Keras layer ``dropblock_tf.DropBlock2D(rate, block_size, dtype=...)`` called
with ``training=True`` inside ``tf.function`` (its ``SeedGenerator`` advances every call,
as ``tf.nn.dropout``'s global generator does). Forward+backward is a ``tf.GradientTape``
that watches the input and returns both ``y`` and ``tape.gradient(y, x, output_gradients=g)``
(returning only the gradient would let graph pruning skip the output), inside the same
``tf.function``. At the anchor settings we also time ``ours`` and keras-cv's
``DropBlock2D`` eagerly (keras-cv 0.9.0 fails inside ``tf.function``, keras-team/keras-cv#2451)
and ``ours`` / ``tf.nn.dropout`` under ``tf.function(jit_compile=True)`` (XLA on CPU).

Memory: peak RSS growth (``VmHWM`` after a reset) of one call in a fresh subprocess, float32
only, as in the torch module. Saved-for-backward bytes are not measured for TensorFlow: a ``GradientTape``
keeps whatever its op gradients capture and exposes no hook to list it (reported n/a).
"""

from __future__ import annotations

import functools
import gc
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from .common import (
    MEMORY_BLOCK,
    MEMORY_RATE,
    Config,
    add_note,
    clocks,
    contention_note,
    environment,
    max_rss_bytes,
    nhwc,
    pin_threads,
    print_environment,
    print_rows,
    reset_peak_rss,
    rows_of,
    run_arguments,
    selected_grid,
    write_result,
)
from .timing import Case, interleave

Impl = Callable[[Any], Any]
ForwardBackward = Callable[[Any, Any], Any]
_NO_MEMORY = ("ours-eager", "ours-xla", "dropout-xla")


def dense_drop_block2d(x: Any, p: float, k: int) -> Any:
    """The dense algorithm in NHWC: a uniform per corner, a k x k max-pool of the whole tensor, rescale."""
    import tensorflow as tf

    n, h, w, c = x.shape
    kh, kw = min(k, h), min(k, w)
    vh, vw = h - kh + 1, w - kw + 1
    gamma = min(1.0, p * h * w / (kh * kw * vh * vw))
    seeds = tf.cast(tf.random.uniform((n, vh, vw, c)) < gamma, x.dtype)
    padded = tf.pad(seeds, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]])
    covered = tf.nn.max_pool2d(padded, ksize=(kh, kw), strides=1, padding="VALID")
    keep = 1.0 - covered
    kept = tf.reduce_sum(tf.cast(keep, tf.float32))
    s = tf.where(kept > 0, float(n * h * w * c) / tf.maximum(kept, 1.0), 0.0)
    return x * tf.stop_gradient(keep * tf.cast(s, x.dtype))


def _forward_backward(f: Impl) -> ForwardBackward:
    import tensorflow as tf

    def fb(x: Any, g: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        # Return the output too: the next layer consumes it, and graph pruning would otherwise drop it.
        return y, tape.gradient(y, x, output_gradients=g)

    return fb


def implementations(config: Config, anchors: bool, notes: list[str]) -> dict[str, tuple[Impl, ForwardBackward]]:
    """name -> (forward(x), forward_backward(x, g)), each already wrapped as it is timed."""
    import tensorflow as tf

    from dropblock_tf import DropBlock2D

    p, k, dtype = config.rate, config.block, config.dtype
    layer = DropBlock2D(p, k, dtype=dtype)

    def ours(x: Any) -> Any:
        return layer(x, training=True)

    def dropout(x: Any) -> Any:
        return tf.nn.dropout(x, rate=p)

    def times2(x: Any) -> Any:
        return x * 2.0

    def dense(x: Any) -> Any:
        return dense_drop_block2d(x, p, k)

    def graph(f: Impl, jit: bool = False) -> tuple[Impl, ForwardBackward]:
        return tf.function(f, jit_compile=jit), tf.function(_forward_backward(f), jit_compile=jit)

    impls: dict[str, tuple[Impl, ForwardBackward]] = {
        "ours": graph(ours),
        "dropout": graph(dropout),
        "x*2": graph(times2),
    }
    if not anchors:
        return impls
    impls["dense"] = graph(dense)
    impls["ours-eager"] = (ours, _forward_backward(ours))
    if config.extras:
        impls["ours-xla"] = graph(ours, jit=True)
        impls["dropout-xla"] = graph(dropout, jit=True)
    try:
        import keras_cv

        kcv = keras_cv.layers.DropBlock2D(p, k, dtype=dtype)

        def keras_cv_drop(x: Any) -> Any:
            return kcv(x, training=True)

        impls["keras-cv"] = (keras_cv_drop, _forward_backward(keras_cv_drop))
    except Exception as exc:
        add_note(notes, f"keras-cv: skipped, not importable ({type(exc).__name__}: {exc})")
    return impls


def _input(config: Config, seed: int = 0) -> Any:
    import tensorflow as tf

    return tf.cast(tf.random.stateless_normal(nhwc(config.shape), seed=[seed, 1]), config.dtype)


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS growth of one implementation's forward, then forward+backward, in this fresh process."""
    import tensorflow as tf

    config = Config(tuple(spec["shape"]), spec["dtype"], spec["block"], spec["p"])
    fwd, fb = implementations(config, anchors=True, notes=[])[spec["impl"]]
    x = _input(config)
    g = _input(config, seed=1)
    tiny = tf.cast(tf.random.stateless_normal((2, 16, 16, 4), seed=[2, 1]), config.dtype)
    trace_fwd = getattr(fwd, "get_concrete_function", None)
    trace_fb = getattr(fb, "get_concrete_function", None)
    if trace_fwd is not None and trace_fb is not None:  # trace on the real shape: tracing allocates no tensor data
        spec_x = tf.TensorSpec(x.shape, x.dtype)
        trace_fwd(spec_x)
        trace_fb(spec_x, spec_x)
    else:  # eager: warm the ops (and build the layer) on a tiny tensor
        fwd(tiny)
        fb(tiny, tiny)
    gc.collect()
    base = reset_peak_rss()
    y = fwd(x)
    del y
    fwd_peak = max_rss_bytes() - base
    gx = fb(x, g)
    del gx
    return {
        "fwd_peak_bytes": fwd_peak,
        "fwdbwd_peak_bytes": max_rss_bytes() - base,
        "method": "peak RSS (VmHWM, reset after setup) minus RSS after setup, in a fresh process (float32 only)",
    }


def memory_rows(shapes_dtypes: list[tuple[tuple[int, ...], str]], notes: list[str], threads: int | None) -> list[dict]:
    threads_arg = ["--threads", str(threads)] if threads else []
    rows = []
    add_note(
        notes,
        "memory: ours' output pass is a small XLA-compiled function, compiled at the first call on a"
        " shape, so its peak includes XLA's one-time compilation; a warm-up call on the real tensor"
        " would hide the tensors instead (TF keeps freed CPU buffers for reuse)",
    )
    for shape, dtype in [(s, d) for s, d in shapes_dtypes if d == "float32"]:
        config = Config(shape, dtype, MEMORY_BLOCK, MEMORY_RATE)  # type: ignore[arg-type]
        # XLA and eager variants of ours run the same ops (XLA compilation would dominate the RSS).
        names = [n for n in implementations(config, anchors=True, notes=notes) if n not in _NO_MEMORY]
        for name in names:
            elements = 1
            for d in shape:
                elements *= d
            row: dict[str, Any] = {**config.key(), "impl": name, "elements": elements, "saved_bytes": None}
            spec = {**config.key(), "impl": name}
            try:
                out = subprocess.run(
                    [sys.executable, "-m", "dropblock_bench.tf_bench", "--probe", json.dumps(spec), *threads_arg],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=600,
                )
                row.update(json.loads(out.stdout.strip().splitlines()[-1]))
            except Exception as exc:
                detail = getattr(exc, "stderr", "") or ""
                row["memory_error"] = f"{type(exc).__name__}: {exc} {detail[-300:]}"[:600]
            mib = 2**20
            if "fwdbwd_peak_bytes" in row:
                print(
                    f"memory {shape} {dtype} {name}: fwd peak {row['fwd_peak_bytes'] / mib:.1f} MiB, "
                    f"fwd+bwd peak {row['fwdbwd_peak_bytes'] / mib:.1f} MiB"
                )
            else:
                print(f"memory {shape} {dtype} {name}: {row.get('memory_error')}")
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = run_arguments("tf").parse_args(argv)
    threads = pin_threads(args.threads)
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe))))
        return 0
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    extra = {
        "framework": "tf",
        "device": "cpu",
        "layout": "NHWC",
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default (all cores)",
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads() or "default",
        "pinned_cpus": threads,
    }
    env = environment(extra)
    print_environment(env)
    notes: list[str] = [n for n in [contention_note(env)] if n]
    rows: list[dict] = []
    configs = selected_grid(args)
    for config in configs:
        impls = implementations(config, anchors=config.anchors and not args.no_anchors, notes=notes)
        x = _input(config)
        g = _input(config, seed=1)
        cases = []
        for name, (fwd, fb) in impls.items():
            cases.append(Case(name, "fwd", functools.partial(fwd, x)))
            cases.append(Case(name, "fwdbwd", functools.partial(fb, x, g)))
        stats, errors = interleave(cases, args.rounds, args.warmup, *clocks(args))
        print_rows(config, stats, errors)
        rows += rows_of(config, stats, errors)
    memory = []
    if not args.no_memory:
        seen: list[tuple[tuple[int, ...], str]] = []
        for c in configs:
            if (c.shape, c.dtype) not in seen:
                seen.append((c.shape, c.dtype))
        memory = memory_rows(seen, notes, args.threads)
    write_result(args, "tf", "NHWC", env, rows, memory, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
