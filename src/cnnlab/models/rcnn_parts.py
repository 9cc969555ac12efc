"""torchvision's Faster R-CNN parts, configured as Ren et al. 2015 and seed 004 describe them.

Kept apart from :mod:`cnnlab.models.faster_rcnn` (which registers the models) so that importing
the zoo does not import torchvision's detection code; :func:`~cnnlab.models.faster_rcnn.\
build_faster_rcnn` imports this module when it builds a model.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign, roi_pool

__all__ = ["PaperRPNHead", "RoIPool", "SeedAnchorGenerator"]


class PaperRPNHead(RPNHead):
    """RPN head with 2k objectness channels (paper) instead of torchvision's k.

    ``cls_logits`` outputs, per anchor a, the pair (background, object) at channels (2a, 2a+1);
    the forward hands torchvision's RPN ``object - background``, the logit whose sigmoid is the
    two-way softmax's object probability.
    """

    def __init__(self, in_channels: int, num_anchors: int):
        super().__init__(in_channels, num_anchors)
        self.cls_logits = nn.Conv2d(in_channels, 2 * num_anchors, 1)
        nn.init.normal_(self.cls_logits.weight, std=0.01)  # as torchvision's head, and the paper
        nn.init.zeros_(self.cls_logits.bias)

    def forward(self, x: list[torch.Tensor]):
        scores, deltas = super().forward(x)
        out = []
        for s in scores:
            n, c, h, w = s.shape
            pair = s.view(n, c // 2, 2, h, w)
            out.append(pair[:, :, 1] - pair[:, :, 0])
        return out, deltas


class RoIPool(MultiScaleRoIAlign):
    """Fast R-CNN's RoI max pooling on FasterRCNN's single feature map ``"0"``.

    A ``MultiScaleRoIAlign`` (the type FasterRCNN accepts) whose forward max-pools each RoI
    (``torchvision.ops.roi_pool``) instead of sampling it bilinearly.
    """

    def __init__(self, output_size: int = 7):
        super().__init__(["0"], output_size, sampling_ratio=0)
        self.size = output_size

    def forward(self, features: dict, proposals: list[torch.Tensor], image_shapes) -> torch.Tensor:
        fmap = features["0"]
        # an exact 1/stride, inferred from the sizes as torchvision's MultiScaleRoIAlign does
        scale = 2.0 ** round(math.log2(fmap.shape[-1] / max(s[1] for s in image_shapes)))
        return roi_pool(fmap, proposals, self.size, scale)


class SeedAnchorGenerator(AnchorGenerator):
    """torchvision's AnchorGenerator, regenerating its cell anchors (9 boxes, cheap) on each
    call: the base class moves its cached anchors to the input's device, so one trace on meta
    tensors (``cnnlab summary``) would leave anchors that no real input can use."""

    def set_cell_anchors(self, dtype: torch.dtype, device: torch.device) -> None:
        self.cell_anchors = [
            self.generate_anchors(s, r, dtype, device)
            for s, r in zip(self.sizes, self.aspect_ratios)
        ]
