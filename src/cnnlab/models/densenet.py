"""DenseNet: densely connected convolutional networks.

Huang, Liu, van der Maaten and Weinberger, "Densely Connected Convolutional Networks", CVPR 2017
(arXiv:1608.06993, 2016).

Inside a dense block every layer receives the concatenation of all earlier feature maps of the
block and adds ``growth_rate`` (k) new ones. The "BC" form used everywhere here has a 1x1
bottleneck (BN-ReLU-conv1x1 to 4k maps, then BN-ReLU-conv3x3 to k maps) and transitions that
compress the width by 0.5 (BN-ReLU-conv1x1, 2x2 average pool).

* ImageNet (paper Table 1): ``densenet121/169/201`` (k=32, 64 stem filters) and ``densenet161``
  (k=48, 96 stem filters). Module names and parameter counts equal torchvision's; old torchvision
  checkpoints that spell ``norm.1`` for ``norm1`` are mapped by ``DenseNet.torchvision_key_map``.
* CIFAR (paper section 3, Table 2): ``densenet_bc100`` (k=12, 0.8M), ``densenet_bc250`` (k=24,
  15.3M), ``densenet_bc190`` (k=40, 25.6M): a 3x3 conv with 2k filters, three dense blocks of
  (L-4)/6 layers on 32, 16 and 8 pixel maps, global average pooling and a linear layer.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.registry import register_model

__all__ = ["DenseBlock", "DenseLayer", "DenseNet", "Transition"]


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (bn_size*k maps) -> BN-ReLU-conv3x3 (k maps), on all earlier maps."""

    def __init__(self, in_ch: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0):
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = drop_rate  # the paper: 0.2 on CIFAR without data augmentation

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        x = self.conv2(self.relu2(self.norm2(x)))
        return F.dropout(x, self.drop_rate, self.training) if self.drop_rate > 0 else x


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; the output concatenates the input and every layer's k maps."""

    def __init__(self, num_layers: int, in_ch: int, growth_rate: int, bn_size: int = 4,
                 drop_rate: float = 0.0):  # fmt: skip
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(in_ch + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)
        self.out_channels = in_ch + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """Between dense blocks: BN-ReLU-conv1x1 (compressing the width) and 2x2 average pooling."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


# Old torchvision checkpoints name dense-layer modules "norm.1", "conv.2", ...
_OLD_KEY = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")


class DenseNet(nn.Module):
    """Stem, dense blocks joined by compressing transitions, BN-ReLU, GAP and a linear layer.

    Args:
        growth_rate: k, the maps each dense layer adds.
        block_config: layers per dense block, e.g. ``(6, 12, 24, 16)`` for DenseNet-121.
        num_init_features: stem filters (2k for DenseNet-BC).
        stem: ``"imagenet"`` (7x7/2 conv, BN-ReLU, 3x3/2 max-pool: 224 -> 56) or ``"cifar"``
            (one 3x3 conv: 32 -> 32).
        compression: theta, the width kept by each transition (0.5 for "C").
        bn_size: bottleneck width as a multiple of k (4 for "B").
        drop_rate: dropout after each dense layer's 3x3 conv.
    """

    def __init__(self, growth_rate: int = 32, block_config=(6, 12, 24, 16),
                 num_init_features: int = 64, num_classes: int = 1000, in_channels: int = 3, *,
                 stem: str = "imagenet", compression: float = 0.5, bn_size: int = 4,
                 drop_rate: float = 0.0):  # fmt: skip
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ConfigError(f"stem={stem!r} is not 'imagenet' or 'cifar'", "pass stem='cifar'")
        if not 0 < compression <= 1:
            raise ConfigError(f"compression={compression} is not in (0, 1]", "the paper uses 0.5")
        width = num_init_features
        if stem == "imagenet":
            self.features = nn.Sequential()
            self.features.add_module("conv0", nn.Conv2d(in_channels, width, 7, 2, 3, bias=False))
            self.features.add_module("norm0", nn.BatchNorm2d(width))
            self.features.add_module("relu0", nn.ReLU(inplace=True))
            self.features.add_module("pool0", nn.MaxPool2d(3, 2, padding=1))
        else:  # the first dense layer starts with BN-ReLU, so the stem is a bare conv
            self.features = nn.Sequential()
            self.features.add_module("conv0", nn.Conv2d(in_channels, width, 3, 1, 1, bias=False))
        for i, n in enumerate(block_config):
            block = DenseBlock(n, width, growth_rate, bn_size, drop_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            width = block.out_channels
            if i < len(block_config) - 1:
                out = int(width * compression)  # floor, as torchvision's integer division
                self.features.add_module(f"transition{i + 1}", Transition(width, out))
                width = out
        self.features.add_module(f"norm{len(block_config) + 1}", nn.BatchNorm2d(width))
        self.classifier = nn.Linear(width, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    @staticmethod
    def torchvision_key_map(key: str) -> str:
        """Rename an old torchvision key (``...denselayer1.norm.1.weight``) to ``norm1``."""
        return _OLD_KEY.sub(r"\1\2.", key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x))  # the last BN's ReLU
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


_PAPER = "Huang et al., 2017 (Densely Connected Convolutional Networks)"


def _imagenet(name: str, description: str):
    return register_model(name, family="DenseNet", paper=_PAPER, year=2017,
                          input_size=(3, 224, 224), description=description)  # fmt: skip


def _cifar(name: str, description: str):
    return register_model(name, family="DenseNet", paper=_PAPER, year=2017, input_size=(3, 32, 32),
                          num_classes=10, variant="cifar", description=description)  # fmt: skip


@_imagenet("densenet121", "DenseNet-121 (k=32, blocks 6-12-24-16)")
def densenet121(*, num_classes=1000, in_channels=3, drop_rate=0.0):
    """DenseNet-121: k=32, blocks (6, 12, 24, 16); 7,978,856 parameters as torchvision's."""
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes, in_channels, drop_rate=drop_rate)


@_imagenet("densenet169", "DenseNet-169 (k=32, blocks 6-12-32-32)")
def densenet169(*, num_classes=1000, in_channels=3, drop_rate=0.0):
    """DenseNet-169: k=32, blocks (6, 12, 32, 32); 14,149,480 parameters as torchvision's."""
    return DenseNet(32, (6, 12, 32, 32), 64, num_classes, in_channels, drop_rate=drop_rate)


@_imagenet("densenet201", "DenseNet-201 (k=32, blocks 6-12-48-32)")
def densenet201(*, num_classes=1000, in_channels=3, drop_rate=0.0):
    """DenseNet-201: k=32, blocks (6, 12, 48, 32); 20,013,928 parameters as torchvision's."""
    return DenseNet(32, (6, 12, 48, 32), 64, num_classes, in_channels, drop_rate=drop_rate)


@_imagenet("densenet161", "DenseNet-161 (k=48, blocks 6-12-36-24)")
def densenet161(*, num_classes=1000, in_channels=3, drop_rate=0.0):
    """DenseNet-161: k=48, 96 stem filters, blocks (6, 12, 36, 24); 28,681,000 parameters."""
    return DenseNet(48, (6, 12, 36, 24), 96, num_classes, in_channels, drop_rate=drop_rate)


def _densenet_bc(depth: int, growth_rate: int, num_classes: int, in_channels: int,
                 drop_rate: float) -> DenseNet:  # fmt: skip
    n = (depth - 4) // 6  # 3 blocks of n (1x1 + 3x3) layers, the stem, 2 transitions, the fc
    return DenseNet(growth_rate, (n, n, n), 2 * growth_rate, num_classes, in_channels,
                    stem="cifar", drop_rate=drop_rate)  # fmt: skip


@_cifar("densenet_bc100", "DenseNet-BC L=100, k=12 (0.8M)")
def densenet_bc100(*, num_classes=10, in_channels=3, growth_rate=12, drop_rate=0.0):
    """DenseNet-BC (L=100, k=12) for CIFAR: 3 blocks of 16 layers; 0.8M params (Table 2)."""
    return _densenet_bc(100, growth_rate, num_classes, in_channels, drop_rate)


@_cifar("densenet_bc250", "DenseNet-BC L=250, k=24 (15.3M)")
def densenet_bc250(*, num_classes=10, in_channels=3, growth_rate=24, drop_rate=0.0):
    """DenseNet-BC (L=250, k=24) for CIFAR: 3 blocks of 41 layers; 15.3M params (Table 2)."""
    return _densenet_bc(250, growth_rate, num_classes, in_channels, drop_rate)


@_cifar("densenet_bc190", "DenseNet-BC L=190, k=40 (25.6M)")
def densenet_bc190(*, num_classes=10, in_channels=3, growth_rate=40, drop_rate=0.0):
    """DenseNet-BC (L=190, k=40) for CIFAR: 3 blocks of 31 layers; 25.6M params (Table 2)."""
    return _densenet_bc(190, growth_rate, num_classes, in_channels, drop_rate)
