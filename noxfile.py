"""Sessions: lint, spec, torch, tf, jax, conformance, onnx (more arrive with their issues).

`python -m nox` runs the default list (what CI runs); `python -m nox -s conformance`
prints the behaviour x framework matrix. Every session installs into its own fresh
virtualenv with pip, under `constraints.txt` (torch==2.13.0, the CPU build on disk here).
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
REPORTS = ROOT / "build" / "conformance"
FRAMEWORKS = ("torch", "tf", "jax")
IMPLEMENTATIONS = ("oracle", *FRAMEWORKS)
SHARED = ("./packages/dropblock-core", "./conformance")
CHECKOUT_SPEC = {"DROPBLOCK_SPEC_DIR": str(ROOT / "shared_spec")}

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["lint", "spec", "torch", "tf", "jax", "conformance", "onnx"]
nox.options.error_on_missing_interpreters = True


def install(session: nox.Session, *requirements: str) -> None:
    session.install(*CONSTRAINTS, *requirements)


def package(framework: str) -> str:
    return f"./packages/dropblock-{framework}"


def run_suite(session: nox.Session, implementation: str, *pytest_args: str) -> None:
    report = REPORTS / f"{implementation}.json"
    session.run("python", "-m", "dropblock_conformance", implementation, "--report", str(report), "-q", *pytest_args)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and mypy on the framework-free code."""
    install(session, "ruff", "mypy", "types-PyYAML", "types-jsonschema", *SHARED)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "packages/dropblock-core/src", "conformance/src", "noxfile.py")


@nox.session
def spec(session: nox.Session) -> None:
    """Validate the YAML against its schema, self-test the oracle, run the suite on it."""
    install(session, *SHARED)
    session.run("python", "-m", "dropblock_conformance.validate", env=CHECKOUT_SPEC)
    session.run("python", "-m", "dropblock_conformance.golden", "--check", env=CHECKOUT_SPEC)
    session.run("pytest", "-q", "--doctest-modules", "packages/dropblock-core")
    session.run("pytest", "-q", "conformance/tests")
    run_suite(session, "oracle")


@nox.session
def golden(session: nox.Session) -> None:
    """Regenerate shared_spec/golden/ from the spec's golden cases with the oracle."""
    install(session, *SHARED)
    session.run("python", "-m", "dropblock_conformance.golden", "--write", env=CHECKOUT_SPEC)


def framework_session(session: nox.Session, framework: str) -> None:
    """The package's own tests, its type check, then the whole conformance suite."""
    install(session, *SHARED, f"{package(framework)}[test]", "mypy")
    src = f"{package(framework)}/src/dropblock_{framework}"
    session.run("mypy", src)
    # The ONNX export tests run once, in `nox -s onnx`; the suite's onnx-inference cases run here too.
    session.run("pytest", "-q", f"{package(framework)}/tests", "-k", "not onnx", *session.posargs)
    # Doctests run against the installed wheel, the code users get (not the src checkout).
    session.run("pytest", "-q", "--doctest-modules", "--pyargs", f"dropblock_{framework}")
    run_suite(session, framework)


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


@nox.session
def conformance(session: nox.Session) -> None:
    """Every implementation against the spec; prints the matrix, writes report.json."""
    install(session, *SHARED, *(f"{package(f)}[test]" for f in FRAMEWORKS if (ROOT / package(f)).is_dir()))
    for implementation in IMPLEMENTATIONS:
        if implementation == "oracle" or (ROOT / package(implementation)).is_dir():
            session.run(
                "python",
                "-m",
                "dropblock_conformance",
                implementation,
                "--report",
                str(REPORTS / f"{implementation}.json"),
                "-q",
                success_codes=[0, 1],
            )
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
    """Inference-mode ONNX export of a small CNN holding the layer, checked in onnxruntime."""
    install(session, *SHARED, f"{package(framework)}[test]")
    session.run("pytest", "-q", f"{package(framework)}/tests", "-k", "onnx")
    run_suite(session, framework, "-k", "onnx-inference")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs.yml) into site/, strict: no framework needs installing."""
    install(session, "-r", "docs/requirements.txt", *SHARED)
    site = str(ROOT / "site")
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})
