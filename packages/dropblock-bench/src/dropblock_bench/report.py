"""Render ``docs/benchmarks.md`` and ``docs/benchmarks.png`` from the JSON results of the runs.

    python -m dropblock_bench.report --results build/bench --md docs/benchmarks.md --png docs/benchmarks.png

Reads ``torch.json``, ``tf.json``, ``jax.json`` (CPU) and, when present, ``torch-gpu.json``
and ``jax-gpu.json`` (a GPU machine's run, reported under its own heading). Every number
in the page comes from those files; the page says so and is never edited by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FRAMEWORK_TITLES = {"torch": "PyTorch", "tf": "TensorFlow", "jax": "JAX"}
DROPOUT_NAMES = {
    "torch": "`F.dropout`",
    "tf": "`tf.nn.dropout` under `tf.function`",
    "jax": "Flax-style `jax.random.bernoulli` dropout under `jax.jit`",
}
ANCHOR_ORDER = ["ours", "ours-fn", "ours-eager", "ours-xla", "dropout", "dropout-xla", "x*2", "dense"]
THIRD_PARTY = ["torchvision", "timm", "miguelvr", "keras-cv"]
DROPOUT_TARGET = 0.5
DENSE_TARGET = 0.1
SAVED_TARGET = 1.0
GPU_X2_TARGET = 3.0
MIB = 2**20
CLOCK_NAMES = {
    "wall": "wall time (`time.perf_counter`)",
    "cpu": "CPU time of the process (`time.process_time`; wall-time medians in the JSON)",
}

Key = tuple[str, tuple[int, ...], str, int, float, str, str]


class Results:
    """All rows of all runs, indexed by (framework, shape, dtype, block, p, impl, mode)."""

    def __init__(self, runs: dict[str, dict[str, Any]]):
        self.runs = runs
        self.rows: dict[Key, dict[str, Any]] = {}
        for name, run in runs.items():
            for row in run["rows"]:
                key = (name, tuple(row["shape"]), row["dtype"], row["block"], row["p"], row["impl"], row["mode"])
                self.rows[key] = row

    def median(self, fw: str, shape: tuple[int, ...], dtype: str, block: int, p: float, impl: str, mode: str) -> float:
        row = self.rows.get((fw, shape, dtype, block, p, impl, mode))
        return float(row["median_ms"]) if row and "median_ms" in row else math.nan

    def cell(self, fw: str, shape: tuple[int, ...], dtype: str, block: int, p: float, impl: str, mode: str) -> str:
        row = self.rows.get((fw, shape, dtype, block, p, impl, mode))
        if not row:
            return "-"
        if "error" in row:
            return "error"
        return f"{row['median_ms']:.2f} ({row['iqr_ms']:.2f})"

    def configs(self, fw: str) -> list[tuple[tuple[int, ...], str, int, float]]:
        seen: list[tuple[tuple[int, ...], str, int, float]] = []
        for f, shape, dtype, block, p, _, _ in self.rows:
            if f == fw and (shape, dtype, block, p) not in seen:
                seen.append((shape, dtype, block, p))
        return seen

    def impls(self, fw: str, shape: tuple[int, ...], dtype: str, block: int, p: float) -> list[str]:
        found = {k[5] for k in self.rows if k[:5] == (fw, shape, dtype, block, p)}
        order = ANCHOR_ORDER + THIRD_PARTY
        return [i for i in order if i in found] + sorted(found - set(order))


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def fmt_ratio(r: float, target: float | None = None) -> str:
    if math.isnan(r):
        return "-"
    text = f"{r:.3f}" if r < 0.1 else f"{r:.2f}"
    if target is None:
        return text
    return f"{text} {'met' if r <= target else '**missed**'}"


def shape_label(fw: str, shape: tuple[int, ...]) -> str:
    n, c, h, w = shape
    return f"({n},{c},{h},{w})" if fw.startswith("torch") else f"({n},{h},{w},{c})"


def md_table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def environment_lines(run: dict[str, Any]) -> list[str]:
    env = run["env"]
    skip = {"versions", "framework"}
    parts = [f"{k}: {v}" for k, v in env.items() if k not in skip]
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    s = run["settings"]
    return [
        f"- {'; '.join(parts)}",
        f"- versions: {versions}",
        f"- {s['rounds']} timed rounds after {s['warmup']} warm-up rounds per setting; layout {s['layout']}; "
        f"clock: {CLOCK_NAMES[s.get('clock', 'wall')]}; threads: {s.get('threads') or 'all usable CPUs'}",
    ]


class TargetCheck:
    """Collects every ratio compared with one target, for the summary table."""

    def __init__(self, name: str, framework: str, target: float, scope: str, unmeasured: str = "not measured"):
        self.name, self.framework, self.target, self.scope = name, framework, target, scope
        self.unmeasured = unmeasured  # what the table says when no value was measured
        self.values: list[tuple[float, str]] = []

    @property
    def met(self) -> bool:
        return bool(self.values) and all(v <= self.target for v, _ in self.values)

    def sentence(self) -> str:
        """The check in words, for the summary under the targets table."""
        if not self.values:
            return f"{self.name} <= {self.target:g}: {self.unmeasured}"
        worst, where = max(self.values)
        low = min(v for v, _ in self.values)
        if self.met:
            return f"{self.name} <= {self.target:g}: met everywhere ({low:.3f} to {worst:.3f})"
        missed = sum(v > self.target for v, _ in self.values)
        return (
            f"{self.name} <= {self.target:g}: **missed** at {missed} of {len(self.values)} settings "
            f"(range {low:.3f} to {worst:.3f}; worst {worst / self.target:.2f}x the goal at {where})"
        )

    def add(self, value: float, where: str) -> None:
        if not math.isnan(value):
            self.values.append((value, where))

    def row(self) -> list[str]:
        if not self.values:
            return [self.name, self.framework, self.scope, f"<= {self.target:g}", "-", "-", self.unmeasured]
        met = sum(v <= self.target for v, _ in self.values)
        worst, where = max(self.values)
        median = statistics.median(v for v, _ in self.values)
        status = "met" if met == len(self.values) else f"**missed** ({len(self.values) - met} of {len(self.values)})"
        return [
            self.name,
            self.framework,
            self.scope,
            f"<= {self.target:g}",
            f"{median:.3f}",
            f"{worst:.3f} ({where})",
            status,
        ]


def targets_block(checks: list[TargetCheck]) -> list[str]:
    """The targets table, then the same checks in words, one line per framework."""
    out = [
        *md_table(
            ["target", "framework", "scope", "goal", "median", "worst (where)", "status"], [c.row() for c in checks]
        ),
        "",
        "In words:",
        "",
    ]
    for framework in dict.fromkeys(c.framework for c in checks):
        own = [c for c in checks if c.framework == framework]
        out.append(f"- **{framework}**: " + "; ".join(c.sentence() for c in own) + ".")
    return [*out, ""]


def load_runs(results_dir: Path, label: str = "") -> dict[str, dict[str, Any]]:
    """``<framework>.json`` (or ``<framework>.<label>.json``) for every framework present."""
    runs: dict[str, dict[str, Any]] = {}
    suffix = f".{label}" if label else ""
    for name in ("torch", "tf", "jax", "torch-gpu", "jax-gpu"):
        f = results_dir / f"{name}{suffix}.json"
        if f.is_file():
            runs[name] = json.loads(f.read_text(encoding="utf-8"))
    return runs


def labels(results_dir: Path) -> list[str]:
    """Labels of the cross-check runs (``torch.<label>.json``, ...), sorted."""
    found = {f.name.split(".")[1] for f in results_dir.glob("*.*.json") if f.name.split(".")[0] in FRAMEWORK_TITLES}
    return sorted(found)


def cross_check_section(results_dir: Path, label: str) -> list[str]:
    """The targets of a labelled run (same harness, other options), for comparison with the main run."""
    runs = load_runs(results_dir, label)
    res = Results(runs)
    checks: list[TargetCheck] = []
    out = [
        f"### Cross-check run `{label}`",
        "",
        f"The same session run with `-- --label={label}` and other options (below); only its targets are "
        f"shown; its raw results are `build/bench/<framework>.{label}.json`.",
        "",
    ]
    for fw in [f for f in ("torch", "tf", "jax", "torch-gpu", "jax-gpu") if f in runs]:
        framework_section(res, fw, checks, gpu=fw.endswith("-gpu"))
        env, s = runs[fw]["env"], runs[fw]["settings"]
        load = env.get("loadavg_at_start") or [math.nan]
        out.append(
            f"- {FRAMEWORK_TITLES[fw.replace('-gpu', '')]}: {env.get('date_utc')}, {s['rounds']} rounds, "
            f"clock: {CLOCK_NAMES[s.get('clock', 'wall')]}, threads: {s.get('threads') or 'all usable CPUs'}, "
            f"1-minute load at start {load[0]:.1f}"
        )
    return [*out, "", *targets_block(checks)]


def framework_section(res: Results, fw: str, checks: list[TargetCheck], gpu: bool = False) -> list[str]:
    base = fw.replace("-gpu", "")
    title = FRAMEWORK_TITLES[base] + (" (GPU)" if gpu else "")
    run = res.runs[fw]
    out = [f"## {title}", "", *environment_lines(run), ""]
    dropout_scope = "both shapes, k 3/5/7, p 0.05-0.25"
    dropout_check = TargetCheck("fwd+bwd ours / dropout, float32", title, DROPOUT_TARGET, dropout_scope)
    dropout_bf16 = TargetCheck("fwd+bwd ours / dropout, bfloat16", title, DROPOUT_TARGET, dropout_scope)
    anchor_scope = "p 0.1, k 3/7, both shapes and dtypes"
    dense_check = TargetCheck("fwd+bwd ours / dense", title, DENSE_TARGET, anchor_scope)
    dense_fwd_check = TargetCheck("fwd ours / dense", title, DENSE_TARGET, anchor_scope)
    tv_check = TargetCheck("fwd+bwd ours / torchvision", title, DENSE_TARGET, anchor_scope)
    tv_fwd_check = TargetCheck("fwd ours / torchvision", title, DENSE_TARGET, anchor_scope)
    gpu_check = TargetCheck("fwd+bwd ours / x*2 fwd+bwd", title, GPU_X2_TARGET, "all settings")
    saved_check = TargetCheck("saved for backward, B/element", title, SAVED_TARGET, "k7 p0.1, both shapes and dtypes")

    out += [
        f"### Every setting: ours against {DROPOUT_NAMES[base]}, `x * 2` and the dense algorithm",
        "",
        "Median ms (IQR in parentheses); ratios are ratios of medians (ours / other), fwd+bwd unless marked fwd.",
        "",
    ]
    header = [
        "shape",
        "dtype",
        "k",
        "p",
        "ours fwd",
        "ours fwd+bwd",
        "dropout fwd+bwd",
        "x*2 fwd+bwd",
        "dense fwd+bwd",
        "ours/dropout",
        "ours/dropout fwd",
        "ours/x*2",
        "ours/dense",
        "ours/dense fwd",
    ]
    rows = []
    for shape, dtype, block, p in res.configs(fw):
        m = res.median
        ours_f, ours_b = m(fw, shape, dtype, block, p, "ours", "fwd"), m(fw, shape, dtype, block, p, "ours", "fwdbwd")
        drop_b = m(fw, shape, dtype, block, p, "dropout", "fwdbwd")
        drop_f = m(fw, shape, dtype, block, p, "dropout", "fwd")
        x2_b = m(fw, shape, dtype, block, p, "x*2", "fwdbwd")
        dense_b, dense_f = (
            m(fw, shape, dtype, block, p, "dense", "fwdbwd"),
            m(fw, shape, dtype, block, p, "dense", "fwd"),
        )
        where = f"{shape_label(fw, shape)} {dtype} k{block} p{p}"
        r_drop = ratio(ours_b, drop_b)
        (dropout_check if dtype == "float32" else dropout_bf16).add(r_drop, where)
        r_dense, r_dense_f = ratio(ours_b, dense_b), ratio(ours_f, dense_f)
        if base == "torch":
            dense_check.add(r_dense, where)
            dense_fwd_check.add(r_dense_f, where)
        r_x2 = ratio(ours_b, x2_b)
        if gpu:
            gpu_check.add(r_x2, where)
        dense_target = DENSE_TARGET if base == "torch" else None
        rows.append(
            [
                shape_label(fw, shape),
                dtype,
                str(block),
                f"{p:g}",
                res.cell(fw, shape, dtype, block, p, "ours", "fwd"),
                res.cell(fw, shape, dtype, block, p, "ours", "fwdbwd"),
                res.cell(fw, shape, dtype, block, p, "dropout", "fwdbwd"),
                res.cell(fw, shape, dtype, block, p, "x*2", "fwdbwd"),
                res.cell(fw, shape, dtype, block, p, "dense", "fwdbwd"),
                fmt_ratio(r_drop, DROPOUT_TARGET),
                fmt_ratio(ratio(ours_f, drop_f)),
                fmt_ratio(r_x2, GPU_X2_TARGET if gpu else None),
                fmt_ratio(r_dense, dense_target),
                fmt_ratio(r_dense_f, dense_target),
            ]
        )
    out += [*md_table(header, rows), ""]

    anchor_configs = [c for c in res.configs(fw) if len(res.impls(fw, *c)) > 3]
    if anchor_configs:
        out += [
            "### Every implementation at the anchor settings",
            "",
            "Median ms (IQR). `ours / impl` compares our layer with that implementation in the same mode.",
            "",
        ]
        rows = []
        for shape, dtype, block, p in anchor_configs:
            ours_f = res.median(fw, shape, dtype, block, p, "ours", "fwd")
            ours_b = res.median(fw, shape, dtype, block, p, "ours", "fwdbwd")
            where = f"{shape_label(fw, shape)} {dtype} k{block}"
            for impl in res.impls(fw, shape, dtype, block, p):
                f = res.median(fw, shape, dtype, block, p, impl, "fwd")
                b = res.median(fw, shape, dtype, block, p, impl, "fwdbwd")
                target = DENSE_TARGET if impl == "torchvision" else None
                if impl == "torchvision":
                    tv_check.add(ratio(ours_b, b), where)
                    tv_fwd_check.add(ratio(ours_f, f), where)
                rows.append(
                    [
                        shape_label(fw, shape),
                        dtype,
                        str(block),
                        f"{p:g}",
                        impl,
                        res.cell(fw, shape, dtype, block, p, impl, "fwd"),
                        res.cell(fw, shape, dtype, block, p, impl, "fwdbwd"),
                        fmt_ratio(ratio(ours_f, f), target),
                        fmt_ratio(ratio(ours_b, b), target),
                    ]
                )
        out += [
            *md_table(
                ["shape", "dtype", "k", "p", "impl", "fwd ms", "fwd+bwd ms", "ours/impl fwd", "ours/impl fwd+bwd"], rows
            ),
            "",
        ]

    memory = run.get("memory") or []
    if memory:
        out += ["### Memory", ""]
        methods = sorted({r.get("method", "") for r in memory if r.get("method")})
        out += [f"Peak: {m}." for m in methods]
        out += [
            "Saved for backward: "
            + (
                "distinct storages packed by `torch.autograd.graph.saved_tensors_hooks`, "
                "without those shared with the input or output."
                if base == "torch"
                else "the residual arrays of `jax.vjp` on the jitted forward, without the input and output."
                if base == "jax"
                else "n/a (a `tf.GradientTape` exposes no hook listing what its gradients keep)."
            ),
            "",
        ]
        rows = []
        for r in memory:
            saved = r.get("saved_bytes")
            where = f"{shape_label(fw, tuple(r['shape']))} {r['dtype']}"
            if r["impl"] == "ours" and saved is not None:
                # 3 decimals: a one-element spare slot in a mask is not a byte per element
                saved_check.add(round(r["saved_bytes_per_element"], 3), where)
            rows.append(
                [
                    shape_label(fw, tuple(r["shape"])),
                    r["dtype"],
                    f"k{r['block']} p{r['p']:g}",
                    r["impl"],
                    f"{r['fwd_peak_bytes'] / MIB:.1f}" if "fwd_peak_bytes" in r else r.get("memory_error", "-")[:60],
                    f"{r['fwdbwd_peak_bytes'] / MIB:.1f}" if "fwdbwd_peak_bytes" in r else "-",
                    f"{saved / MIB:.2f}" if saved is not None else "n/a",
                    fmt_ratio(round(r["saved_bytes_per_element"], 3), SAVED_TARGET if r["impl"] == "ours" else None)
                    if saved is not None
                    else "n/a",
                ]
            )
        out += [
            *md_table(
                [
                    "shape",
                    "dtype",
                    "setting",
                    "impl",
                    "fwd peak MiB",
                    "fwd+bwd peak MiB",
                    "saved MiB",
                    "saved B/element",
                ],
                rows,
            ),
            "",
        ]
    notes = run.get("notes") or []
    errors = [r for r in run["rows"] if "error" in r]
    if notes or errors:
        out += ["### Notes", ""]
        out += [f"- {n}" for n in notes]
        for r in errors:
            where = f"{shape_label(fw, tuple(r['shape']))} {r['dtype']} k{r['block']} p{r['p']:g}"
            out.append(f"- {r['impl']} {r['mode']} at {where}: {r['error']}")
        out.append("")
    if base == "tf":
        saved_check.unmeasured = "not measurable (no hook lists what a `GradientTape` keeps)"
    if saved_check.values or base == "tf":
        checks.append(saved_check)
    if gpu:
        checks.append(gpu_check)
    else:
        checks += [dropout_check, dropout_bf16]
        if base == "torch":
            checks += [dense_check, dense_fwd_check, tv_check, tv_fwd_check]
    return out


def chart(res: Results, path: Path, frameworks: list[str]) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(frameworks), figsize=(6.2 * len(frameworks), 5.2), squeeze=False)
    for ax, fw in zip(axes[0], frameworks, strict=True):
        configs = [c for c in res.configs(fw) if c[1] == "float32" and c[2] == 7 and c[3] == 0.1]
        if not configs:
            configs = res.configs(fw)[:2]
        impls: list[str] = []
        for c in configs:
            for i in res.impls(fw, *c):
                if i not in impls:
                    impls.append(i)
        width = 0.8 / max(1, len(configs))
        for j, (shape, dtype, block, p) in enumerate(configs):
            drop = res.median(fw, shape, dtype, block, p, "dropout", "fwdbwd")
            values = [ratio(res.median(fw, shape, dtype, block, p, i, "fwdbwd"), drop) for i in impls]
            xs = [i + (j - (len(configs) - 1) / 2) * width for i in range(len(impls))]
            bars = ax.bar(xs, [0 if math.isnan(v) else v for v in values], width, label=shape_label(fw, shape))
            for bar, v in zip(bars, values, strict=True):
                if not math.isnan(v):
                    ax.annotate(
                        f"{v:.2g}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=7
                    )
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.axhline(DROPOUT_TARGET, color="red", lw=0.8, ls=":", label="target: 0.5x dropout")
        ax.set_xticks(range(len(impls)), impls, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("fwd+bwd time / framework dropout fwd+bwd")
        dev = res.runs[fw]["env"].get("device", "cpu")
        ax.set_title(f"{FRAMEWORK_TITLES[fw.replace('-gpu', '')]} [{dev}] float32, k7, p0.1", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("DropBlock fwd+bwd time relative to the framework's dropout (lower is better; log scale)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(results_dir: Path, md_path: Path, png_path: Path) -> str:
    runs = load_runs(results_dir)
    if not runs:
        raise SystemExit(f"no results in {results_dir}: run the framework modules first")
    res = Results(runs)
    checks: list[TargetCheck] = []
    body: list[str] = []
    cpu: list[str] = [fw for fw in ("torch", "tf", "jax") if fw in runs]
    for fw in cpu:
        body += framework_section(res, fw, checks)
    gpu: list[str] = [fw for fw in ("torch-gpu", "jax-gpu") if fw in runs]
    if gpu:
        body += ["# GPU", ""]
        for fw in gpu:
            body += framework_section(res, fw, checks, gpu=True)
    missing = [FRAMEWORK_TITLES[fw] for fw in ("torch", "tf", "jax") if fw not in runs]
    head = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python -m nox -s bench` (dropblock_bench.report) from build/bench/*.json. "
        "Do not edit by hand: rerun the session. -->",
        "",
        "Generated by `python -m nox -s bench` from the raw results in `build/bench/*.json`; "
        "every number below comes from one run of that session (cross-check runs, if any, are "
        "labelled as such), never edited by hand.",
        "",
        "## Method",
        "",
        "- Each framework runs in its own virtualenv and process. Within a process, every implementation "
        "of one setting runs once per round, interleaved in a fresh random (seeded) order, for at least 15 "
        "timed rounds after warm-up rounds (tracing and compilation excluded); the tables give the median and the "
        "interquartile range (IQR) in ms. Ratios are ratios of medians measured side by side.",
        "- Settings: shapes (16, 64, 56, 56) and (8, 256, 28, 28) (NCHW for PyTorch, the same tensors NHWC "
        "for TensorFlow and JAX), blocks 3, 5, 7, p 0.05, 0.1, 0.25, float32 and bfloat16: ours, the "
        "framework's dropout and `x * 2` everywhere. To keep the session near 20 minutes on a 2-core "
        "machine, the dense algorithm, the third-party DropBlocks and TF eager run only at p = 0.1 with "
        "blocks 3 and 7 (both shapes and dtypes; their full-tensor work does not depend on p), and TF "
        "under XLA only at float32, block 7, p = 0.1.",
        "- fwd: training-mode forward (torch under `no_grad`); fwd+bwd: forward on an input that requires "
        "a gradient plus the input gradient for a fixed upstream gradient. Every timed call returns only "
        "once its result is computed.",
        "- `dense` is the spec's distribution computed the obvious way in the same framework: a Bernoulli "
        "per valid corner over the whole tensor, a k x k max-pool over the whole tensor, the rescale. "
        "`x*2` is the memory floor (one read and one write). `ours` is the package's layer "
        "(`dropblock_torch.DropBlock2d`, `dropblock_tf.DropBlock2D` under `tf.function`, "
        '`dropblock_jax.drop_block` under `jax.jit`), per-channel masks, `scale="batch"`.',
        "- Third-party semantics differ: torchvision, timm (`couple_channels=False`) and keras-cv draw "
        "per-channel masks like ours; miguelvr's `dropblock` shares one mask per sample (cheaper, not "
        "comparable) and uses gamma = p / k^2.",
        "- The CPU machines have 2 cores; other processes may share them. The load average at the start "
        "of each run is printed with its environment; the IQRs show the noise. Each framework's section "
        "says which clock and thread count produced it (by default all usable CPUs and wall time). A "
        "cross-check run (`-- --label=1cpu --threads 1 --clock cpu`) pins each framework to one CPU with "
        "one thread (two-thread kernels stall at every barrier when a thread is descheduled) and times "
        "process CPU time (what each call computes, without the waits for a CPU held by other processes): "
        "robust on a busy machine, but it leaves out what a second core gives each implementation; its "
        "targets are listed under the main ones.",
        "",
        "## Targets (issue 7)",
        "",
        *targets_block(checks),
    ]
    for label in labels(results_dir):
        head += cross_check_section(results_dir, label)
    if missing:
        head += [f"Not measured in this run: {', '.join(missing)} (its run failed or was skipped).", ""]
    if not gpu:
        head += [
            "GPU: no GPU machine was lent to the run that produced this page, so the GPU target "
            "(fwd+bwd within 3x of `x * 2` fwd+bwd) is not measured here.",
            "",
        ]
    head += ["![fwd+bwd time relative to dropout](benchmarks.png)", ""]
    text = "\n".join(head + body).rstrip() + "\n"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(text, encoding="utf-8")
    chart(res, png_path, cpu + gpu)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dropblock_bench.report")
    parser.add_argument("--results", type=Path, default=Path("build/bench"))
    parser.add_argument("--md", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--png", type=Path, default=Path("docs/benchmarks.png"))
    args = parser.parse_args(argv)
    text = render(args.results, args.md, args.png)
    start = text.index("## Targets")
    end = text.index("![", start)
    print(text[start:end])
    print(f"wrote {args.md} and {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
