"""Scores for dense prediction, computed in one vectorised pass over a whole set.

- :func:`segmentation_scores` (mIoU, pixel accuracy, per-class IoU) for FCN-style models;
- :func:`detection_map` (COCO mAP@[.5:.95] and Pascal VOC all-point mAP@0.5) for detectors,
  in torchvision's format (lists of dicts with ``boxes`` xyxy, ``scores``, ``labels``).

Both match the reference implementations (torchmetrics, pycocotools) number for number; the
tests compare them on random predictions.
"""

from cnnlab.metrics.detection import detection_map
from cnnlab.metrics.segmentation import (
    SegmentationScores,
    scores_from_confusion,
    segmentation_confusion,
    segmentation_scores,
)

__all__ = [
    "SegmentationScores",
    "detection_map",
    "scores_from_confusion",
    "segmentation_confusion",
    "segmentation_scores",
]
