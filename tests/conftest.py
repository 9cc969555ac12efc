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
