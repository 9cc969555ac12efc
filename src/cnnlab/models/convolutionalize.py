"""Convolutionalization (seed 004, the FCN idea): fully connected layers as convolutions.

A fully connected layer that reads a flattened C x H x W map computes, at one position, exactly
what a convolution with C x H x W kernels computes; every later fully connected layer is a 1x1
convolution. Rewriting the head this way changes nothing at the training input size (the
output is one position holding the original logits) and lets the network slide over larger
images, returning a class heat map of shape (N, classes, h, w) — Long, Shelhamer, Darrell,
"Fully Convolutional Networks for Semantic Segmentation", CVPR 2015, section 3.1; also
Sermanet et al.'s OverFeat (2014) and the "dense evaluation" of Simonyan & Zisserman (2014).

``convolutionalize(model)`` accepts a model with a ``features`` module, optionally an
``avgpool``, and a ``classifier`` ``nn.Sequential`` of ``Linear`` layers and element-wise
modules (ReLU, Tanh, Sigmoid, Dropout, cnnlab's ScaledTanh, Identity): cnnlab's LeNet-5,
AlexNet (both), ZFNet and VGG, and torchvision's ``alexnet`` and ``vgg*``.

The flattened map's shape (C, H, W) comes from, in order: an ``AdaptiveAvgPool2d`` ``avgpool``
(its output size; torchvision's AlexNet 6x6 and VGG 7x7), the ``input_size`` argument (probed
on the meta device), or the channel count of the last conv in ``features`` with a square map.

The adaptive average pool is *removed*: at the training size it is the identity (AlexNet's
conv part already gives 6x6 at 224/227, VGG's 7x7 at 224), but at a larger size it would
squeeze the map back to 6x6/7x7 and no heat map would come out. So the equality with the
original logits holds exactly when the conv part's output equals the pool's output size;
below that size the original model's pool upsamples and the converted model refuses the input
with a ShapeError.

Anything else in the head (an RBF layer, batch norm, a nested block) raises a ConfigError that
names it. NIN and the GAP networks need no conversion: they have no fully connected head.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from cnnlab.errors import ConfigError, ShapeError

__all__ = ["convolutionalize", "FullyConvolutional"]

# Modules that act element-wise (or per position), so they work unchanged on (N, C, h, w).
_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Identity, nn.GELU)


def _pointwise(m: nn.Module) -> bool:
    return isinstance(m, _POINTWISE) or type(m).__name__ == "ScaledTanh"


class FullyConvolutional(nn.Module):
    """``features`` then ``head`` (convolutions): returns class maps (N, classes, h, w)."""

    def __init__(self, features: nn.Module, head: nn.Sequential, kernel: tuple[int, int]):
        super().__init__()
        self.features = features
        self.head = head
        self.kernel = kernel  # spatial size of the first head conv = the training map size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if x.shape[-2] < self.kernel[0] or x.shape[-1] < self.kernel[1]:
            raise ShapeError(
                f"the conv part gives {x.shape[-2]}x{x.shape[-1]} maps, smaller than the "
                f"{self.kernel[0]}x{self.kernel[1]} the converted classifier reads",
                "feed images at least as large as the training input",
            )
        return self.head(x)


def _flat_shape(model: nn.Module, first: nn.Linear, input_size) -> tuple[int, int, int]:
    pool = getattr(model, "avgpool", None)
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        size = pool.output_size
        h, w = (size, size) if isinstance(size, int) else size
        if h is not None and w is not None and first.in_features % (h * w) == 0:
            return first.in_features // (h * w), h, w
    if input_size is not None:
        with torch.device("meta"):
            probe = torch.zeros(1, *input_size)
            out = copy.deepcopy(model.features).to("meta")(probe)
        if out[0].numel() != first.in_features:
            raise ShapeError(
                f"at input {tuple(input_size)} the conv part gives {tuple(out.shape[1:])}, "
                f"but the first fully connected layer reads {first.in_features} features",
                "pass the input size the model was trained at",
            )
        c, h, w = out.shape[1:]
        return c, h, w
    channels = None
    for m in model.features.modules():
        if isinstance(getattr(m, "out_channels", None), int):  # convs, LeNet-5's C3Table
            channels = m.out_channels
    if channels and first.in_features % channels == 0:
        side = math.isqrt(first.in_features // channels)
        if side * side * channels == first.in_features:
            return channels, side, side
    raise ConfigError(
        f"cannot tell the (C, H, W) shape behind {first.in_features} flattened features",
        "pass input_size=(C, H, W), the model's training input size",
    )


def convolutionalize(model: nn.Module, input_size: tuple[int, int, int] | None = None):
    """Return a :class:`FullyConvolutional` copy of ``model`` whose FC head is convolutions.

    ``input_size`` (C, H, W) is only needed when the flattened map's shape cannot be read from
    the model (see the module docstring). The original model is not modified.
    """
    classifier = getattr(model, "classifier", None)
    if not hasattr(model, "features") or not isinstance(classifier, nn.Sequential):
        name = type(model).__name__
        raise ConfigError(
            f"convolutionalize needs a model with `features` and a `classifier` nn.Sequential; "
            f"{name} has "
            + ("no fully connected head (it is already fully convolutional)"
               if hasattr(model, "features") else "no `features` module"),
            "it works for LeNet-5, AlexNet, ZFNet and VGG (cnnlab's or torchvision's)",
        )  # fmt: skip
    linears = [m for m in classifier if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"{type(model).__name__}.classifier has no nn.Linear to convert")
    c, h, w = _flat_shape(model, linears[0], input_size)

    head: list[nn.Module] = []
    first = True
    for i, m in enumerate(classifier):
        if isinstance(m, nn.Linear):
            k = (h, w) if first else (1, 1)
            cin = c if first else m.in_features
            conv = nn.Conv2d(cin, m.out_features, k, bias=m.bias is not None)
            conv = conv.to(device=m.weight.device, dtype=m.weight.dtype)
            with torch.no_grad():
                # torch.flatten orders features (c, h, w), the conv weight's (in, kh, kw) order.
                conv.weight.copy_(m.weight.reshape(m.out_features, cin, *k))
                if m.bias is not None:
                    conv.bias.copy_(m.bias)
            head.append(conv)
            first = False
        elif isinstance(m, nn.Flatten) and first:
            continue
        elif _pointwise(m):
            head.append(copy.deepcopy(m))
        else:
            raise ConfigError(
                f"cannot convolutionalize classifier[{i}] ({type(m).__name__}) "
                f"of {type(model).__name__}",
                "only nn.Linear and element-wise layers (ReLU, Tanh, Dropout, ...) convert",
            )
    fcn = FullyConvolutional(copy.deepcopy(model.features), nn.Sequential(*head), (h, w))
    return fcn.train(model.training)
