"""Sessions: lint, spec, dist, torch, tf, jax, lowest, conformance, docs (the default list), onnx, golden, bench.

`python -m nox` runs the default list (what CI runs); `python -m nox -s conformance`
prints the behaviour x framework matrix. Every session installs into its own fresh
virtualenv with pip, under `constraints.txt` (torch==2.13.0, the CPU build on disk here).
Each suite runs once per invocation: the matrix reuses the reports of the spec and
framework sessions when they passed earlier in the same run. The framework and lowest
sessions run a package's tests and its suite side by side, one per core.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nox
import nox.command

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
REPORTS = ROOT / "build" / "conformance"
FRAMEWORKS = ("torch", "tf", "jax")
IMPLEMENTATIONS = ("oracle", *FRAMEWORKS)
SHARED = ("./packages/dropblock-core", "./conformance")
#: What goes to PyPI: each distribution's directory and a file its wheel must hold (what the checkout links).
DISTRIBUTIONS = {
    "dropblock_core": ("packages/dropblock-core", "dropblock_core/geometry.py"),
    "dropblock_conformance": ("conformance", "dropblock_conformance/spec_data/dropblock.yaml"),
    **{f"dropblock_{f}": (f"packages/dropblock-{f}", f"dropblock_{f}/_core/geometry.py") for f in FRAMEWORKS},
}
CHECKOUT_SPEC = {"DROPBLOCK_SPEC_DIR": str(ROOT / "shared_spec")}

nox.options.default_venv_backend = "virtualenv"
# The framework sessions run everything `onnx` does (the suite's exports and the docs' recipes).
nox.options.sessions = ["lint", "spec", "dist", "torch", "tf", "jax", "lowest", "conformance", "docs"]
nox.options.error_on_missing_interpreters = True


def install(session: nox.Session, *requirements: str) -> None:
    session.install(*CONSTRAINTS, *requirements)


def compile_fast(session: nox.Session, framework: str) -> None:
    """JAX: XLA compiles with LLVM at -O0, about five times faster; compiling is most of a JAX session's time.

    The HLO is the same; packages/dropblock-jax/tests/test_codegen.py checks that the level
    changes no output or gradient. The bench session keeps XLA's default.
    """
    if framework == "jax":
        session.env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()


def package(framework: str) -> str:
    return f"./packages/dropblock-{framework}"


#: Implementations whose whole suite passed earlier in this nox invocation (same checkout, same spec).
PASSED_SUITES: set[str] = set()

Command = Sequence[str]


def suite_command(implementation: str, *pytest_args: str, report_name: str | None = None) -> Command:
    """The suite on one implementation, its report under build/conformance/ (named after it unless ``report_name``)."""
    report = REPORTS / f"{report_name or implementation}.json"
    return ("python", "-m", "dropblock_conformance", implementation, "--report", str(report), "-q", *pytest_args)


def recipes_command(framework: str) -> Command:
    """The docs' code recipes for ``framework``: docs/onnx.md's export and the home page's examples."""
    return ("pytest", "-q", "docs/test_recipes.py", "-k", framework)


def side_by_side(session: nox.Session, *streams: Sequence[Command]) -> None:
    """Run each stream's commands in order, the streams at the same time, with ``session.run``.

    CI has two cores, and a test run keeps about one of them busy (TF traces and XLA
    compiles one function at a time), so two independent runs take little more than the
    longer one. Each stream's output is printed when it ends; the session fails, after
    every stream has ended, if any command failed (its stream stops there).
    """

    def run(commands: Sequence[Command]) -> tuple[str, str | None]:
        with tempfile.TemporaryFile("w+") as output:
            failure = None
            for command in commands:
                output.write(f"nox > {shlex.join(command)}\n")
                output.flush()
                try:
                    session.run(*command, stdout=output)
                except nox.command.CommandFailed as error:
                    failure = f"{shlex.join(command)}: {error.reason}"
                    break
            output.seek(0)
            return output.read(), failure

    session.log(f"side by side: {' | '.join(' && '.join(shlex.join(c) for c in stream) for stream in streams)}")
    with ThreadPoolExecutor(len(streams)) as pool:
        results = list(pool.map(run, streams))
    for output, _ in results:
        sys.stdout.write(output)
    sys.stdout.flush()
    failures = [failure for _, failure in results if failure]
    if failures:
        session.error("; ".join(failures))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and mypy on the framework-free code."""
    install(session, "ruff", "mypy", "types-PyYAML", "types-jsonschema", *SHARED)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "packages/dropblock-core/src", "conformance/src", "noxfile.py")


@nox.session
def spec(session: nox.Session) -> None:
    """Validate the YAML against its schema, self-test the oracle and the ONNX judge, run the suite on the oracle."""
    install(session, "./packages/dropblock-core", "./conformance[onnx]")
    session.run("python", "-m", "dropblock_conformance.validate", env=CHECKOUT_SPEC)
    session.run("python", "-m", "dropblock_conformance.golden", "--check", env=CHECKOUT_SPEC)
    session.run("pytest", "-q", "--doctest-modules", "packages/dropblock-core")
    session.run("pytest", "-q", "conformance/tests")
    session.run(*suite_command("oracle"))
    PASSED_SUITES.add("oracle")


@nox.session
def dist(session: nox.Session) -> None:
    """Build each distribution as pip builds it from PyPI (the sdist, then the wheel from it), check, run the suite.

    The checkout links what the distributions share (``_core``, ``spec_data``); the sdists
    and wheels must hold real files, with the license and ``py.typed``.
    """
    install(session, "build", "twine")
    out = ROOT / "build" / "dist"
    shutil.rmtree(out, ignore_errors=True)
    for directory, _ in DISTRIBUTIONS.values():
        session.run("python", "-m", "build", "--quiet", "--outdir", str(out), directory)
    session.run("twine", "check", "--strict", *map(str, sorted(out.iterdir())))
    for name, (_, linked) in DISTRIBUTIONS.items():
        (sdist,) = out.glob(f"{name}-*.tar.gz")
        with tarfile.open(sdist) as archive:
            links = [m.name for m in archive.getmembers() if m.issym() or m.islnk()]
        assert not links, f"{sdist.name} holds links: {links}"
        (wheel,) = out.glob(f"{name}-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            files = archive.namelist()
        expected = [linked, f"{name}/py.typed", ".dist-info/licenses/LICENSE"]
        missing = [path for path in expected if not any(f.endswith(path) for f in files)]
        assert not missing, f"{wheel.name} lacks {missing}"
    # The oracle's column from the wheels alone: the spec comes from the wheel's own copy.
    install(session, *map(str, out.glob("dropblock_co*.whl")))
    session.chdir(session.create_tmp())
    session.run("python", "-m", "dropblock_conformance", "oracle", "-q")


@nox.session
def golden(session: nox.Session) -> None:
    """Regenerate shared_spec/golden/ from the spec's golden cases with the oracle."""
    install(session, *SHARED)
    session.run("python", "-m", "dropblock_conformance.golden", "--write", env=CHECKOUT_SPEC)


def framework_session(session: nox.Session, framework: str) -> None:
    """The package's tests and doctests, beside its type check, the whole suite and the docs' recipes."""
    install(session, *SHARED, f"{package(framework)}[test]", "mypy")
    compile_fast(session, framework)
    tests = [
        ("pytest", "-q", f"{package(framework)}/tests", *session.posargs),
        # Doctests run against the installed wheel, the code users get (not the src checkout).
        ("pytest", "-q", "--doctest-modules", "--pyargs", f"dropblock_{framework}"),
    ]
    checks = [
        ("mypy", f"{package(framework)}/src/dropblock_{framework}"),
        suite_command(framework),
        recipes_command(framework),
    ]
    side_by_side(session, tests, checks)
    PASSED_SUITES.add(framework)


@nox.session
def torch(session: nox.Session) -> None:
    """dropblock-torch: its tests and the conformance suite (torch==2.13.0, CPU)."""
    framework_session(session, "torch")


@nox.session
def tf(session: nox.Session) -> None:
    """dropblock-tf: its tests and the conformance suite (Keras 3 on TensorFlow)."""
    framework_session(session, "tf")


@nox.session
def jax(session: nox.Session) -> None:
    """dropblock-jax: its tests and the conformance suite (JAX, Flax NNX and Linen)."""
    framework_session(session, "jax")


def lowest_versions(framework: str) -> list[str]:
    """The package's dependencies pinned at the lower bounds its metadata declares (``name>=v`` -> ``name==v``)."""
    # The one-line list in [project]; tomllib would need Python 3.11.
    found = re.search(r"^dependencies = (\[.*\])$", (ROOT / package(framework) / "pyproject.toml").read_text(), re.M)
    assert found, f"no one-line dependencies list in {package(framework)}/pyproject.toml"
    pins = []
    for requirement in ast.literal_eval(found.group(1)):
        name, bound, version = requirement.partition(">=")
        if bound:
            pins.append(f"{name}=={version}")
    return pins


@nox.session
@nox.parametrize(("python", "framework"), [("3.10", "tf"), ("3.11", "jax")])
def lowest(session: nox.Session, framework: str) -> None:
    """The package at the lowest versions its metadata allows: its tests and the suite, but not the ONNX exports.

    Keeps the declared ranges honest, Python's included: TF runs on 3.10 (``requires-python``'s
    floor), JAX on 3.11 (its own). The ONNX exporters are unpinned extras, tested at their
    current releases by the onnx sessions. Not torch: any torch but the CPU build pinned in
    constraints.txt (for Python 3.11) is a multi-GB CUDA download here; its floor
    (torch>=2.5.1) was tested by hand.
    """
    pins = lowest_versions(framework)
    session.install(*pins, *SHARED, package(framework), "pytest")
    session.log(f"lowest versions: {' '.join(pins)}")
    compile_fast(session, framework)
    suite = suite_command(framework, "-k", "not onnx", report_name=f"{framework}-lowest")
    side_by_side(session, [("pytest", "-q", f"{package(framework)}/tests")], [suite])


@nox.session
def conformance(session: nox.Session) -> None:
    """Every implementation against the spec; prints the matrix, writes report.json.

    A suite that passed earlier in this invocation (the spec and framework sessions of
    ``python -m nox``) is not run again: its report stands. The others run here, failures
    included, so the matrix shows them.
    """
    present = [i for i in IMPLEMENTATIONS if i == "oracle" or (ROOT / package(i)).is_dir()]
    to_run = [i for i in present if i not in PASSED_SUITES]
    install(session, *SHARED, *(f"{package(f)}[test]" for f in to_run if f != "oracle"))
    if "jax" in to_run:
        compile_fast(session, "jax")
    for implementation in present:
        if implementation in PASSED_SUITES:
            session.log(f"{implementation}: its suite passed earlier in this run; its report stands")
            continue
        session.run(*suite_command(implementation), success_codes=[0, 1])
    session.run(
        "python",
        "-m",
        "dropblock_conformance.matrix",
        "--reports",
        str(REPORTS),
        "--out",
        str(REPORTS / "report.json"),
        *IMPLEMENTATIONS,
    )


@nox.session
@nox.parametrize("framework", FRAMEWORKS)
def onnx(session: nox.Session, framework: str) -> None:
    """Only the ONNX checks: the suite's inference-mode exports (onnxruntime) and the docs' recipes.

    Not in the default list: the framework sessions run both.
    """
    install(session, *SHARED, f"{package(framework)}[test]")
    compile_fast(session, framework)
    session.run(*recipes_command(framework))
    # Its own report: build/conformance/<framework>.json holds the full run the docs page counts.
    session.run(*suite_command(framework, "-k", "onnx-inference", report_name=f"{framework}-onnx"))


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs.yml) into site/, strict: no framework needs installing."""
    install(session, "-r", "docs/requirements.txt", *SHARED)
    site = str(ROOT / "site")
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(name="bench", venv_backend="virtualenv")
def bench(session: nox.Session) -> None:
    """Issue 7's benchmark (not part of CI): writes docs/benchmarks.md and docs/benchmarks.png.

    Each framework runs in its own virtualenv, made with `python -m venv` under
    .nox/bench-<framework> and kept between runs: torch 2.14.1 with torchvision 0.29.1, timm
    and miguelvr's dropblock (the anchors); TensorFlow with keras-cv 0.9.0; JAX. Each run writes
    build/bench/<framework>.json; this session's own virtualenv then renders the page and chart.
    Arguments after `--` go to every framework run (`--quick`, `--rounds 21`, `--no-anchors`),
    except `--frameworks=torch,jax`, which picks the frameworks, and `--label=NAME`, which writes
    build/bench/<framework>.NAME.json instead: a cross-check run (say `-- --label=1cpu --threads 1
    --clock cpu`, one pinned CPU and process CPU time, for a machine shared with other work) whose
    targets the page lists next to the main run's.
    """
    bench_pkg = str(ROOT / "packages" / "dropblock-bench")
    anchors = {"torch": ["torch==2.14.1", "torchvision==0.29.1", "timm", "dropblock"], "tf": ["keras-cv==0.9.0"]}
    chosen = [a.split("=", 1)[1].split(",") for a in session.posargs if a.startswith("--frameworks=")]
    frameworks = chosen[0] if chosen else list(FRAMEWORKS)
    label = "".join(f".{a.split('=', 1)[1]}" for a in session.posargs if a.startswith("--label="))
    forwarded = [a for a in session.posargs if not a.startswith(("--frameworks=", "--label="))]
    results = ROOT / "build" / "bench"
    results.mkdir(parents=True, exist_ok=True)
    session.install("matplotlib")
    # Like the framework venvs, always refresh the harness (`-R` skips session.install).
    session.run("python", "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", bench_pkg)
    for framework in frameworks:
        venv = ROOT / ".nox" / f"bench-{framework}"
        python = str(venv / "bin" / "python")
        ours = [str(ROOT / "packages" / "dropblock-core"), str(ROOT / package(framework)), bench_pkg]
        out = results / f"{framework}{label}.json"
        out.unlink(missing_ok=True)  # never render a stale result
        if not (venv / "bin" / "python").exists():
            session.run("python", "-m", "venv", str(venv))
        pip = (python, "-m", "pip", "install", "-q")
        session.run(*pip, *anchors.get(framework, []), *ours, external=True, success_codes=[0, 1])
        session.run(*pip, "--no-deps", "--force-reinstall", *ours, external=True, success_codes=[0, 1])
        session.run(
            python,
            "-m",
            "dropblock_bench",
            "run",
            framework,
            "--out",
            str(out),
            *forwarded,
            external=True,
            success_codes=[0, 1],  # a failed framework is reported as not measured; the others still render
        )
    docs = ROOT / "docs"
    session.run(
        "python",
        "-m",
        "dropblock_bench",
        "report",
        "--results",
        str(results),
        "--md",
        str(docs / "benchmarks.md"),
        "--png",
        str(docs / "benchmarks.png"),
    )
