"""ResNet: deep residual networks, and the plain nets they are compared with.

He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
(arXiv:1512.03385, 2015).

* ImageNet ResNets (paper Table 1): ``resnet18``/``resnet34`` (basic block: two 3x3 convs) and
  ``resnet50``/``resnet101``/``resnet152`` (bottleneck: 1x1 reduce, 3x3, 1x1 expand by 4). Module
  names and parameter counts equal torchvision's, so its state dicts load unchanged.
* Shortcuts (paper section 3.3 and Table 3), option ``shortcut=``:
  ``"A"`` zero-padding identity: subsample by the stride and append zero channels (no parameters);
  ``"B"`` projection (1x1 conv + BN) only where the shape changes, identity elsewhere (default,
  torchvision's); ``"C"`` a projection on every block.
* ``stride_in_1x1`` (bottleneck nets): the paper strides the first 1x1 conv; torchvision (and most
  code since, "ResNet v1.5") strides the 3x3 conv instead, which is more accurate. Same parameters.
* CIFAR ResNets (paper section 4.2): ``resnet20/32/44/56/110/1202``, 6n+2 layers: a 3x3 conv with
  16 filters, three stages of n basic blocks at 16, 32 and 64 filters on 32, 16 and 8 pixel maps,
  global average pooling and a 10-way fc, option A shortcuts.
* Plain nets: ``plain20/32/44/56/110`` (CIFAR, paper Figure 6) and ``plain18/34`` (ImageNet, paper
  Table 2) are the same stacks without any shortcut: the degradation experiment of seed 000.
* ``resnet18_cifar``: the widely used 32x32 form of ResNet-18 (3x3/1 stem, no max-pool), not from
  the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "PadShortcut", "PlainBlock", "ResNet"]

SHORTCUTS = ("A", "B", "C")


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride, padding=1, bias=False)  # BN follows: no bias


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)


class PadShortcut(nn.Module):
    """Option A: identity with stride-s subsampling and zero channels appended (no parameters)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.extra, self.stride = out_ch - in_ch, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # pads the channel dimension at the end


def make_shortcut(kind: str, in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    """The shortcut of one block (None = plain identity)."""
    same_shape = stride == 1 and in_ch == out_ch
    if kind == "C" or (kind == "B" and not same_shape):
        return nn.Sequential(conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))
    if kind == "A" and not same_shape:
        return PadShortcut(in_ch, out_ch, stride)
    return None


class BasicBlock(nn.Module):
    """Two 3x3 convs; output = ReLU(F(x) + shortcut(x)) (paper Figure 2 / Figure 5 left)."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1, downsample=None,
                 stride_in_1x1: bool = False):  # fmt: skip
        super().__init__()  # stride_in_1x1 is for the bottleneck; there is no 1x1 conv here
        self.conv1 = conv3x3(in_ch, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample  # torchvision's name for the shortcut module

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual function F(x)."""
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.branch(x) + identity)


class PlainBlock(BasicBlock):
    """The same two 3x3 convs without the shortcut: output = ReLU(F(x))."""

    def __init__(self, in_ch: int, width: int, stride: int = 1, downsample=None,
                 stride_in_1x1: bool = False):  # fmt: skip
        if downsample is not None:
            raise ValueError("a plain block has no shortcut")
        super().__init__(in_ch, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 -> 1x1 expand (x4), plus the shortcut (paper Figure 5 right)."""

    expansion = 4

    def __init__(
        self, in_ch: int, width: int, stride: int = 1, downsample=None, stride_in_1x1: bool = False
    ):
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_ch, width, s1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, s3)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, width * self.expansion)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.bn3(self.conv3(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.branch(x) + identity)


class ResNet(nn.Module):
    """Stem, stages of blocks (each stage after the first halves the size), GAP and one fc.

    Args:
        block: ``BasicBlock``, ``Bottleneck`` or ``PlainBlock``.
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18, ``(n, n, n)`` for CIFAR.
        widths: filters per stage (bottleneck outputs are 4x this).
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool: 224 -> 56) or ``"cifar"`` (3x3/1 conv).
        shortcut: ``"A"``, ``"B"`` or ``"C"`` (see the module docstring); ignored by plain nets.
        zero_init_residual: start every block's last BN at gamma=0, so each residual block begins
            as the identity (Goyal et al. 2017); not for plain nets, which would output zeros.
        stride_in_1x1: bottleneck only: stride the first 1x1 conv as the paper did.
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers,
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        widths=(64, 128, 256, 512),
        stem: str = "imagenet",
        shortcut: str = "B",
        zero_init_residual: bool = False,
        stride_in_1x1: bool = False,
    ):
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ConfigError(
                f"shortcut={shortcut!r} is not one of 'A', 'B', 'C'",
                "A: zero-pad identity, B: project where the shape changes, C: project everywhere",
            )
        if stem not in ("imagenet", "cifar"):
            raise ConfigError(f"stem={stem!r} is not 'imagenet' or 'cifar'", "pass stem='cifar'")
        if len(layers) != len(widths):
            raise ConfigError(
                f"{len(layers)} stages but {len(widths)} widths", "give one per stage"
            )
        self.in_ch = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, self.in_ch, 7, 2, padding=3, bias=False)
        else:
            self.conv1 = conv3x3(in_channels, self.in_ch)
        self.bn1 = nn.BatchNorm2d(self.in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1) if stem == "imagenet" else None
        for i, (n, width) in enumerate(zip(layers, widths, strict=True)):
            stage = self._make_stage(block, width, n, 1 if i == 0 else 2, shortcut, stride_in_1x1)
            setattr(self, f"layer{i + 1}", stage)
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.in_ch, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He et al. 2015 ("Delving deep") init, as the paper
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual and block is not PlainBlock:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.bn3.weight if isinstance(m, Bottleneck) else m.bn2.weight)

    def _make_stage(self, block, width, n, stride, shortcut, stride_in_1x1) -> nn.Sequential:
        blocks = []
        for i in range(n):
            s = stride if i == 0 else 1
            out_ch = width * block.expansion
            down = None if block is PlainBlock else make_shortcut(shortcut, self.in_ch, out_ch, s)
            blocks.append(block(self.in_ch, width, s, down, stride_in_1x1=stride_in_1x1))
            self.in_ch = out_ch
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(self.avgpool(x).flatten(1))


_PAPER = "He et al., 2015 (Deep Residual Learning)"


def _imagenet(name: str, description: str):
    return register_model(
        name,
        family="ResNet",
        paper=_PAPER,
        year=2015,
        input_size=(3, 224, 224),
        description=description,
    )


def _cifar(name: str, description: str):
    return register_model(
        name,
        family="ResNet",
        paper=_PAPER,
        year=2015,
        input_size=(3, 32, 32),
        num_classes=10,
        variant="cifar",
        description=description,
    )


# ImageNet ResNets, paper Table 1. Options: shortcut ("A" | "B" | "C"), zero_init_residual,
# and for the bottleneck nets stride_in_1x1.


@_imagenet("resnet18", "ResNet-18: basic blocks (2, 2, 2, 2)")
def resnet18(*, num_classes=1000, in_channels=3, shortcut="B", zero_init_residual=False):
    """ResNet-18 (basic blocks 2-2-2-2), 11,689,512 parameters as torchvision's."""
    return ResNet(
        BasicBlock,
        (2, 2, 2, 2),
        num_classes,
        in_channels,
        shortcut=shortcut,
        zero_init_residual=zero_init_residual,
    )


@_imagenet("resnet34", "ResNet-34: basic blocks (3, 4, 6, 3)")
def resnet34(*, num_classes=1000, in_channels=3, shortcut="B", zero_init_residual=False):
    """ResNet-34 (basic blocks 3-4-6-3), 21,797,672 parameters as torchvision's."""
    return ResNet(
        BasicBlock,
        (3, 4, 6, 3),
        num_classes,
        in_channels,
        shortcut=shortcut,
        zero_init_residual=zero_init_residual,
    )


@_imagenet("resnet50", "ResNet-50: bottleneck blocks (3, 4, 6, 3)")
def resnet50(
    *, num_classes=1000, in_channels=3, shortcut="B", zero_init_residual=False, stride_in_1x1=False
):
    """ResNet-50 (bottlenecks 3-4-6-3), 25,557,032 parameters as torchvision's."""
    return ResNet(
        Bottleneck,
        (3, 4, 6, 3),
        num_classes,
        in_channels,
        shortcut=shortcut,
        zero_init_residual=zero_init_residual,
        stride_in_1x1=stride_in_1x1,
    )


@_imagenet("resnet101", "ResNet-101: bottleneck blocks (3, 4, 23, 3)")
def resnet101(
    *, num_classes=1000, in_channels=3, shortcut="B", zero_init_residual=False, stride_in_1x1=False
):
    """ResNet-101 (bottlenecks 3-4-23-3), 44,549,160 parameters as torchvision's."""
    return ResNet(
        Bottleneck,
        (3, 4, 23, 3),
        num_classes,
        in_channels,
        shortcut=shortcut,
        zero_init_residual=zero_init_residual,
        stride_in_1x1=stride_in_1x1,
    )


@_imagenet("resnet152", "ResNet-152: bottleneck blocks (3, 8, 36, 3)")
def resnet152(
    *, num_classes=1000, in_channels=3, shortcut="B", zero_init_residual=False, stride_in_1x1=False
):
    """ResNet-152 (bottlenecks 3-8-36-3), 60,192,808 parameters as torchvision's."""
    return ResNet(
        Bottleneck,
        (3, 8, 36, 3),
        num_classes,
        in_channels,
        shortcut=shortcut,
        zero_init_residual=zero_init_residual,
        stride_in_1x1=stride_in_1x1,
    )


@_imagenet("plain18", "18-layer plain net (ResNet-18 without shortcuts)")
def plain18(*, num_classes=1000, in_channels=3):
    """The paper's 18-layer plain baseline (Table 2): ResNet-18 without shortcuts."""
    return ResNet(PlainBlock, (2, 2, 2, 2), num_classes, in_channels)


@_imagenet("plain34", "34-layer plain net (ResNet-34 without shortcuts)")
def plain34(*, num_classes=1000, in_channels=3):
    """The paper's 34-layer plain baseline (Figure 3 middle, Table 2)."""
    return ResNet(PlainBlock, (3, 4, 6, 3), num_classes, in_channels)


# CIFAR-10 nets, paper section 4.2: depth 6n+2, widths 16-32-64, option A shortcuts.


def _cifar_resnet(depth: int, num_classes: int, in_channels: int, block=BasicBlock, **options):
    n = (depth - 2) // 6
    return ResNet(
        block, (n, n, n), num_classes, in_channels, widths=(16, 32, 64), stem="cifar", **options
    )


@_cifar("resnet20", "CIFAR ResNet-20 (n=3), option A shortcuts")
def resnet20(*, num_classes=10, in_channels=3, shortcut="A", zero_init_residual=False):
    """CIFAR ResNet-20: 3 stages of 3 basic blocks; 0.27M parameters (paper Table 6)."""
    return _cifar_resnet(
        20, num_classes, in_channels, shortcut=shortcut, zero_init_residual=zero_init_residual
    )


@_cifar("resnet32", "CIFAR ResNet-32 (n=5), option A shortcuts")
def resnet32(*, num_classes=10, in_channels=3, shortcut="A", zero_init_residual=False):
    """CIFAR ResNet-32: 3 stages of 5 basic blocks; 0.46M parameters (paper Table 6)."""
    return _cifar_resnet(
        32, num_classes, in_channels, shortcut=shortcut, zero_init_residual=zero_init_residual
    )


@_cifar("resnet44", "CIFAR ResNet-44 (n=7), option A shortcuts")
def resnet44(*, num_classes=10, in_channels=3, shortcut="A", zero_init_residual=False):
    """CIFAR ResNet-44: 3 stages of 7 basic blocks; 0.66M parameters (paper Table 6)."""
    return _cifar_resnet(
        44, num_classes, in_channels, shortcut=shortcut, zero_init_residual=zero_init_residual
    )


@_cifar("resnet56", "CIFAR ResNet-56 (n=9), option A shortcuts")
def resnet56(*, num_classes=10, in_channels=3, shortcut="A", zero_init_residual=False):
    """CIFAR ResNet-56: 3 stages of 9 basic blocks; 0.85M parameters (paper Table 6)."""
    return _cifar_resnet(
        56, num_classes, in_channels, shortcut=shortcut, zero_init_residual=zero_init_residual
    )


@_cifar("resnet110", "CIFAR ResNet-110 (n=18), option A shortcuts")
def resnet110(*, num_classes=10, in_channels=3, shortcut="A", zero_init_residual=False):
    """CIFAR ResNet-110: 3 stages of 18 basic blocks; 1.7M parameters (paper Table 6)."""
    return _cifar_resnet(
        110, num_classes, in_channels, shortcut=shortcut, zero_init_residual=zero_init_residual
    )


@_cifar("resnet1202", "CIFAR ResNet-1202 (n=200), option A shortcuts")
def resnet1202(*, num_classes=10, in_channels=3, shortcut="A", zero_init_residual=False):
    """CIFAR ResNet-1202: 3 stages of 200 basic blocks; 19.4M parameters (paper Table 6)."""
    return _cifar_resnet(
        1202, num_classes, in_channels, shortcut=shortcut, zero_init_residual=zero_init_residual
    )


@_cifar("plain20", "CIFAR plain-20: resnet20 without shortcuts")
def plain20(*, num_classes=10, in_channels=3):
    """CIFAR plain-20 (paper Figure 6): resnet20's layers without shortcuts."""
    return _cifar_resnet(20, num_classes, in_channels, PlainBlock)


@_cifar("plain32", "CIFAR plain-32: resnet32 without shortcuts")
def plain32(*, num_classes=10, in_channels=3):
    """CIFAR plain-32 (paper Figure 6): resnet32's layers without shortcuts."""
    return _cifar_resnet(32, num_classes, in_channels, PlainBlock)


@_cifar("plain44", "CIFAR plain-44: resnet44 without shortcuts")
def plain44(*, num_classes=10, in_channels=3):
    """CIFAR plain-44 (paper Figure 6): resnet44's layers without shortcuts."""
    return _cifar_resnet(44, num_classes, in_channels, PlainBlock)


@_cifar("plain56", "CIFAR plain-56: resnet56 without shortcuts")
def plain56(*, num_classes=10, in_channels=3):
    """CIFAR plain-56 (paper Figure 6): resnet56's layers without shortcuts."""
    return _cifar_resnet(56, num_classes, in_channels, PlainBlock)


@_cifar("plain110", "CIFAR plain-110: resnet110 without shortcuts")
def plain110(*, num_classes=10, in_channels=3):
    """CIFAR plain-110 (paper section 4.2): resnet110's layers without shortcuts."""
    return _cifar_resnet(110, num_classes, in_channels, PlainBlock)


@_cifar("resnet18_cifar", "ResNet-18 with a 3x3/1 stem, no max-pool (common CIFAR form)")
def resnet18_cifar(*, num_classes=10, in_channels=3, shortcut="B", zero_init_residual=False):
    """ResNet-18 for 32x32 input: 3x3/1 first conv, no max-pool (stages at 32, 16, 8, 4 pixels).

    Not in the paper; the form most CIFAR repositories train (about 11.2M parameters).
    """
    return ResNet(
        BasicBlock,
        (2, 2, 2, 2),
        num_classes,
        in_channels,
        stem="cifar",
        shortcut=shortcut,
        zero_init_residual=zero_init_residual,
    )
