"""Dense prediction (seed 004 §4-5): the ops detection and segmentation models are built from.

:mod:`cnnlab.dense.ops` holds cnnlab's own ops (spatial pyramid pooling, anchors, the box
coder) and re-exports torchvision's (RoI pool/align, IoU, NMS, box conversion). The arithmetic
behind them, with the working shown, is in :mod:`cnnlab.arithmetic.dense`; the scores in
:mod:`cnnlab.metrics`.
"""

from cnnlab.dense.ops import (
    SEED_ANCHOR_RATIOS,
    SEED_ANCHOR_SIZES,
    SEED_FEATURE_STRIDE,
    BoxCoder,
    RoIAlign,
    RoIPool,
    SpatialPyramidPooling,
    base_anchors,
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    grid_anchors,
    nms,
    remove_small_boxes,
    roi_align,
    roi_pool,
    seed_anchor_generator,
)

__all__ = [
    "SEED_ANCHOR_RATIOS",
    "SEED_ANCHOR_SIZES",
    "SEED_FEATURE_STRIDE",
    "BoxCoder",
    "RoIAlign",
    "RoIPool",
    "SpatialPyramidPooling",
    "base_anchors",
    "batched_nms",
    "box_area",
    "box_convert",
    "box_iou",
    "clip_boxes_to_image",
    "grid_anchors",
    "nms",
    "remove_small_boxes",
    "roi_align",
    "roi_pool",
    "seed_anchor_generator",
]
