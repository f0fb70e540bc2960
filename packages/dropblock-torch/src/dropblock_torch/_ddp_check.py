"""DropBlock under ``DistributedDataParallel``: gloo, 2 processes, loopback only (spec ``data-parallel``).

Every rank seeds the global generator identically (the common practice). Each rank calls
one layer on the same all-ones input; those outputs come back for the conformance suite,
which judges the masks (independent across ranks) and the scale (the local batch's
``numel / kept``) itself. The engine-level sub-checks: gradients agree after a DDP step, a
rank's draw is reproducible, and the global generator stays in lockstep across ranks.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ._core.results import DataParallelRun
from .modules import DropBlock2d

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gather(t: torch.Tensor) -> list[torch.Tensor]:
    out = [torch.empty_like(t) for _ in range(WORLD_SIZE)]
    dist.all_gather(out, t.contiguous())
    return out


def _compiled_checks() -> dict[str, bool | str]:
    """``torch.compile`` of a DDP model holding DropBlock: one step, grads in sync, outputs differ."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), DropBlock2d(p=0.3, block_size=3), nn.Conv2d(8, 2, 1))
    compiled = torch.compile(nn.parallel.DistributedDataParallel(model))
    x = torch.randn(4, 3, 12, 12)
    out = compiled(x)
    out.square().mean().backward()
    grads = _gather(torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]))
    outputs = _gather(out.detach())
    return {
        "compiled_gradients_in_sync": True if torch.equal(grads[0], grads[1]) else "ranks' gradients differ",
        "compiled_masks_differ_across_ranks": True if not torch.equal(outputs[0], outputs[1]) else "same outputs",
    }


def _worker(rank: int, port: int, result_dir: str, layer_args: dict[str, Any], with_compile: bool) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE)
    try:
        checks: dict[str, bool | str] = {}
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), DropBlock2d(**layer_args), nn.Conv2d(8, 2, 1))
        ddp = nn.parallel.DistributedDataParallel(model)
        x = torch.randn(4, 3, 16, 16)  # identical on both ranks: same seed
        ddp(x).square().mean().backward()
        grads = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
        gathered = _gather(grads)
        checks["gradients_in_sync"] = True if torch.equal(gathered[0], gathered[1]) else "ranks' gradients differ"

        layer = DropBlock2d(**layer_args).train()
        ones = torch.ones(4, 8, 16, 16)
        torch.manual_seed(1234)
        out = layer(ones)
        after = torch.rand(4)
        torch.manual_seed(1234)
        again = layer(ones)
        outputs = _gather(out)
        checks["rank_draw_reproducible"] = True if torch.equal(out, again) else "same seed, different output"
        lockstep = _gather(after)
        checks["global_generator_in_lockstep"] = (
            True if torch.equal(lockstep[0], lockstep[1]) else "global generators diverged across ranks"
        )
        if with_compile:
            checks.update(_compiled_checks())
        all_checks = [None] * WORLD_SIZE
        dist.all_gather_object(all_checks, checks)
        if rank == 0:
            merged: dict[str, bool | str] = {}
            for r, rank_checks in enumerate(all_checks):
                for name, value in rank_checks.items():  # type: ignore[attr-defined]
                    if value is not True or name not in merged:
                        merged[name] = value if value is True else f"rank {r}: {value}"
            Path(result_dir, "checks.json").write_text(json.dumps(merged))
            np.save(Path(result_dir, "outputs.npy"), torch.stack(outputs).to(torch.float64).numpy())
            np.save(Path(result_dir, "input.npy"), ones.to(torch.float64).numpy())
    finally:
        dist.destroy_process_group()
    # Skip the interpreter's finalisation: gloo's worker threads can still be joinable when
    # C++ static destructors run, and std::terminate then aborts a rank that has finished
    # (about one exit in four on 2 CPUs, torch 2.13). Reached only when every check ran.
    os._exit(0)


def data_parallel_run(
    rate: float, block_size: Any, *, scale: str = "batch", per_channel: bool = True, with_compile: bool = False
) -> DataParallelRun:
    """Spawn the two gloo ranks; return each rank's layer output and the merged sub-checks of both.

    ``with_compile`` adds a ``torch.compile``-d DDP step (about a minute on 2 CPU cores).
    """
    import torch.multiprocessing as mp

    layer_args = {"p": rate, "block_size": block_size, "scale": scale, "per_channel": per_channel}
    failure = ""
    for _attempt in range(2):  # a second try if the free port was taken before the ranks bound it
        with tempfile.TemporaryDirectory() as result_dir:
            try:
                args = (_free_port(), result_dir, layer_args, with_compile)
                mp.spawn(_worker, args=args, nprocs=WORLD_SIZE, join=True)
            except Exception as error:  # reported as the sub-check's reason
                failure = f"{type(error).__name__}: {error}"
                continue
            path = Path(result_dir, "checks.json")
            if not path.is_file():
                return DataParallelRun("channels_first", [], [], {"spawned": "rank 0 wrote no result"})
            outputs = list(np.load(Path(result_dir, "outputs.npy")))
            ones = np.load(Path(result_dir, "input.npy"))
            checks = {"spawned": True, **json.loads(path.read_text())}
            return DataParallelRun("channels_first", [ones] * len(outputs), outputs, checks)
    return DataParallelRun("channels_first", [], [], {"spawned": failure})
