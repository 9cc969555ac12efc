"""Nets that belong to recipes: ``cifar-fast-net`` (the ``cifar-fast`` recipe) and
``fashion-vgg`` (the Fashion-MNIST recipe).

``cifar-fast-net`` follows the ideas of the fastest public CIFAR-10 recipes (Keller Jordan's
airbench, 2024; David Page's "How to train your ResNet", 2018), written here from their
descriptions, not their code:

1. **A whitened first layer.** The first conv has 2x2 kernels that are not learned: they are the
   eigenvectors ``v_i`` of the covariance of all 2x2 patches of the (preprocessed) training
   images, scaled by ``1/sqrt(lambda_i + eps)``, so its outputs are decorrelated, unit-variance
   patch coordinates (ZCA/PCA whitening as a convolution). Each filter is used with both signs
   (``+v``, ``-v``) so the following activation loses nothing. Computed once from the data by
   :meth:`CifarFastNet.data_init`, which the trainer calls before the first step.
2. Three conv groups ``conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU`` at widths
   ``(64, 256, 256)`` by default (``widths=`` for a narrower CPU version), then a global max-pool
   and one linear layer whose logits are scaled down (``logit_scale``), which keeps the first
   steps calm at the high learning rates the recipe uses.

3. Options the ``cifar-fast`` recipe turns on (airbench's, off by default): ``dirac`` (each
   conv's first ``c_in`` filters start as the identity), ``bn_weight=False`` (BN learns a shift,
   no scale) and ``head_std`` (the head drawn at this std).

Both are registered in the zoo (``cnnlab summary cifar-fast-net``, ``create("fashion-vgg")``).
The rest of the recipe lives in the trainer and cnnlab.data: GPU-resident uint8 data
(BatchLoader), label smoothing, alternating flips (Augment preset ``alternating-flip``), Muon
on the conv filters (``training/muon.py``) with a linear decay, and flip-shift TTA at the end.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.registry import register_model

__all__ = ["CifarFastNet", "ConvGroup", "cifar_fast_net", "fashion_vgg"]


class ConvGroup(nn.Module):
    """``conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU``. ``dirac``: the first
    ``c_in`` filters of each conv start as the identity (airbench), so at step 0 the group
    passes its input on; ``bn_weight=False``: BN learns a shift but no scale."""

    def __init__(self, c_in: int, c_out: int, bn_momentum: float = 0.4, dirac: bool = False,
                 bn_weight: bool = True):  # fmt: skip
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = nn.BatchNorm2d(c_out, momentum=bn_momentum)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, momentum=bn_momentum)
        self.act = nn.GELU()
        for conv in (self.conv1, self.conv2) if dirac else ():
            with torch.no_grad():
                nn.init.dirac_(conv.weight[: min(conv.in_channels, conv.out_channels)])
        for bn in (self.bn1, self.bn2):
            bn.weight.requires_grad_(bn_weight)

    def forward(self, x):
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        return self.act(self.bn2(self.conv2(x)))


class CifarFastNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, widths=(64, 256, 256),
                 patch: int = 2, logit_scale: float = 1 / 9, dirac: bool = False,
                 bn_weight: bool = True, head_std: float | None = None):  # fmt: skip
        super().__init__()
        n_whiten = 2 * in_channels * patch * patch  # every eigenvector, with both signs
        self.whiten = nn.Conv2d(in_channels, n_whiten, patch, bias=True)
        self.whiten.weight.requires_grad_(False)  # fixed by data_init, never trained
        self.act = nn.GELU()
        chans = [n_whiten, *widths]
        self.groups = nn.Sequential(
            *(ConvGroup(a, b, dirac=dirac, bn_weight=bn_weight) for a, b in zip(chans, chans[1:]))
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes, bias=False)
        if head_std is not None:  # a head drawn at this std, not PyTorch's fan-in uniform
            # (that it is a number, create() checks from the annotation, as for every model)
            if not head_std > 0:
                raise ConfigError(
                    f"cifar-fast-net option head_std={head_std!r}: expected a positive number",
                    "give head_std=0.28, or leave it out for PyTorch's default init",
                )
            nn.init.normal_(self.fc.weight, std=float(head_std))
        self.logit_scale = logit_scale
        self.register_buffer("whitened", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def data_init(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from preprocessed training images ``[N, C, H, W]``."""
        k = self.whiten.kernel_size[0]
        x = images.to(self.whiten.weight.device, torch.float32)
        patches = torch.nn.functional.unfold(x, k).transpose(1, 2).reshape(-1, x.shape[1] * k * k)
        patches = patches - patches.mean(0)
        cov = patches.T.double() @ patches.double() / len(patches)
        lam, vec = torch.linalg.eigh(cov)  # ascending eigenvalues, eigenvectors in columns
        filt = (vec / (lam.clamp_min(0) + eps).sqrt()).T.float()  # one row per filter
        filt = filt.flip(0).reshape(-1, x.shape[1], k, k)  # strongest direction first
        self.whiten.weight.copy_(torch.cat([filt, -filt]))
        self.whiten.bias.zero_()
        self.whitened.fill_(True)

    def forward(self, x):
        x = self.groups(self.act(self.whiten(x)))
        return self.fc(self.pool(x).flatten(1)) * self.logit_scale


@register_model(
    "cifar-fast-net",
    family="Recipe nets",
    paper="Jordan 2024 (airbench); Page 2018",
    year=2024,
    input_size=(3, 32, 32),
    num_classes=10,
    variant="cifar",
)
def cifar_fast_net(num_classes: int = 10, in_channels: int = 3, widths=(64, 256, 256),
                   patch: int = 2, logit_scale: float = 1 / 9, dirac: bool = False,
                   bn_weight: bool = True,
                   head_std: float | None = None) -> CifarFastNet:  # fmt: skip
    """The cifar-fast recipe's net: a fixed whitening conv, three conv groups, a scaled head.
    ``dirac``, ``bn_weight=False`` and ``head_std`` are airbench's initialisation and BN form
    (the ``cifar-fast`` recipe uses them; the defaults keep the plain form)."""
    return CifarFastNet(num_classes, in_channels, tuple(widths), patch, logit_scale, dirac,
                        bn_weight, head_std)  # fmt: skip


@register_model(
    "fashion-vgg",
    family="Recipe nets",
    paper="Simonyan & Zisserman 2015 (the pattern)",
    year=2015,
    input_size=(1, 28, 28),
    num_classes=10,
    variant="mnist",
)
def fashion_vgg(num_classes: int = 10, in_channels: int = 1, widths=(32, 64),
                dropout: float = 0.25) -> nn.Sequential:  # fmt: skip
    """A small VGG-style net for 28x28 images (Simonyan & Zisserman 2015's pattern: stacks of
    3x3 convs, BN, max-pool, doubled widths): two groups of two convs, then one linear layer."""
    layers: list[nn.Module] = []
    c = in_channels
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
                   nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
                   nn.MaxPool2d(2)]  # fmt: skip
        c = w
    side = 28 // 2 ** len(widths)
    return nn.Sequential(*layers, nn.Flatten(), nn.Dropout(dropout),
                         nn.Linear(c * side * side, num_classes))  # fmt: skip
