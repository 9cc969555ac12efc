"""Small models, images and one tiny run for the visualization tests (never ../shared)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn


class TinyNet(nn.Module):
    """conv(pad) -> ReLU -> max pool -> strided conv -> ReLU -> GAP -> fc: every ingredient
    the attribution methods and the receptive-field arithmetic meet, at 16x16."""

    def __init__(self, in_channels: int = 3, num_classes: int = 4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def tiny_net(in_channels: int = 3) -> TinyNet:
    torch.manual_seed(0)
    return TinyNet(in_channels).eval()


@pytest.fixture
def tiny():
    return tiny_net()


@pytest.fixture
def png(tmp_path):
    """Write an H x W (x C) uint8 array as a PNG and return its path."""

    def write(arr, name="img.png"):
        from torchvision.io import write_png

        a = np.asarray(arr, dtype=np.uint8)
        t = torch.from_numpy(a if a.ndim == 3 else a[:, :, None]).permute(2, 0, 1).contiguous()
        path = tmp_path / name
        write_png(t, str(path))
        return path

    return write


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished LeNet-5 run on the built-in digits (a fraction of an epoch: seconds)."""
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.trainer import train
    from cnnlab.viz.report import write_report

    runs = tmp_path_factory.mktemp("runs")
    torch.set_num_threads(1)
    cfg = TrainConfig(
        model="lenet5",
        data="digits",
        epochs=1,
        batch_size=64,
        lr=0.05,
        optimizer="sgd",
        runs_dir=str(runs),
        name="tiny",
        threads=1,
        quiet=True,
        seed=0,
    )
    result = train(cfg, on_finish=[write_report])  # the hook `cnnlab train` and `demo` use
    assert result.status == "completed"
    # keep what the hook wrote: tests rebuild report.html later
    (result.run_dir / "report.html").rename(result.run_dir / "report-from-hook.html")
    return result.run_dir
