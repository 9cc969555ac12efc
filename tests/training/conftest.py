"""Small generated data for the training tests (never ../shared)."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data import ImageSet


def make_set(n: int, *, classes: int = 4, size: int = 32, channels: int = 1, seed: int = 0,
             split: str = "train") -> ImageSet:  # fmt: skip
    """Class k draws a bright horizontal bar in band k on a noisy background: learnable in a
    few steps, and every image differs."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    x = torch.randint(0, 60, (n, channels, size, size), generator=g, dtype=torch.uint8)
    band = size // classes
    for k in range(classes):
        rows = slice(k * band, k * band + max(1, band // 2))
        x[labels == k, :, rows, :] = 220
    return ImageSet(x, labels, [f"c{k}" for k in range(classes)], "bars", split)


@pytest.fixture
def bars():
    return make_set(192, seed=1), make_set(64, seed=2, split="test")


@pytest.fixture
def tiny_config():
    return _tiny_config


@pytest.fixture
def image_set():
    return make_set


def _tiny_config(tmp_path, **kw):
    from cnnlab.training.config import TrainConfig

    base = dict(model="lenet5", data="bars", epochs=2, batch_size=32, lr=0.05, optimizer="sgd",
                schedule="cosine", warmup=0.5, weight_decay=5e-4, runs_dir=str(tmp_path / "runs"),
                name="t", threads=1, quiet=True, deterministic=True, seed=3,
                plots=False)  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)
