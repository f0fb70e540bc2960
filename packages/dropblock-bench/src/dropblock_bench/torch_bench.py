"""PyTorch timings: ours (module and functional), F.dropout, x * 2, the dense algorithm and the anchors.

Run it in an environment with ``torch`` and ``dropblock-torch`` (and, optionally,
``torchvision``, ``timm``, ``dropblock``)::

    python -m dropblock_bench.torch_bench --out build/bench/torch.json

Forward is timed under ``torch.no_grad()``; forward+backward is a forward on a leaf that
requires grad plus ``torch.autograd.grad(y, x, g)`` with a fixed upstream gradient.

Memory: a CPU tensor's allocations are invisible to ``tracemalloc``, so each
implementation runs in a fresh subprocess (float32 only) and reports its peak resident
set size (``VmHWM``, reset with ``/proc/self/clear_refs`` after setup) minus the resident
size after setup (input, upstream gradient and a small warm-up already allocated). That
counts every page touched at the peak, including allocator slack and the output itself,
to about +-1 MiB. On CUDA the probe reports
``torch.cuda.max_memory_allocated`` growth instead. Saved-for-backward bytes come from
``torch.autograd.graph.saved_tensors_hooks``: the distinct storages packed by autograd
during the forward, excluding storages shared with the input or the output (those cost
no extra memory).
"""

from __future__ import annotations

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
RSS_METHOD = "peak RSS (VmHWM, reset after setup) minus RSS after setup, in a fresh process (float32 only)"


def dense_drop_block2d(x: Any, p: float, k: int) -> Any:
    """The dense algorithm: a Bernoulli per corner, a k x k max-pool over the whole tensor, rescale.

    Same distribution as the spec (valid-region corners, per-channel, ``scale="batch"``),
    written the obvious way (as torchvision does, plus the valid region).
    """
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    kh, kw = min(k, h), min(k, w)
    vh, vw = h - kh + 1, w - kw + 1
    gamma = min(1.0, p * h * w / (kh * kw * vh * vw))
    with torch.no_grad():
        seeds = (torch.rand((n, c, vh, vw), device=x.device) < gamma).to(x.dtype)
        covered = F.max_pool2d(F.pad(seeds, (kw - 1, kw - 1, kh - 1, kh - 1)), (kh, kw), stride=1)
        keep = 1.0 - covered
        kept = keep.sum(dtype=torch.float32)
        s = torch.where(kept > 0, keep.numel() / kept, 0.0)
        mask = keep * s.to(x.dtype)
    return x * mask


def implementations(config: Config, anchors: bool, notes: list[str]) -> dict[str, Impl]:
    import torch.nn.functional as F

    from dropblock_torch import DropBlock2d
    from dropblock_torch.functional import drop_block2d

    p, k = config.rate, config.block
    module = DropBlock2d(p=p, block_size=k)
    impls: dict[str, Impl] = {
        "ours": module,
        "dropout": lambda x: F.dropout(x, p, training=True),
        "x*2": lambda x: x * 2.0,
    }
    if not anchors:
        return impls
    impls["dense"] = lambda x: dense_drop_block2d(x, p, k)
    impls["ours-fn"] = lambda x: drop_block2d(x, p, k)
    try:
        from torchvision.ops import drop_block2d as tv_drop_block2d

        impls["torchvision"] = lambda x: tv_drop_block2d(x, p, k, training=True)
    except Exception as exc:
        add_note(notes, f"torchvision: skipped, not importable ({type(exc).__name__}: {exc})")
    try:
        from timm.layers import DropBlock2d as TimmDropBlock2d

        impls["timm"] = TimmDropBlock2d(drop_prob=p, block_size=k, couple_channels=False)
    except Exception as exc:
        add_note(notes, f"timm: skipped, not importable ({type(exc).__name__}: {exc})")
    try:
        import dropblock

        impls["miguelvr"] = dropblock.DropBlock2D(drop_prob=p, block_size=k)
    except Exception as exc:
        add_note(notes, f"dropblock (miguelvr): skipped, not importable ({type(exc).__name__}: {exc})")
    return impls


def _dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _sync(device: str) -> Callable[[], None]:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def cases_for(impls: dict[str, Impl], x: Any, xr: Any, g: Any, device: str) -> list[Case]:
    import torch

    sync = _sync(device)
    cases = []
    for name, f in impls.items():

        def fwd(f: Impl = f) -> None:
            with torch.no_grad():
                f(x)
            sync()

        def fwdbwd(f: Impl = f) -> None:
            y = f(xr)
            torch.autograd.grad(y, xr, g)
            sync()

        cases += [Case(name, "fwd", fwd), Case(name, "fwdbwd", fwdbwd)]
    return cases


def saved_for_backward(f: Impl, xr: Any) -> dict[str, Any]:
    """Distinct storages autograd saves during ``f(xr)``, without those of the input or the output."""
    import torch

    packed: list[Any] = []

    def pack(t: Any) -> Any:
        packed.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = f(xr)
    skip = {xr.untyped_storage().data_ptr(), y.untyped_storage().data_ptr()}
    storages: dict[int, int] = {}
    aliases = 0
    for t in packed:
        storage = t.untyped_storage()
        if storage.data_ptr() in skip:
            aliases += 1
            continue
        storages[storage.data_ptr()] = storage.nbytes()
    total = sum(storages.values())
    return {
        "saved_bytes": total,
        "saved_bytes_per_element": total / xr.numel(),
        "saved_tensors": len(packed),
        "saved_aliases_of_input_or_output": aliases,
    }


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak memory growth of one implementation, run in this (fresh) process."""
    import torch

    config = Config(tuple(spec["shape"]), spec["dtype"], spec["block"], spec["p"])
    device = spec["device"]
    impls = implementations(config, anchors=True, notes=[])
    f = impls[spec["impl"]]
    x = torch.randn(config.shape, device=device).to(_dtype(config.dtype))
    g = torch.randn_like(x)
    xr = x.detach().clone().requires_grad_()
    # Warm up code paths and the thread pool on a tiny tensor, so they don't count.
    tiny = torch.randn((2, 4, 16, 16), device=device).to(x.dtype).requires_grad_()
    with torch.no_grad():
        f(tiny)
    torch.autograd.grad(f(tiny), tiny, torch.ones_like(tiny))
    gc.collect()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = reset_peak_rss()

    def peak() -> int:
        if cuda:
            torch.cuda.synchronize()
            return int(torch.cuda.max_memory_allocated() - base)
        return max_rss_bytes() - base

    with torch.no_grad():
        y = f(x)
    del y
    fwd_peak = peak()
    y = f(xr)
    (gx,) = torch.autograd.grad(y, xr, g)
    del y, gx
    fwdbwd_peak = peak()
    return {
        "fwd_peak_bytes": fwd_peak,
        "fwdbwd_peak_bytes": fwdbwd_peak,
        "method": "cuda max_memory_allocated growth" if cuda else RSS_METHOD,
    }


def memory_rows(
    shapes_dtypes: list[tuple[tuple[int, ...], str]], device: str, notes: list[str], threads: int | None
) -> list[dict]:
    import torch

    threads_arg = ["--threads", str(threads)] if threads else []
    rows = []
    for shape, dtype in shapes_dtypes:
        config = Config(shape, dtype, MEMORY_BLOCK, MEMORY_RATE)  # type: ignore[arg-type]
        impls = implementations(config, anchors=True, notes=notes)
        x = torch.randn(config.shape, device=device).to(_dtype(dtype))
        xr = x.detach().clone().requires_grad_()
        for name, f in impls.items():
            row: dict[str, Any] = {**config.key(), "impl": name, "elements": x.numel()}
            try:
                row.update(saved_for_backward(f, xr))
            except Exception as exc:
                row["saved_error"] = f"{type(exc).__name__}: {exc}"[:300]
            spec = {**config.key(), "impl": name, "device": device}
            if dtype != "float32":  # subprocess probes are slow on a busy 2-core machine: float32 only
                rows.append(row)
                print(f"memory {shape} {dtype} {name}: saved {row.get('saved_bytes_per_element', '?')} B/elem")
                continue
            try:
                out = subprocess.run(
                    [sys.executable, "-m", "dropblock_bench.torch_bench", "--probe", json.dumps(spec), *threads_arg],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=600,
                )
                row.update(json.loads(out.stdout.strip().splitlines()[-1]))
            except Exception as exc:
                detail = getattr(exc, "stderr", "") or ""
                row["memory_error"] = f"{type(exc).__name__}: {exc} {detail[-300:]}"[:600]
            print(f"memory {shape} {dtype} {name}: {_memory_line(row)}")
            rows.append(row)
    return rows


def _memory_line(row: dict[str, Any]) -> str:
    if "fwdbwd_peak_bytes" not in row:
        return row.get("memory_error", "?")
    mib = 2**20
    saved = row.get("saved_bytes")
    saved_s = f"{saved / mib:.1f} MiB ({row['saved_bytes_per_element']:.2f} B/elem)" if saved is not None else "?"
    peaks = f"fwd peak {row['fwd_peak_bytes'] / mib:.1f} MiB, fwd+bwd peak {row['fwdbwd_peak_bytes'] / mib:.1f} MiB"
    return f"{peaks}, saved {saved_s}"


def main(argv: list[str] | None = None) -> int:
    args = run_arguments("torch").parse_args(argv)
    device = args.device or "cpu"
    if args.probe:
        pin_threads(args.threads)
        print(json.dumps(probe(json.loads(args.probe))))
        return 0
    threads = pin_threads(args.threads)
    import torch

    torch.set_num_threads(threads)
    extra = {
        "framework": "torch",
        "device": device if not device.startswith("cuda") else f"{device} ({torch.cuda.get_device_name()})",
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "pinned_cpus": threads,
    }
    env = environment(extra)
    print_environment(env)
    notes: list[str] = [n for n in [contention_note(env)] if n]
    rows: list[dict] = []
    torch.manual_seed(0)
    configs = selected_grid(args)
    for config in configs:
        impls = implementations(config, anchors=config.anchors and not args.no_anchors, notes=notes)
        x = torch.randn(config.shape, device=device).to(_dtype(config.dtype))
        g = torch.randn_like(x)
        xr = x.detach().clone().requires_grad_()
        stats, errors = interleave(cases_for(impls, x, xr, g, device), args.rounds, args.warmup, *clocks(args))
        print_rows(config, stats, errors)
        rows += rows_of(config, stats, errors)
        del x, g, xr
    memory = []
    if not args.no_memory:
        seen: list[tuple[tuple[int, ...], str]] = []
        for c in configs:
            if (c.shape, c.dtype) not in seen:
                seen.append((c.shape, c.dtype))
        memory = memory_rows(seen, device, notes, args.threads)
    write_result(args, "torch", "NCHW", env, rows, memory, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
