"""Network in Network: mlpconv blocks and a global-average-pooling head.

Paper: M. Lin, Q. Chen, S. Yan, "Network In Network", arXiv:1312.4400 (2013) / ICLR 2014;
section 3.1 (mlpconv = a conv followed by a small MLP shared over positions, i.e. 1x1
convolutions, each with ReLU), 3.2 (global average pooling: the last mlpconv gives one map per
class, averaged into the logits, no FC layer), 4.1-4.2 (three mlpconv layers with dropout between
them on CIFAR-10).

The paper gives the structure but not the widths; those come from the authors' released models,
which these follow layer for layer:

``nin_cifar`` (CIFAR-10 model of the authors' cuda-convnet/Caffe release; 966,986 parameters)
    mlpconv(5x5, 192-160-96) -> max-pool 3x3/2 -> dropout 0.5 ->
    mlpconv(5x5, 192-192-192) -> avg-pool 3x3/2 -> dropout 0.5 ->
    mlpconv(3x3, 192-192-classes) -> global average pool. 32 -> 16 -> 8 -> 1.

``nin`` (ImageNet model of the Caffe Model Zoo, "NIN-Imagenet" by the authors; 7,595,176
parameters at 1000 classes)
    mlpconv(11x11/4, 96-96-96) -> max-pool 3x3/2 -> mlpconv(5x5 pad 2, 256-256-256) -> max-pool ->
    mlpconv(3x3 pad 1, 384-384-384) -> max-pool -> dropout 0.5 ->
    mlpconv(3x3 pad 1, 1024-1024-classes) -> global average pool. 224 -> 54 -> 27 -> 13 -> 6 -> 1.

Both released models pool with Caffe's ceil rounding (``ceil_mode=True``: 32 -> 16, 54 -> 27) and
apply ReLU to the class maps too, before the global average (``final_relu=True``; set it False
for signed logits, the reading of the paper's text). Initialisation: PyTorch defaults (the
releases use small Gaussians, a training detail).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.alexnet import run_features
from cnnlab.models.registry import register_model

__all__ = ["MLPConv", "NIN"]

PAPER = "Lin, Chen, Yan, 2013"


class MLPConv(nn.Sequential):
    """A spatial conv followed by two 1x1 convs (the shared MLP), each followed by ReLU."""

    def __init__(
        self,
        in_channels: int,
        widths: tuple[int, int, int],
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        last_relu: bool = True,
    ):
        c1, c2, c3 = widths
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, c1, kernel_size, stride, padding),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c2, c3, 1),
        ]
        if last_relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class NIN(nn.Module):
    """``features`` (mlpconv blocks, pools, dropout) -> global average pool -> logits."""

    def __init__(self, features: nn.Sequential, input_hint: str = "3x224x224"):
        super().__init__()
        self.features = features
        self.gap = nn.AdaptiveAvgPool2d(1)
        self._input_hint = input_hint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = run_features(self.features, x, type(self).__name__, self._input_hint)
        return torch.flatten(self.gap(x), 1)


@register_model(
    "nin_cifar",
    family="NIN",
    paper=PAPER,
    year=2013,
    input_size=(3, 32, 32),
    num_classes=10,
    variant="cifar",
    description="Network in Network, CIFAR-10 model (192-160-96 mlpconv, GAP head)",
)
def nin_cifar(
    num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5, final_relu: bool = True
) -> NIN:
    """NIN for CIFAR-10 as the authors' released model (three mlpconv layers, GAP)."""
    return NIN(
        nn.Sequential(
            MLPConv(in_channels, (192, 160, 96), 5, padding=2),
            nn.MaxPool2d(3, 2, ceil_mode=True),  # 16x16
            nn.Dropout(dropout),
            MLPConv(96, (192, 192, 192), 5, padding=2),
            nn.AvgPool2d(3, 2, ceil_mode=True),  # 8x8
            nn.Dropout(dropout),
            MLPConv(192, (192, 192, num_classes), 3, padding=1, last_relu=final_relu),
        ),
        input_hint="3x32x32",
    )


@register_model(
    "nin",
    family="NIN",
    paper=PAPER,
    year=2013,
    input_size=(3, 224, 224),
    description="Network in Network, ImageNet model (96-256-384-1024 mlpconv, GAP head)",
)
def nin(
    num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5, final_relu: bool = True
) -> NIN:
    """NIN for ImageNet as the authors' Caffe Model Zoo release (four mlpconv layers, GAP)."""
    return NIN(
        nn.Sequential(
            MLPConv(in_channels, (96, 96, 96), 11, stride=4),  # 54x54
            nn.MaxPool2d(3, 2, ceil_mode=True),  # 27x27
            MLPConv(96, (256, 256, 256), 5, padding=2),
            nn.MaxPool2d(3, 2, ceil_mode=True),  # 13x13
            MLPConv(256, (384, 384, 384), 3, padding=1),
            nn.MaxPool2d(3, 2, ceil_mode=True),  # 6x6
            nn.Dropout(dropout),
            MLPConv(384, (1024, 1024, num_classes), 3, padding=1, last_relu=final_relu),
        )
    )
