"""Faster R-CNN: a region proposal network and Fast R-CNN on one shared feature map.

Paper: S. Ren, K. He, R. Girshick, J. Sun, "Faster R-CNN: Towards Real-Time Object Detection with
Region Proposal Networks", NeurIPS 2015 (arXiv:1506.01497). Seed 004, section 5: the RPN slides
a 3x3 convolution over the last conv map and, at every position, scores k = 9 anchors (3 sizes
128, 256, 512 x 3 ratios 1:2, 1:1, 2:1) as object or not (2k = 18 channels, a two-way softmax)
and regresses 4 offsets for each (4k = 36 channels); the best proposals are RoI-pooled to 7x7
(Fast R-CNN, Girshick 2015) and classified with per-class box refinement.

cnnlab builds it from torchvision's detection parts -- ``FasterRCNN`` (training targets, losses,
sampling, NMS, the resize/normalise transform), ``AnchorGenerator`` and ``RPNHead`` -- configured
as the paper and the seed describe:

- one feature map (no FPN), taken from a cnnlab zoo backbone's ``features`` without its last
  max-pool (stride 16 for VGG-16: ``conv5_3``, 512 channels, as in the paper);
- :class:`PaperRPNHead`: torchvision's RPN head with the paper's 2k = 18 objectness channels
  (a background and an object score per anchor). torchvision's own head has k channels and a
  sigmoid; the two agree exactly, since a two-way softmax is the sigmoid of the difference of
  the two scores, which is what the head hands to torchvision's RPN;
- :class:`RoIPool`: Fast R-CNN's RoI max pooling (``torchvision.ops.roi_pool``, 7x7) on the one
  map; torchvision's default would be RoIAlign (Mask R-CNN, 2017);
- the box head: VGG-16's fc6 and fc7 (two 4096-wide FC layers), then classes + 4 x classes.

``fasterrcnn`` is that network (``backbone=`` any zoo model with a ``features`` stack, default
``vgg16``; 600-pixel shorter side as in the paper). ``fasterrcnn_small`` keeps the structure (one
stride-8 map, 9 anchors, 18/36-channel RPN head, RoI pooling) on a small batch-norm body with
anchors of 12, 20 and 32 pixels for 96x96 ``digits-det``; it is not from the paper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.registry import register_model

if TYPE_CHECKING:
    from torchvision.models.detection import FasterRCNN

__all__ = ["build_faster_rcnn", "SEED_SIZES", "SEED_RATIOS"]  # the parts: rcnn_parts


PAPER = "Ren et al., 2015"
SEED_SIZES = (128, 256, 512)  # anchor box areas 128^2, 256^2, 512^2 pixels
SEED_RATIOS = (0.5, 1.0, 2.0)  # height / width, as torchvision's AnchorGenerator reads them


class Backbone(nn.Sequential):
    """A conv stack with the ``out_channels`` attribute FasterRCNN reads."""

    def __init__(self, *layers: nn.Module, out_channels: int):
        super().__init__(*layers)
        self.out_channels = out_channels


def zoo_backbone(name: str, in_channels: int = 3) -> Backbone:
    """A cnnlab zoo model's ``features`` without the final max-pool (stride 16 for VGG)."""
    from cnnlab.models.registry import create

    model = create(name, in_channels=in_channels)
    feats = getattr(model, "features", None)
    if not isinstance(feats, nn.Sequential):
        raise ConfigError(
            f"backbone {name!r} has no `features` stack to take a feature map from",
            "use a VGG, AlexNet or ZFNet model, e.g. vgg16",
        )
    layers = list(feats)
    while layers and isinstance(layers[-1], nn.MaxPool2d):
        layers.pop()
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    return Backbone(*layers, out_channels=convs[-1].out_channels)


def build_faster_rcnn(
    backbone: Backbone,
    num_classes: int,
    *,
    sizes=SEED_SIZES,
    ratios=SEED_RATIOS,
    representation: int = 4096,
    roi_size: int = 7,
    **kwargs,
) -> FasterRCNN:
    """torchvision's FasterRCNN on one map with 3 sizes x 3 ratios anchors, the paper's RPN head,
    RoI pooling and a two-FC box head. ``num_classes`` counts the background (class 0), as
    torchvision's does. ``kwargs`` go to FasterRCNN (min_size, image_mean, rpn_*, box_*)."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

    from cnnlab.models.rcnn_parts import PaperRPNHead, RoIPool, SeedAnchorGenerator

    anchors = SeedAnchorGenerator(sizes=(tuple(sizes),), aspect_ratios=(tuple(ratios),))
    k = anchors.num_anchors_per_location()[0]
    c = backbone.out_channels
    return FasterRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        rpn_head=PaperRPNHead(c, k),
        box_roi_pool=RoIPool(roi_size),
        box_head=TwoMLPHead(c * roi_size * roi_size, representation),
        box_predictor=FastRCNNPredictor(representation, num_classes),
        **kwargs,
    )


@register_model(
    "fasterrcnn",
    family="Faster R-CNN",
    paper=PAPER,
    year=2015,
    input_size=(3, 600, 800),
    num_classes=21,
    description="Faster R-CNN, VGG-16 conv5_3, 9 anchors, RoI pooling (VOC: 21)",
)
def fasterrcnn(
    num_classes: int = 21,
    in_channels: int = 3,
    backbone: str = "vgg16",
    min_size: int = 600,
    max_size: int = 1000,
) -> FasterRCNN:
    """Faster R-CNN as in Ren et al. 2015 (VGG-16 backbone, one map, 9 anchors, 2k/4k RPN)."""
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's ImageNet statistics
    if in_channels != 3:
        mean, std = (0.5,) * in_channels, (0.5,) * in_channels
    return build_faster_rcnn(
        zoo_backbone(backbone, in_channels),
        num_classes,
        min_size=min_size,
        max_size=max_size,
        image_mean=list(mean),
        image_std=list(std),
    )


# stride 8 (96 -> a 12 x 12 map); the first convolution already halves the image: no layer
# runs at the full 96 x 96 (docs/dense.md has the step times)
SMALL_BODY = [(16, 2), (32, 1), (32, 2), (64, 1), (64, 2), (128, 1), (128, 1)]


def small_body(in_channels: int) -> Backbone:
    layers: list[nn.Module] = []
    c = in_channels
    for out, s in SMALL_BODY:
        layers += [nn.Conv2d(c, out, 3, s, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
        c = out
    return Backbone(*layers, out_channels=c)


@register_model(
    "fasterrcnn_small",
    family="Faster R-CNN",
    paper=PAPER,
    year=2015,
    input_size=(1, 96, 96),
    num_classes=11,
    variant="digits",
    description="small Faster R-CNN for digits-det: stride-8 map, 9 anchors",
)
def fasterrcnn_small(
    num_classes: int = 11, in_channels: int = 1, size: int = 96, representation: int = 256
) -> FasterRCNN:
    """Faster R-CNN's structure on a 7-conv body for 96x96 digits-det (class 0 = background)."""
    return build_faster_rcnn(
        small_body(in_channels),
        num_classes,
        sizes=(12, 20, 32),
        representation=representation,
        min_size=size,
        max_size=size,
        image_mean=[0.5] * in_channels,
        image_std=[0.5] * in_channels,
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=128,
        box_batch_size_per_image=64,  # Fast R-CNN's 64 RoIs per image (128 from 2 images)
        box_detections_per_img=20,
    )
