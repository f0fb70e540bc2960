"""The benchmark grid, the environment record and the JSON result file (framework-free)."""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Logical shapes (N, C, H, W); TF and JAX run the same tensors channels_last (N, H, W, C).
SHAPES: tuple[tuple[int, int, int, int], ...] = ((16, 64, 56, 56), (8, 256, 28, 28))
BLOCKS: tuple[int, ...] = (3, 5, 7)
RATES: tuple[float, ...] = (0.05, 0.1, 0.25)
DTYPES: tuple[str, ...] = ("float32", "bfloat16")
# The dense algorithm, the third-party DropBlocks and the other slow extras run on a reduced
# grid to keep the whole benchmark near 20 minutes on a 2-core machine: every shape and dtype,
# blocks 3 and 7, one rate (their full-tensor work does not depend on the rate).
ANCHOR_RATES: tuple[float, ...] = (0.1,)
ANCHOR_BLOCKS: tuple[int, ...] = (3, 7)
# Memory and saved-for-backward bytes: every implementation, at one setting per shape and dtype.
MEMORY_BLOCK = 7
MEMORY_RATE = 0.1

DISTRIBUTIONS = (
    "dropblock-bench",
    "dropblock-core",
    "dropblock-torch",
    "dropblock-tf",
    "dropblock-jax",
    "numpy",
    "torch",
    "torchvision",
    "timm",
    "dropblock",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "keras-cv",
    "jax",
    "jaxlib",
    "flax",
    "jax-cuda12-plugin",
    "jax-cuda13-plugin",
)


@dataclass(frozen=True)
class Config:
    """One benchmarked setting: logical NCHW shape, dtype, block size and rate."""

    shape: tuple[int, int, int, int]
    dtype: str
    block: int
    rate: float

    @property
    def anchors(self) -> bool:
        """Whether the dense algorithm and the third-party implementations run at this setting."""
        return self.rate in ANCHOR_RATES and self.block in ANCHOR_BLOCKS

    @property
    def extras(self) -> bool:
        """Whether the slowest extra modes (TF under XLA) run: float32, block 7, p 0.1 only."""
        return self.anchors and self.dtype == "float32" and self.block == 7

    def key(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "block": self.block, "p": self.rate}


def grid(
    shapes: Sequence[tuple[int, int, int, int]] = SHAPES,
    dtypes: Sequence[str] = DTYPES,
    blocks: Sequence[int] = BLOCKS,
    rates: Sequence[float] = RATES,
) -> Iterator[Config]:
    for shape in shapes:
        for dtype in dtypes:
            for block in blocks:
                for rate in rates:
                    yield Config(tuple(shape), dtype, block, rate)  # type: ignore[arg-type]


def nhwc(shape: Sequence[int]) -> tuple[int, ...]:
    n, c, h, w = shape
    return (n, h, w, c)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in DISTRIBUTIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def git_revision(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def environment(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """CPU, core and thread counts, load, versions: printed with every result."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions(),
        "git": git_revision(Path.cwd()),
    }
    env.update(extra or {})
    return env


def print_environment(env: dict[str, Any]) -> None:
    print("environment:")
    for key, value in env.items():
        if key == "versions":
            print("  versions: " + ", ".join(f"{k} {v}" for k, v in value.items()))
        else:
            print(f"  {key}: {value}")
    sys.stdout.flush()


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux ``clear_refs`` 5); return the current RSS in bytes.

    Without the reset, ``ru_maxrss`` would still hold the peak of the imports, which can
    hide everything measured after them.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
            f.write("5")
    except OSError:
        pass
    rss = _status_kib("VmRSS")
    return rss * 1024 if rss is not None else max_rss_bytes()


def max_rss_bytes() -> int:
    """This process's peak resident set size since the last ``reset_peak_rss`` (``VmHWM``), else ``ru_maxrss``."""
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_arguments(framework: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m dropblock_bench.{framework}_bench")
    parser.add_argument("--out", type=Path, default=Path("build/bench") / f"{framework}.json")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per setting (>= 15 for the report)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds per setting")
    parser.add_argument("--quick", action="store_true", help="one shape, float32, block 7, p 0.1 (a smoke run)")
    parser.add_argument("--no-anchors", action="store_true", help="skip the third-party implementations")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    parser.add_argument("--device", default=None, help="torch/JAX device (default: cpu; 'cuda'/'gpu' on a GPU machine)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="pin the process to this many CPUs and use that many framework threads (default: all usable CPUs)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="reported clock: wall time (default) or this process's CPU time (robust on a shared machine; "
        "the other clock's median is kept too)",
    )
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)  # internal: one memory probe (JSON args)
    return parser


def pin_threads(threads: int | None) -> int:
    """Before the framework is imported: restrict this process to ``threads`` CPUs; return the CPU count used.

    On a machine that other processes share, two-thread kernels stall at every parallel
    barrier whenever one of their threads is descheduled, which inflates many-op
    implementations far more than single-kernel ones; one pinned thread avoids that.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    if threads is None or threads >= len(cpus):
        return len(cpus)
    os.sched_setaffinity(0, cpus[:threads])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()
    return threads


def add_note(notes: list[str], message: str) -> None:
    """Record ``message`` once in a run's notes (and print it when first seen)."""
    if message not in notes:
        notes.append(message)
        print("note:", message)


def contention_note(env: dict[str, Any]) -> str | None:
    load = env.get("loadavg_at_start")
    cpus = env.get("cpu_count") or 1
    if load and load[0] > 0.75 * cpus:
        return (
            f"the machine was busy when this run started (1-minute load average {load[0]:.1f} on {cpus} CPUs): "
            "absolute times are inflated and noisy; compare the ratios"
        )
    return None


def clocks(args: argparse.Namespace) -> tuple[Callable[[], float], Callable[[], float]]:
    """(reported clock, other clock) for ``--clock``."""
    from .timing import CLOCKS

    return (CLOCKS["cpu"], CLOCKS["wall"]) if args.clock == "cpu" else (CLOCKS["wall"], CLOCKS["cpu"])


def selected_grid(args: argparse.Namespace) -> list[Config]:
    if args.quick:
        return list(grid(shapes=SHAPES[:1], dtypes=("float32",), blocks=(7,), rates=(0.1,)))
    return list(grid())


def write_result(
    args: argparse.Namespace,
    framework: str,
    layout: str,
    env: dict[str, Any],
    rows: list[dict[str, Any]],
    memory: list[dict[str, Any]],
    notes: list[str],
) -> None:
    """Write one framework's run (its environment, settings, timing and memory rows) to ``args.out``."""
    settings = {
        "rounds": args.rounds,
        "warmup": args.warmup,
        "clock": args.clock,
        "threads": args.threads,
        "layout": layout,
        "quick": args.quick,
    }
    payload = {"framework": framework, "env": env, "settings": settings, "rows": rows, "memory": memory, "notes": notes}
    path: Path = args.out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def print_rows(config: Config, stats: dict[tuple[str, str], Any], errors: dict[tuple[str, str], str]) -> None:
    """One line per setting: each implementation's fwd and fwd+bwd medians."""
    impls: list[str] = []
    for impl, _ in [*stats, *errors]:
        if impl not in impls:
            impls.append(impl)
    parts = []
    for impl in impls:
        f = stats.get((impl, "fwd"))
        b = stats.get((impl, "fwdbwd"))
        fs = f"{f.median_ms:.2f}" if f else "-"
        bs = f"{b.median_ms:.2f}" if b else "-"
        parts.append(f"{impl} {fs}/{bs}")
    print(f"{config.shape} {config.dtype} k={config.block} p={config.rate}: " + "  ".join(parts) + "  (ms fwd/fwd+bwd)")
    for key, message in errors.items():
        print(f"  ! {key[0]} {key[1]}: {message}")
    sys.stdout.flush()


def rows_of(config: Config, stats: dict[tuple[str, str], Any], errors: dict[tuple[str, str], str]) -> list[dict]:
    rows = []
    for (impl, mode), s in stats.items():
        rows.append({**config.key(), "impl": impl, "mode": mode, **s.as_dict()})
    for (impl, mode), message in errors.items():
        rows.append({**config.key(), "impl": impl, "mode": mode, "error": message})
    return rows
