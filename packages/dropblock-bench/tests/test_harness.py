"""The framework-free parts: interleaved timing and the report (on synthetic results)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from dropblock_bench.common import Config, rows_of
from dropblock_bench.timing import Case, interleave, summarize


def test_summarize_median_and_iqr() -> None:
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.median_ms, s.q1_ms, s.q3_ms, s.iqr_ms, s.n) == (3.0, 2.0, 4.0, 2.0, 5)


def test_interleave_shuffles_skips_warmup_and_records_errors() -> None:
    calls: list[str] = []
    ticks = itertools.count()

    def boom() -> None:
        raise RuntimeError("not importable\nsecond line")

    cases = [
        Case("a", "fwd", lambda: calls.append("a")),
        Case("b", "fwd", lambda: calls.append("b")),
        Case("bad", "fwd", boom),
    ]
    stats, errors = interleave(cases, rounds=4, warmup=2, clock=lambda: float(next(ticks)))
    assert errors == {("bad", "fwd"): "RuntimeError: not importable"}
    assert stats[("a", "fwd")].n == 4
    assert stats[("b", "fwd")].n == 4
    assert calls[:2] == ["a", "b"]  # round 0 in the given order
    rounds = [calls[i : i + 2] for i in range(0, len(calls), 2)]
    assert all(sorted(r) == ["a", "b"] for r in rounds)  # each case once per round
    assert ["b", "a"] in rounds[1:]  # later rounds are shuffled, not always "a" first
    assert calls.count("a") == 6


def synthetic_run(framework: str) -> dict:
    rows = []
    for shape in ((16, 64, 56, 56), (8, 256, 28, 28)):
        for block in (3, 7):
            config = Config(shape, "float32", block, 0.1)
            times = {"ours": 4.0, "dropout": 20.0, "x*2": 1.0, "dense": 60.0}
            if framework == "torch":
                times |= {"torchvision": 80.0, "timm": 85.0, "miguelvr": 5.0}
            stats = {
                (impl, mode): summarize([t, t * 1.1, t * 0.9])
                for impl, t in times.items()
                for mode in ("fwd", "fwdbwd")
            }
            rows += rows_of(config, stats, {})
    return {
        "framework": framework,
        "env": {"cpu": "test", "versions": {"numpy": "0"}},
        "settings": {"rounds": 3, "warmup": 1, "layout": "NCHW"},
        "rows": rows,
        "memory": [
            {
                "shape": [8, 256, 28, 28],
                "dtype": "float32",
                "block": 7,
                "p": 0.1,
                "impl": "ours",
                "elements": 1605632,
                "fwd_peak_bytes": 2**21,
                "fwdbwd_peak_bytes": 2**22,
                "saved_bytes": 1605632,
                "saved_bytes_per_element": 1.0,
                "method": "test",
            },
        ],
        "notes": ["keras-cv: skipped"],
    }


def test_report_renders_tables_targets_and_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from dropblock_bench.report import render

    for fw in ("torch", "jax"):
        (tmp_path / f"{fw}.json").write_text(json.dumps(synthetic_run(fw)))
    md, png = tmp_path / "benchmarks.md", tmp_path / "benchmarks.png"
    text = render(tmp_path, md, png)
    assert png.stat().st_size > 1000
    assert "## Targets (issue 7)" in text
    assert "0.20 met" in text  # ours / dropout fwd+bwd = 4 / 20
    assert "Not measured in this run: TensorFlow" in text
    assert "| fwd+bwd ours / torchvision | PyTorch |" in text
    assert "- **PyTorch**: " in text  # the targets in words, per framework
    assert "fwd+bwd ours / dropout, float32 <= 0.5: met everywhere (0.200 to 0.200)" in text
    assert "fwd+bwd ours / dense <= 0.1: met everywhere (0.067 to 0.067)" in text


def test_report_summarises_a_labelled_cross_check_run(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from dropblock_bench.report import render

    (tmp_path / "torch.json").write_text(json.dumps(synthetic_run("torch")))
    other = synthetic_run("torch")
    other["env"] |= {"date_utc": "today", "loadavg_at_start": [0.5, 0.5, 0.5]}
    other["settings"] |= {"clock": "cpu", "threads": 1}
    (tmp_path / "torch.1cpu.json").write_text(json.dumps(other))
    text = render(tmp_path, tmp_path / "b.md", tmp_path / "b.png")
    cross = text[text.index("### Cross-check run `1cpu`") :]
    assert "threads: 1, 1-minute load at start 0.5" in cross
    assert "| fwd+bwd ours / dropout, float32 | PyTorch |" in cross
    assert text.index("## Targets") < text.index("### Cross-check run") < text.index("## PyTorch")


def test_target_check_says_where_and_by_how_much_a_target_is_missed() -> None:
    from dropblock_bench.report import TargetCheck

    check = TargetCheck("fwd+bwd ours / dropout", "PyTorch", 0.5, "all")
    check.add(0.25, "a")
    check.add(0.75, "b")
    assert not check.met
    assert check.sentence() == (
        "fwd+bwd ours / dropout <= 0.5: **missed** at 1 of 2 settings (range 0.250 to 0.750; worst 1.50x the goal at b)"
    )
    assert TargetCheck("saved", "TensorFlow", 1.0, "all", unmeasured="n/a").row()[-1] == "n/a"
