"""GoogLeNet / Inception v1.

Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842, 2014).
The network of the paper's Table 1: a 3-conv stem, nine Inception modules (3a-5b) with four
max-pool downsamplings, global average pooling, dropout 0.4 and one linear layer; two auxiliary
classifiers on 4a and 4d whose losses are added with weight 0.3 during training only.

Three forms, one class:

* ``googlenet`` (torchvision-compatible, the default): same module names and parameter count as
  ``torchvision.models.googlenet`` (6,624,904 without the auxiliary heads), so its state dicts
  load unchanged. It keeps torchvision's deviations from the paper: batch norm after every conv
  (so convs have no bias), a 3x3 conv in the "5x5" branch, a 2x2 last max-pool, and the auxiliary
  heads pool adaptively to 4x4 instead of 5x5/3 average pooling.
* ``googlenet_paper``: the paper's layers: real 5x5 convs with biases, no batch norm, local
  response normalization after the first pool and the third conv, 3x3/2 max-pools throughout,
  5x5/3 average pooling in the auxiliary heads.
* ``googlenet_cifar``: the torchvision form with a 32x32 stem: the 7x7/2 conv becomes 3x3/1 and
  the two stem max-pools are dropped, so the Inception modules see 32, 16 and 8 pixel maps.

``naive=True`` swaps every module for the paper's Figure 2(a) "naive" module (1x1, 3x3, 5x5 convs
and a 3x3 max-pool on the full input, concatenated, with no 1x1 reductions); its output width
grows by the input width at every module, which is the cost seed 000 tabulates.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.registry import register_model

__all__ = [
    "AUX_LOSS_WEIGHT",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "Inception",
    "InceptionAux",
    "NaiveInception",
    "googlenet_loss",
]

AUX_LOSS_WEIGHT = 0.3  # paper section 5: auxiliary losses are added with weight 0.3

# Table 1 of the paper: name -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
INCEPTION_CFG: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNetOutputs(NamedTuple):
    """What a GoogLeNet with auxiliary heads returns in training mode."""

    logits: torch.Tensor
    aux1: torch.Tensor  # head on inception 4a
    aux2: torch.Tensor  # head on inception 4d


def googlenet_loss(outputs, target: torch.Tensor, loss_fn=F.cross_entropy) -> torch.Tensor:
    """The paper's training loss: main loss + 0.3 x each auxiliary loss (plain loss for logits)."""
    if isinstance(outputs, GoogLeNetOutputs):
        aux = loss_fn(outputs.aux1, target) + loss_fn(outputs.aux2, target)
        return loss_fn(outputs.logits, target) + AUX_LOSS_WEIGHT * aux
    return loss_fn(outputs, target)


class BasicConv2d(nn.Module):
    """conv -> (batch norm) -> ReLU; with batch norm the conv has no bias (BN shifts instead)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        batch_norm: bool = True,
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=not batch_norm)
        # eps=1e-3 as torchvision (ported from TensorFlow's Inception), so its weights reproduce.
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True)


class Inception(nn.Module):
    """Figure 2(b): four parallel branches concatenated along channels.

    1x1 | 1x1 reduce -> 3x3 | 1x1 reduce -> kxk (k=5 in the paper) | 3x3 max-pool -> 1x1 proj.
    """

    def __init__(
        self,
        in_ch: int,
        ch1: int,
        ch3red: int,
        ch3: int,
        ch5red: int,
        ch5: int,
        pool_proj: int,
        *,
        k5: int = 5,
        batch_norm: bool = True,
    ):
        super().__init__()
        bn = batch_norm
        self.branch1 = BasicConv2d(in_ch, ch1, 1, batch_norm=bn)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_ch, ch3red, 1, batch_norm=bn),
            BasicConv2d(ch3red, ch3, 3, padding=1, batch_norm=bn),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_ch, ch5red, 1, batch_norm=bn),
            BasicConv2d(ch5red, ch5, k5, padding=k5 // 2, batch_norm=bn),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_ch, pool_proj, 1, batch_norm=bn),
        )
        self.out_channels = ch1 + ch3 + ch5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([b(x) for b in branches], 1)


class NaiveInception(nn.Module):
    """Figure 2(a): 1x1, 3x3 and kxk convs and a 3x3 max-pool all on the full input.

    The pool branch passes every input channel through, so the output has
    ``ch1 + ch3 + ch5 + in_ch`` channels (seed 000: 256 -> 128 + 192 + 96 + 256 = 672).
    """

    def __init__(
        self, in_ch: int, ch1: int, ch3: int, ch5: int, *, k5: int = 5, batch_norm: bool = True
    ):
        super().__init__()
        self.branch1 = BasicConv2d(in_ch, ch1, 1, batch_norm=batch_norm)
        self.branch2 = BasicConv2d(in_ch, ch3, 3, padding=1, batch_norm=batch_norm)
        self.branch3 = BasicConv2d(in_ch, ch5, k5, padding=k5 // 2, batch_norm=batch_norm)
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True)
        self.out_channels = ch1 + ch3 + ch5 + in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([b(x) for b in branches], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: avg-pool to 4x4, 1x1 conv 128, FC 1024, dropout 0.7, linear.

    The paper pools 5x5 with stride 3 (14x14 -> 4x4); torchvision pools adaptively to 4x4, which
    averages slightly different windows at 14x14 but accepts any input size.
    """

    def __init__(
        self,
        in_ch: int,
        num_classes: int,
        *,
        paper_pool: bool = False,
        batch_norm: bool = True,
        dropout: float = 0.7,
    ):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3) if paper_pool else nn.AdaptiveAvgPool2d(4)
        self.conv = BasicConv2d(in_ch, 128, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pool(x)).flatten(1)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1); see the module docstring for the three forms.

    Args:
        form: ``"torchvision"`` (BN, 3x3 in the "5x5" branch) or ``"paper"`` (Table 1 exactly).
        stem: ``"imagenet"`` (7x7/2 conv and two max-pools: 224 -> 28) or ``"cifar"``
            (3x3/1 conv, no pools: 32 -> 32).
        aux_logits: build the two auxiliary heads; in training mode ``forward`` then returns
            ``GoogLeNetOutputs(logits, aux1, aux2)``, in eval mode only the logits.
        naive: use the naive Inception module (Figure 2(a)) everywhere.
        lrn: local response normalization after the first pool and after conv3 (paper: on).
        dropout: before the classifier (paper: 0.4; torchvision's default is 0.2).
        transform_input: re-normalize ImageNet-standardized input to [-1, 1] as torchvision does
            for its ported pretrained weights (only needed to reproduce those weights).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        form: str = "torchvision",
        stem: str = "imagenet",
        aux_logits: bool = True,
        naive: bool = False,
        lrn: bool = False,
        dropout: float = 0.4,
        transform_input: bool = False,
    ):
        super().__init__()
        _check_choice("form", form, ("torchvision", "paper"))
        _check_choice("stem", stem, ("imagenet", "cifar"))
        if transform_input and in_channels != 3:
            raise ConfigError(
                "transform_input needs 3 input channels (it re-normalizes RGB)",
                "drop transform_input=True or use in_channels=3",
            )
        paper = form == "paper"
        bn = not paper
        k5 = 5 if paper else 3  # torchvision's "5x5" branch is a 3x3 conv
        self.aux_logits = aux_logits
        self.transform_input = transform_input

        def pool(k: int = 3) -> nn.Module:
            return nn.MaxPool2d(k, stride=2, ceil_mode=True)  # Caffe rounds pool sizes up

        def lrn_layer() -> nn.Module | None:
            # Caffe's BVLC GoogLeNet: size 5, alpha 1e-4, beta 0.75 (same convention as PyTorch).
            return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75) if lrn else None

        if stem == "imagenet":
            self.conv1 = BasicConv2d(in_channels, 64, 7, stride=2, padding=3, batch_norm=bn)
            self.maxpool1 = pool()
        else:
            self.conv1 = BasicConv2d(in_channels, 64, 3, padding=1, batch_norm=bn)
            self.maxpool1 = None
        self.lrn1 = lrn_layer()
        self.conv2 = BasicConv2d(64, 64, 1, batch_norm=bn)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1, batch_norm=bn)
        self.lrn2 = lrn_layer()
        self.maxpool2 = pool() if stem == "imagenet" else None

        width = 192

        def module(name: str) -> nn.Module:
            nonlocal width
            c1, c3r, c3, c5r, c5, pp = INCEPTION_CFG[name]
            if naive:
                m = NaiveInception(width, c1, c3, c5, k5=k5, batch_norm=bn)
            else:
                m = Inception(width, c1, c3r, c3, c5r, c5, pp, k5=k5, batch_norm=bn)
            width = m.out_channels
            return m

        self.inception3a = module("3a")
        self.inception3b = module("3b")
        self.maxpool3 = pool()
        self.inception4a = module("4a")
        aux1_in = width
        self.inception4b = module("4b")
        self.inception4c = module("4c")
        self.inception4d = module("4d")
        aux2_in = width
        self.inception4e = module("4e")
        self.maxpool4 = pool(3 if paper else 2)  # torchvision: 2x2/2 (same 14 -> 7 size)
        self.inception5a = module("5a")
        self.inception5b = module("5b")

        if aux_logits:
            aux = {"paper_pool": paper, "batch_norm": bn}
            self.aux1 = InceptionAux(aux1_in, num_classes, **aux)
            self.aux2 = InceptionAux(aux2_in, num_classes, **aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # = the paper's 7x7/1 average pool at 224
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                # Glorot/Xavier init as in the BVLC Caffe GoogLeNet; fine with or without BN.
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def torchvision_key_map(self, key: str) -> str | None:
        """For ``load_weights``: drop a file's auxiliary-head weights when this model has none
        (torchvision's pretrained GoogLeNet file carries them)."""
        return None if self.aux1 is None and key.startswith(("aux1.", "aux2.")) else key

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        # x was standardized with ImageNet mean/std; rewrite it as (pixel - 0.5) / 0.5.
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        return x * (std / 0.5) + (mean - 0.5) / 0.5

    def forward(self, x: torch.Tensor):
        if self.transform_input:
            x = self._transform(x)
        for name in ("conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2"):
            layer = getattr(self, name)
            if layer is not None:  # stem layers a form leaves out are None
                x = layer(x)
        x = self.inception4a(self.maxpool3(self.inception3b(self.inception3a(x))))
        with_aux = self.training and self.aux1 is not None
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        return GoogLeNetOutputs(x, aux1, aux2) if with_aux else x


def _check_choice(option: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(
            f"{option}={value!r} is not one of {', '.join(map(repr, choices))}",
            f"pass {option}={choices[0]!r}",
        )


_PAPER = "Szegedy et al., 2014 (Going Deeper with Convolutions)"


@register_model(
    "googlenet",
    family="GoogLeNet",
    paper=_PAPER,
    year=2014,
    input_size=(3, 224, 224),
    description="Inception v1, torchvision-compatible (BN, 3x3 in the '5x5' branch)",
)
def googlenet(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    aux_logits: bool = True,
    naive: bool = False,
    lrn: bool = False,
    dropout: float = 0.4,
    transform_input: bool = False,
) -> GoogLeNet:
    """GoogLeNet in torchvision's form: its module names, 6,624,904 params without aux heads."""
    return GoogLeNet(
        num_classes,
        in_channels,
        aux_logits=aux_logits,
        naive=naive,
        lrn=lrn,
        dropout=dropout,
        transform_input=transform_input,
    )


@register_model(
    "googlenet_paper",
    family="GoogLeNet",
    paper=_PAPER,
    year=2014,
    input_size=(3, 224, 224),
    description="Inception v1 as Table 1: 5x5 convs, biases, LRN, no batch norm",
)
def googlenet_paper(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    aux_logits: bool = True,
    naive: bool = False,
    lrn: bool = True,
    dropout: float = 0.4,
) -> GoogLeNet:
    """GoogLeNet exactly as the paper's Table 1 (real 5x5 convs, biases, LRN, no batch norm)."""
    return GoogLeNet(
        num_classes,
        in_channels,
        form="paper",
        aux_logits=aux_logits,
        naive=naive,
        lrn=lrn,
        dropout=dropout,
    )


@register_model(
    "googlenet_cifar",
    family="GoogLeNet",
    paper=_PAPER,
    year=2014,
    input_size=(3, 32, 32),
    num_classes=10,
    variant="cifar",
    description="Inception v1 with a 3x3/1 stem and no stem pooling for 32x32",
)
def googlenet_cifar(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    aux_logits: bool = True,
    naive: bool = False,
    lrn: bool = False,
    dropout: float = 0.4,
) -> GoogLeNet:
    """GoogLeNet for 32x32 input: 3x3/1 first conv and no stem max-pools (32 -> 16 -> 8 maps)."""
    return GoogLeNet(
        num_classes,
        in_channels,
        stem="cifar",
        aux_logits=aux_logits,
        naive=naive,
        lrn=lrn,
        dropout=dropout,
    )
