"""Shared test settings: small, deterministic, and never dependent on ../shared."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # plots render to files, no display needed
