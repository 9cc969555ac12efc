"""Helpers for the analysis tests: torchvision models built on the meta device (instant)."""

import pytest
import torch
import torchvision


def tv_meta(name: str, **kw):
    """A torchvision model built on meta tensors: no memory, no init cost."""
    if name in ("googlenet", "inception_v3"):
        kw.setdefault("aux_logits", False)
        kw.setdefault("init_weights", False)
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None, **kw)


@pytest.fixture(scope="session", name="tv_meta")
def tv_meta_fixture():
    return tv_meta


@pytest.fixture(scope="session")
def alexnet_summary():
    from cnnlab.analysis import summary

    return summary(tv_meta("alexnet"), (3, 227, 227), model_name="alexnet")
