"""JAX timings (NHWC, under jax.jit): ours, Flax-style dropout, x * 2 and the dense algorithm.

Run it in an environment with ``jax`` and ``dropblock-jax``::

    python -m dropblock_bench.jax_bench --out build/bench/jax.json

Every implementation is a function ``f(key, x)`` compiled with ``jax.jit``; forward+backward
is ``jax.jit`` of ``jax.vjp(lambda x: f(key, x), x)`` returning both the output and the
input gradient ``vjp_fn(g)`` (returning only the gradient would let XLA skip the output). Each call is followed by
``block_until_ready``. The key is the same array on every call (what is timed does not
depend on its value: the sparse sampler draws a static number of slots).

"dropout" is Flax's ``Dropout`` written out: ``lax.select(bernoulli(key, 1 - p, x.shape),
x / (1 - p), 0)``; "dense" is a Bernoulli per corner, a k x k ``lax.reduce_window`` max
over the whole tensor and the rescale.

Memory is XLA's own buffer assignment of the compiled call (``compiled.memory_analysis()``:
temporaries plus outputs, arguments excluded), not a process measurement. Saved for
backward: the residual arrays of ``jax.vjp`` on the jitted forward, excluding the input
and the output themselves.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from .common import (
    MEMORY_BLOCK,
    MEMORY_RATE,
    Config,
    clocks,
    contention_note,
    environment,
    nhwc,
    pin_threads,
    print_environment,
    print_rows,
    rows_of,
    run_arguments,
    selected_grid,
    write_result,
)
from .timing import Case, interleave

Impl = Callable[[Any, Any], Any]


def implementations(config: Config, anchors: bool, notes: list[str]) -> dict[str, Impl]:
    import jax
    import jax.numpy as jnp

    from dropblock_jax import drop_block

    p, k = config.rate, config.block

    def ours(key: Any, x: Any) -> Any:
        return drop_block(key, x, p, k)

    def dropout(key: Any, x: Any) -> Any:
        keep_prob = 1.0 - p
        mask = jax.random.bernoulli(key, p=keep_prob, shape=x.shape)
        return jax.lax.select(mask, x / keep_prob, jnp.zeros_like(x))

    def times2(key: Any, x: Any) -> Any:
        return x * 2.0

    def dense(key: Any, x: Any) -> Any:
        n, h, w, c = x.shape
        kh, kw = min(k, h), min(k, w)
        vh, vw = h - kh + 1, w - kw + 1
        gamma = min(1.0, p * h * w / (kh * kw * vh * vw))
        seeds = jax.random.bernoulli(key, gamma, (n, vh, vw, c)).astype(x.dtype)
        covered = jax.lax.reduce_window(
            seeds,
            jnp.array(0, x.dtype),
            jax.lax.max,
            (1, kh, kw, 1),
            (1, 1, 1, 1),
            ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)),
        )
        keep = 1 - covered
        kept = jnp.sum(keep, dtype=jnp.float32)
        s = jnp.where(kept > 0, x.size / jnp.maximum(kept, 1.0), 0.0)
        return x * jax.lax.stop_gradient(keep * s.astype(x.dtype))

    impls: dict[str, Impl] = {"ours": ours, "dropout": dropout, "x*2": times2}
    if anchors:
        impls["dense"] = dense
    return impls


def compiled(f: Impl) -> tuple[Any, Any]:
    """``jax.jit`` of the forward ``f(key, x)`` and of the forward+backward ``fb(key, x, g)``."""
    import jax

    def fb(key: Any, x: Any, g: Any) -> Any:
        # Return the output too: it is what the next layer consumes, and XLA would otherwise drop it.
        y, vjp_fn = jax.vjp(lambda x: f(key, x), x)
        return y, vjp_fn(g)[0]

    return jax.jit(f), jax.jit(fb)


def _input(config: Config, device: Any, seed: int = 0) -> Any:
    import jax

    x = jax.random.normal(jax.random.key(seed), nhwc(config.shape)).astype(config.dtype)
    return jax.device_put(x, device)


def memory_rows(configs: list[Config], device: Any, notes: list[str]) -> list[dict]:
    import jax

    rows = []
    seen: list[tuple[tuple[int, ...], str]] = []
    for c in configs:
        if (c.shape, c.dtype) in seen:
            continue
        seen.append((c.shape, c.dtype))
        config = Config(c.shape, c.dtype, MEMORY_BLOCK, MEMORY_RATE)
        key = jax.device_put(jax.random.key(0), device)
        x = _input(config, device)
        g = _input(config, device, seed=1)
        for name, f in implementations(config, anchors=True, notes=notes).items():
            row: dict[str, Any] = {**config.key(), "impl": name, "elements": x.size}
            fwd, fb = compiled(f)
            try:
                mf = fwd.lower(key, x).compile().memory_analysis()
                mb = fb.lower(key, x, g).compile().memory_analysis()
                row["fwd_peak_bytes"] = int(mf.temp_size_in_bytes + mf.output_size_in_bytes)
                row["fwdbwd_peak_bytes"] = int(mb.temp_size_in_bytes + mb.output_size_in_bytes)
                row["method"] = "XLA memory_analysis(): temp + output bytes of the compiled call"
            except Exception as exc:
                row["memory_error"] = f"{type(exc).__name__}: {exc}"[:300]
            try:
                y, vjp_fn = jax.vjp(jax.jit(lambda x, f=f, key=key: f(key, x)), x)
                skip = {id(x), id(y)}
                leaves = [a for a in jax.tree_util.tree_leaves(vjp_fn) if hasattr(a, "nbytes") and id(a) not in skip]
                total = int(sum(_nbytes(a) for a in leaves))
                row.update(
                    saved_bytes=total,
                    saved_bytes_per_element=total / x.size,
                    saved_tensors=len(leaves),
                    saved_shapes=[f"{getattr(a, 'dtype', '?')}{list(getattr(a, 'shape', ()))}" for a in leaves][:8],
                )
            except Exception as exc:
                row["saved_error"] = f"{type(exc).__name__}: {exc}"[:300]
            mib = 2**20
            print(
                f"memory {config.shape} {config.dtype} {name}: fwd {row.get('fwd_peak_bytes', 0) / mib:.1f} MiB, "
                f"fwd+bwd {row.get('fwdbwd_peak_bytes', 0) / mib:.1f} MiB, saved {row.get('saved_bytes', 0) / mib:.2f} "
                f"MiB ({row.get('saved_bytes_per_element', float('nan')):.3f} B/elem) {row.get('saved_shapes', '')}"
            )
            rows.append(row)
    return rows


def _ready(f: Callable[..., Any], *args: Any) -> None:
    """Call ``f`` and wait until every output is computed (JAX dispatches asynchronously)."""
    import jax

    jax.block_until_ready(f(*args))


def _nbytes(a: Any) -> int:
    import jax

    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        return int(jax.random.key_data(a).nbytes)
    return int(a.nbytes)


def main(argv: list[str] | None = None) -> int:
    args = run_arguments("jax").parse_args(argv)
    threads = pin_threads(args.threads)
    import jax

    platform = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu"}.get(args.device or "cpu", args.device)
    device = jax.devices(platform)[0]
    extra = {
        "framework": "jax",
        "device": f"{device.platform} ({getattr(device, 'device_kind', '')})",
        "layout": "NHWC",
        "jax_default_backend": jax.default_backend(),
        "pinned_cpus": threads,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    env = environment(extra)
    print_environment(env)
    notes: list[str] = [
        *[n for n in [contention_note(env)] if n],
        "no third-party JAX DropBlock is benchmarked: the only public one never drops (see docs/anchors)",
    ]
    rows: list[dict] = []
    configs = selected_grid(args)
    key = jax.device_put(jax.random.key(0), device)
    for config in configs:
        impls = implementations(config, anchors=config.anchors and not args.no_anchors, notes=notes)
        x = _input(config, device)
        g = _input(config, device, seed=1)
        cases = []
        for name, f in impls.items():
            fwd, fb = compiled(f)
            cases.append(Case(name, "fwd", functools.partial(_ready, fwd, key, x)))
            cases.append(Case(name, "fwdbwd", functools.partial(_ready, fb, key, x, g)))
        stats, errors = interleave(cases, args.rounds, args.warmup, *clocks(args))
        print_rows(config, stats, errors)
        rows += rows_of(config, stats, errors)
    memory = [] if args.no_memory else memory_rows(configs, device, notes)
    write_result(args, "jax", "NHWC", env, rows, memory, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
