"""Shared fixtures for the zoo tests: cheap meta-device builds and a private cache dir."""

import pytest
import torch


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta_model(name, **options):
    from cnnlab.models import create

    with torch.device("meta"):
        return create(name, **options).eval()


def _meta_forward_shape(name, input_size, batch=2, **options):
    model = _meta_model(name, **options)
    with torch.device("meta"), torch.no_grad():
        return tuple(model(torch.zeros(batch, *input_size)).shape)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Zoo forwards are small: one intra-op thread beats two fighting over a busy 2-core box.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def n_params():
    """Number of parameters of a model."""
    return _n_params


@pytest.fixture
def meta_model():
    """Build zoo model ``name`` on the meta device: no memory, no initialisation cost."""
    return _meta_model


@pytest.fixture
def meta_shape():
    """Output shape of zoo model ``name`` on a meta input: every layer's shapes, for free."""
    return _meta_forward_shape


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # `cnnlab models` caches measurements; never touch the user's ~/.cache in tests.
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
