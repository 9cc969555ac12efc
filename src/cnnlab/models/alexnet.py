"""AlexNet: the 2012 paper's two-GPU network, and the one-GPU form everyone uses.

Paper: A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NIPS 2012, section 3 (architecture, Fig. 2), 3.3 (local
response normalization), 3.4 (overlapping pooling), 4.2 (dropout), 5 (initialisation).

``alexnet2012`` (the paper; 60,965,224 parameters, the paper's "60 million")
    conv1 96@11x11/4 -> ReLU -> LRN -> max-pool 3x3/2 -> conv2 256@5x5 pad 2 (2 groups) -> ReLU
    -> LRN -> max-pool 3x3/2 -> conv3 384@3x3 (all maps) -> conv4 384@3x3 (2 groups) -> conv5
    256@3x3 (2 groups) -> max-pool 3x3/2 -> FC 4096 -> FC 4096 -> FC 1000, ReLU after every
    conv and hidden FC, dropout 0.5 on the outputs of the two hidden FC layers.

    - Input 3x227x227. The paper says 224x224, but with an 11x11 kernel, stride 4 and no
      padding only 227 gives its 55x55 conv1 maps ((227 - 11) / 4 + 1 = 55; 224 gives
      53.25); the widely noted erratum, and Caffe's reference model also crops 227.
    - The two GPUs are modelled by ``groups``: conv2, conv4 and conv5 only see the maps on
      their own GPU (``groups=2``), conv3 and the FC layers see all. LRN sums over adjacent
      maps *on the same GPU*, so it is applied to each half separately (``SplitLRN``).
      ``groups=1`` gives the single-tower network with the same widths.
    - LRN as section 3.3: b = a / (k + alpha * sum a^2)^beta, n = 5, k = 2, alpha = 1e-4,
      beta = 0.75. PyTorch's ``LocalResponseNorm`` divides alpha by n, so it is given
      alpha = 5e-4 to compute the paper's formula (Caffe's LRN has the same alpha/n
      convention, so the Caffe reference model's alpha = 1e-4 is 5x weaker than the paper).
    - ``init="paper"`` (default): weights N(0, 0.01), biases 1 in conv2, conv4, conv5 and the
      hidden FC layers, 0 elsewhere (section 5). ``init="torch"`` keeps PyTorch's defaults.

``alexnet`` (torchvision's one-GPU form, seed 001's table; 61,100,840 parameters)
    64-192-384-256-256 filters (the one-column layout torchvision ships; its docs point to
    Krizhevsky 2014, "One weird trick for parallelizing CNNs"), conv1 padding 2,
    no LRN, dropout *before* fc6 and fc7, an ``AdaptiveAvgPool2d(6x6)`` before the classifier
    (identity at 224 and 227 input). Module names match torchvision's (``features.N``,
    ``classifier.N``), so a torchvision state dict loads with no key mapping. Default input
    3x224x224 as torchvision; seed 001 tabulates it at 227 (conv1 -> 56x56), use
    ``--input 3x227x227`` for its rows.

There is no CIFAR form: AlexNet has no 32x32 variant in its paper or a common one (the
11x11/4 stem leaves 6x6 maps of a 32x32 image); use ``vgg*_cifar``, ``nin_cifar`` or the
CIFAR ResNets instead.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import ConfigError, ShapeError
from cnnlab.models.registry import register_model

__all__ = ["AlexNet", "SplitLRN", "paper_lrn", "check_flat_features", "run_features"]

PAPER = "Krizhevsky, Sutskever, Hinton, 2012"


def paper_lrn(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
    """``nn.LocalResponseNorm`` computing the paper's formula (its alpha is not divided by n)."""
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)


class SplitLRN(nn.Module):
    """Local response normalization within each of ``groups`` channel blocks (one per GPU)."""

    def __init__(self, groups: int = 2, **lrn):
        super().__init__()
        self.groups = groups
        self.lrn = paper_lrn(**lrn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups == 1:
            return self.lrn(x)
        return torch.cat([self.lrn(part) for part in x.chunk(self.groups, dim=1)], dim=1)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def check_flat_features(x: torch.Tensor, classifier: nn.Sequential, name: str, size: str):
    """Raise a ShapeError (not a matmul error) when the conv output does not fit the first FC."""
    first = next(m for m in classifier if isinstance(m, nn.Linear))
    if x[0].numel() != first.in_features:
        raise ShapeError(
            f"{name}: the conv part gives {tuple(x.shape[1:])} = {x[0].numel()} features, "
            f"but the first fully connected layer expects {first.in_features}",
            f"feed {size} images (or use cnnlab.models.convolutionalize for larger inputs)",
        )


def run_features(features: nn.Module, x: torch.Tensor, name: str, size: str) -> torch.Tensor:
    """``features(x)``, turning PyTorch's "output size is too small" into a ShapeError."""
    try:
        return features(x)
    except RuntimeError as e:
        text = str(e)
        if "too small" not in text and "greater than actual input size" not in text:
            raise
        raise ShapeError(
            f"{name}: a {x.shape[-2]}x{x.shape[-1]} input shrinks to nothing in the conv part "
            f"({text.strip().splitlines()[0]})",
            f"feed {size} images; for 32x32 data pick a CIFAR form (cnnlab models --variant cifar)",
        ) from None


class AlexNet(nn.Module):
    """``features`` -> [``avgpool``] -> flatten -> ``classifier``."""

    def __init__(
        self,
        features: nn.Sequential,
        classifier: nn.Sequential,
        avgpool: nn.Module | None = None,
        input_hint: str = "3x227x227",
    ):
        super().__init__()
        self.features = features
        if avgpool is not None:
            self.avgpool = avgpool
        self.classifier = classifier
        self._input_hint = input_hint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = run_features(self.features, x, type(self).__name__, self._input_hint)
        if hasattr(self, "avgpool"):
            x = self.avgpool(x)
        else:
            check_flat_features(x, self.classifier, type(self).__name__, self._input_hint)
        return self.classifier(torch.flatten(x, 1))


def _init_paper(model: AlexNet, one_biases: tuple[int, ...]) -> None:
    # Section 5: N(0, 0.01) weights; biases 1 where listed (conv2, conv4, conv5, fc6, fc7).
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for i, m in enumerate(layers):
        nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.constant_(m.bias, 1.0 if i in one_biases else 0.0)


@register_model(
    "alexnet2012",
    family="AlexNet",
    paper=PAPER,
    year=2012,
    input_size=(3, 227, 227),
    description="AlexNet as the 2012 paper: 96-256-384-384-256, two GPU groups, LRN",
)
def alexnet2012(
    num_classes: int = 1000,
    in_channels: int = 3,
    groups: int = 2,
    dropout: float = 0.5,
    init: str = "paper",
) -> AlexNet:
    """AlexNet exactly as Krizhevsky et al. 2012 (``groups=2``: the two-GPU split)."""
    if groups not in (1, 2):
        raise ConfigError(f"alexnet2012 groups must be 1 or 2, got {groups}")
    if init not in ("paper", "torch"):
        raise ConfigError(f"unknown init {init!r}", "use init='paper' or init='torch'")
    g = groups
    features = nn.Sequential(
        nn.Conv2d(in_channels, 96, 11, stride=4),  # conv1: 55x55
        nn.ReLU(inplace=True),
        SplitLRN(g),
        nn.MaxPool2d(3, 2),  # 27x27 (overlapping: z=3 > s=2)
        nn.Conv2d(96, 256, 5, padding=2, groups=g),  # conv2
        nn.ReLU(inplace=True),
        SplitLRN(g),
        nn.MaxPool2d(3, 2),  # 13x13
        nn.Conv2d(256, 384, 3, padding=1),  # conv3 reads both GPUs
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1, groups=g),  # conv4
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1, groups=g),  # conv5
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),  # 6x6
    )
    classifier = nn.Sequential(
        nn.Linear(256 * 6 * 6, 4096),  # fc6
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),  # fc7
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, num_classes),  # fc8
    )
    model = AlexNet(features, classifier, input_hint="3x227x227")
    if init == "paper":
        _init_paper(model, one_biases=(1, 3, 4, 5, 6))
    return model


@register_model(
    "alexnet",
    family="AlexNet",
    paper="Krizhevsky et al., 2012 (one-GPU form, torchvision)",
    year=2012,
    input_size=(3, 224, 224),
    description="AlexNet one-GPU form (64-192-384-256-256), torchvision's layout",
)
def alexnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> AlexNet:
    """The one-GPU AlexNet of seed 001 and torchvision (same module names and params)."""
    features = nn.Sequential(
        nn.Conv2d(in_channels, 64, 11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
    )
    classifier = nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(256 * 6 * 6, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )
    return AlexNet(features, classifier, nn.AdaptiveAvgPool2d((6, 6)), input_hint="3x224x224")
