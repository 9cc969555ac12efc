"""tests/data: one intra-op thread while these run (restored afterwards).

Our tests push many small batches through many small ops; on the shared 2-core machine thread
hand-offs cost more than the work. Scoped to this folder so nobody else's tests change."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
