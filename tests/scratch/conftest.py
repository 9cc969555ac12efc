"""Fixtures for the scratch-engine tests."""

import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS (and torch) thread: these tests use tiny matrices, where a second thread only
    adds hand-off latency, 10x more on a busy machine."""
    torch = sys.modules.get("torch")
    n = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    with threadpool_limits(1, user_api="blas"):
        yield
    if torch:
        torch.set_num_threads(n)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
