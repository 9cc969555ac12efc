"""SPP-net: a spatial pyramid pooling layer between the convolutions and the FC layers.

Paper: K. He, X. Zhang, S. Ren, J. Sun, "Spatial Pyramid Pooling in Deep Convolutional Networks
for Visual Recognition", ECCV 2014 / TPAMI 2015 (arXiv:1406.4729). The last pooling layer is
replaced by a pyramid of n x n max pools over the whole map, whatever its size, so the FC layers
always receive C x sum(n^2) features and the network takes images of any size (section 2.2).
With seed 004's pyramid (4x4, 2x2, 1x1 = 21 bins) over the 256 maps of conv5 that is
21 x 256 = 5,376 features (the paper's Figure 3).

``sppnet``: the paper's ZF-5 body (Zeiler & Fergus's net as drawn in their Figure 3: conv1-5 with
96, 256, 384, 384, 256 filters; cnnlab's ``zfnet_fig3`` ``features`` without its last max-pool),
:class:`cnnlab.dense.SpatialPyramidPooling`, then fc6 4096, fc7 4096 (ReLU, dropout 0.5) and the
classifier. ``bins`` picks the pyramid (the paper's ImageNet nets use 6, 3, 2, 1) and ``mode``
max or average pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.dense.ops import SpatialPyramidPooling
from cnnlab.models.registry import create, register_model

__all__ = ["SPPNet"]

PAPER = "He et al., 2014"


class SPPNet(nn.Module):
    """``features`` (any size) -> ``spp`` (fixed length) -> ``classifier``."""

    def __init__(self, features: nn.Sequential, channels: int, num_classes: int = 1000,
                 bins=(4, 2, 1), mode: str = "max", dropout: float = 0.5):  # fmt: skip
        super().__init__()
        self.features = features
        self.spp = SpatialPyramidPooling(bins, mode)
        self.classifier = nn.Sequential(
            nn.Linear(self.spp.output_features(channels), 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.spp(self.features(x)))


@register_model(
    "sppnet",
    family="SPP-net",
    paper=PAPER,
    year=2014,
    input_size=(3, 224, 224),
    description="SPP-net: ZF-5 convs, 4x4+2x2+1x1 pyramid (5,376 features), FC 4096 x 2",
)
def sppnet(num_classes: int = 1000, in_channels: int = 3, bins=(4, 2, 1), mode: str = "max",
           dropout: float = 0.5) -> SPPNet:  # fmt: skip
    """SPP-net on ZF-5 (He et al. 2014, Figure 3 and section 3.1): any input size."""
    zf = create("zfnet_fig3", in_channels=in_channels)
    layers = list(zf.features)
    while isinstance(layers[-1], nn.MaxPool2d):  # SPP takes the place of pool5
        layers.pop()
    channels = [m for m in layers if isinstance(m, nn.Conv2d)][-1].out_channels  # 256
    return SPPNet(nn.Sequential(*layers), channels, num_classes, bins, mode, dropout)
