"""Shared test settings: small, deterministic, and never dependent on ../shared."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")  # plots render to files, no display needed
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two xdist workers on a 2-core machine: one intra-op thread each avoids oversubscription.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def _fresh_python(code: str) -> None:
    """Run ``code`` in a new interpreter (a clean ``sys.modules``); fail with its stderr."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.fixture
def fresh_python():
    """``fresh_python(code)``: what a command imports is only visible in a new process."""
    return _fresh_python


def _digits_lenet5(runs_dir, name: str):
    """Train LeNet-5 one epoch on the built-in digits through the real CLI (a few seconds);
    returns the run folder."""
    from cnnlab.cli import main

    assert main(["train", "lenet5", "--data", "digits", "--epochs", "1", "--batch-size", "256",
                 "--runs-dir", str(runs_dir), "--name", name, "--threads", "1", "--quiet",
                 "--no-plots"]) == 0  # fmt: skip
    return runs_dir / name


@pytest.fixture(scope="session")
def digits_lenet5():
    """``digits_lenet5(runs_dir, name)``: a small trained classifier run for CLI tests."""
    return _digits_lenet5
