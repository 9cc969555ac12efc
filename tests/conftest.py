"""Shared test settings: small, deterministic, and never dependent on ../shared."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # plots render to files, no display needed
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two xdist workers on a 2-core machine: one intra-op thread each avoids oversubscription.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
