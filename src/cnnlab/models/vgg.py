"""VGG: configurations A, A-LRN, B, C, D and E of the paper, with and without batch norm.

Paper: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", arXiv:1409.1556 (2014) / ICLR 2015; Table 1 (configurations, reproduced in
seed 002), Table 2 (parameters: 133, 133, 133, 134, 138, 144 million for A, A-LRN, B, C, D, E),
section 2.1 (3x3 convs stride 1 pad 1, 2x2 max-pool stride 2, 1x1 convs in C, LRN in A-LRN).

========  ============  ===============================================================
name      config        weight layers
========  ============  ===============================================================
vgg11     A             8 conv + 3 FC                                     132,863,336
vgg11_lrn A-LRN         A with LRN after the first conv (AlexNet's LRN)   132,863,336
vgg13     B             10 conv + 3 FC                                    133,047,848
vgg16_c   C             D with the third conv of blocks 3-5 a 1x1 conv    133,638,952
vgg16     D             13 conv + 3 FC                                    138,357,544
vgg19     E             16 conv + 3 FC                                    143,667,240
========  ============  ===============================================================

``*_bn`` adds ``BatchNorm2d`` after every convolution (Ioffe & Szegedy 2015; not in the VGG
paper, which predates it), as torchvision's ``vgg*_bn``.

Layout and names are torchvision's: ``features.N`` (conv, [bn], ReLU, ..., max-pool),
``avgpool`` (``AdaptiveAvgPool2d(7x7)``, identity at 224 input) and ``classifier.N`` (FC 4096,
ReLU, dropout, FC 4096, ReLU, dropout, FC 1000), so torchvision state dicts for the shared
names (vgg11/13/16/19 and their _bn) load directly. Deviations from the paper:

- the adaptive average pool is torchvision's addition (the paper's dense evaluation instead
  converts the FC layers to convolutions: :func:`cnnlab.models.convolutionalize`);
- dropout 0.5 follows the ReLU of each hidden FC layer, as the paper's "dropout regularisation
  for the first two fully-connected layers";
- A-LRN's LRN uses AlexNet's constants and formula (n=5, k=2, alpha=1e-4, beta=0.75), which
  the paper cites without restating;
- initialisation is He (Kaiming) normal for convs and N(0, 0.01) for FCs (as torchvision);
  the paper trained A from N(0, 0.01) and initialised deeper nets from A, then noted Glorot
  initialisation works without pre-training.

CIFAR forms (``vgg11_cifar`` ... ``vgg19_cifar`` and ``*_bn_cifar``): the same 3x3 conv stacks
on 3x32x32 input, five 2x2 pools leave 512x1x1, then a single ``Linear(512, num_classes)``
(``classifier.0``). This is the widespread CIFAR adaptation (no 4096-wide FC layers, which
would hold 95% of the parameters for 1x1 maps); it is not from the VGG paper. Use the ``_bn``
forms to train from scratch: plain VGG-16/19 rarely trains on CIFAR without batch norm.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.alexnet import paper_lrn
from cnnlab.models.registry import register_model

__all__ = ["VGG", "VGGCifar", "CONFIGS", "make_features"]

PAPER = "Simonyan & Zisserman, 2014"

M = "M"  # 2x2 max-pool, stride 2
LRN = "LRN"  # local response normalization (A-LRN only)

# Table 1. An int is a conv3-N; a (N, 1) tuple is a conv1-N (configuration C).
CONFIGS: dict[str, list] = {
    "A": [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "A-LRN": [64, LRN, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "B": [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "C": [64, 64, M, 128, 128, M, 256, 256, (256, 1), M, 512, 512, (512, 1), M,
          512, 512, (512, 1), M],
    "D": [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M],
    "E": [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M,
          512, 512, 512, 512, M],
}  # fmt: skip


def make_features(config: list, in_channels: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """The conv part of a configuration: conv (3x3 pad 1, or 1x1), [BN], ReLU; pools; LRN."""
    layers: list[nn.Module] = []
    c = in_channels
    for item in config:
        if item == M:
            layers.append(nn.MaxPool2d(2, 2))
        elif item == LRN:
            layers.append(paper_lrn())
        else:
            out, k = item if isinstance(item, tuple) else (item, 3)
            layers.append(nn.Conv2d(c, out, k, padding=k // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            c = out
    return nn.Sequential(*layers)


def _init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class VGG(nn.Module):
    """ImageNet VGG: ``features`` -> ``avgpool`` (7x7) -> flatten -> ``classifier``."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class VGGCifar(nn.Module):
    """CIFAR VGG: ``features`` (32x32 -> 512x1x1) -> flatten -> ``classifier`` (one FC)."""

    def __init__(self, features: nn.Sequential, num_classes: int = 10):
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(nn.Linear(512, num_classes))
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


_IMAGENET = [  # (name, configuration, batch norm, description)
    ("vgg11", "A", False, "VGG configuration A (11 weight layers)"),
    ("vgg11_lrn", "A-LRN", False, "VGG configuration A-LRN (A + LRN after conv1)"),
    ("vgg13", "B", False, "VGG configuration B (13 weight layers)"),
    ("vgg16_c", "C", False, "VGG configuration C (16 layers, three 1x1 convs)"),
    ("vgg16", "D", False, "VGG configuration D, VGG-16"),
    ("vgg19", "E", False, "VGG configuration E, VGG-19"),
    ("vgg11_bn", "A", True, "VGG-11 (A) with batch norm"),
    ("vgg13_bn", "B", True, "VGG-13 (B) with batch norm"),
    ("vgg16_c_bn", "C", True, "VGG configuration C with batch norm"),
    ("vgg16_bn", "D", True, "VGG-16 (D) with batch norm"),
    ("vgg19_bn", "E", True, "VGG-19 (E) with batch norm"),
]


def _register_imagenet(name: str, config: str, bn: bool, description: str) -> None:
    def build(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
        return VGG(make_features(CONFIGS[config], in_channels, bn), num_classes, dropout)

    build.__name__ = name
    build.__doc__ = f"{description}: Simonyan & Zisserman 2014, Table 1 column {config}."
    register_model(
        name,
        family="VGG",
        paper=PAPER,
        year=2014,
        input_size=(3, 224, 224),
        description=description,
    )(build)


def _register_cifar(name: str, config: str, bn: bool) -> None:
    def build(num_classes: int = 10, in_channels: int = 3) -> VGGCifar:
        return VGGCifar(make_features(CONFIGS[config], in_channels, bn), num_classes)

    bn_text = " with batch norm" if bn else ""
    build.__name__ = name
    build.__doc__ = f"CIFAR VGG (configuration {config}{bn_text}): 3x3 stacks, one 512->C FC."
    register_model(
        name,
        family="VGG",
        paper=PAPER,
        year=2014,
        input_size=(3, 32, 32),
        num_classes=10,
        variant="cifar",
        description=f"CIFAR form of VGG configuration {config}{bn_text}, 512->classes head",
    )(build)


for _name, _config, _bn, _desc in _IMAGENET:
    _register_imagenet(_name, _config, _bn, _desc)

for _depth, _config in (("11", "A"), ("13", "B"), ("16", "D"), ("19", "E")):
    _register_cifar(f"vgg{_depth}_cifar", _config, False)
    _register_cifar(f"vgg{_depth}_bn_cifar", _config, True)
