"""Semantic segmentation scores: mean IoU, pixel accuracy and per-class IoU (FCN, seed 004 §4).

Everything comes from one ``num_classes x num_classes`` confusion matrix built with a single
``bincount`` over all pixels, so scoring a whole test set costs one pass over its masks. The
definitions are the ones torchmetrics uses (``MulticlassJaccardIndex(average="macro")`` and
``MulticlassAccuracy(average="micro")``), and the tests check the numbers against it:

- IoU of class c = TP / (TP + FP + FN) over all pixels of all images;
- mIoU = the mean IoU over the classes that occur in the predictions or the ground truth (a
  class absent from both has no IoU, NaN in ``per_class_iou``, and does not count);
- pixel accuracy = correctly labelled pixels / labelled pixels.

Pixels whose true label is ``ignore_index`` (Pascal VOC marks object borders 255) count nowhere.
For scores accumulated batch by batch, sum :func:`segmentation_confusion` and call
:func:`scores_from_confusion` once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cnnlab.errors import ConfigError, ShapeError

__all__ = [
    "SegmentationScores",
    "scores_from_confusion",
    "segmentation_confusion",
    "segmentation_scores",
]


@dataclass
class SegmentationScores:
    miou: float  # mean IoU over the classes present in the predictions or the ground truth
    pixel_accuracy: float  # correct pixels / labelled pixels
    per_class_iou: list[float]  # NaN for a class absent from both predictions and ground truth
    confusion: torch.Tensor = field(repr=False)  # [true, predicted] pixel counts, int64

    def as_dict(self) -> dict:
        """Plain numbers for logs and JSON (the confusion matrix as nested lists)."""
        return {
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "per_class_iou": list(self.per_class_iou),
            "confusion": self.confusion.tolist(),
        }


def _as_tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        return torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(
            f"{what} must be a tensor or array of class ids, got {type(x).__name__}: {e}",
            "pass an integer tensor [N, H, W] (or a list of [H, W] masks)",
        ) from None


def _labels(pred: torch.Tensor, true: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Predicted class ids: logits/scores [..., C, H, W] are reduced with argmax over C."""
    if pred.dim() == true.dim() + 1 and pred.shape[-3] == num_classes:
        pred = pred.argmax(dim=-3)
    elif pred.is_floating_point():
        whole = torch.isfinite(pred).all() and (pred == pred.round()).all()
        if not whole:
            raise ConfigError(
                f"pred_masks are floating point with shape {tuple(pred.shape)} but are not "
                f"whole class ids, and their shape is not scores [N, {num_classes}, H, W] "
                f"for masks {tuple(true.shape)}",
                "pass class ids (e.g. logits.argmax(1)) or the logits themselves",
            )
    return pred


def segmentation_confusion(
    pred_masks, true_masks, num_classes: int, *, ignore_index: int | None = None
) -> torch.Tensor:
    """``[true, predicted]`` pixel counts (int64, returned on the CPU) for a batch or a whole set.

    ``pred_masks`` are class ids shaped like ``true_masks`` ([N, H, W] or [H, W]) or scores with
    a class axis ([N, C, H, W]); both may also be lists of per-image masks of different sizes.
    A true id outside ``0..num_classes-1`` (other than ``ignore_index``) or a predicted one
    outside it raises ``ShapeError`` naming the first bad image.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(
            f"num_classes must be a whole number >= 1, got {num_classes!r}",
            "pass the number of classes including the background",
        )
    if isinstance(pred_masks, (list, tuple)) or isinstance(true_masks, (list, tuple)):
        if not isinstance(pred_masks, (list, tuple)) or not isinstance(true_masks, (list, tuple)):
            raise ConfigError(
                "pred_masks and true_masks must both be lists or both be tensors",
                "pass two lists of per-image masks, or two stacked tensors",
            )
        if len(pred_masks) != len(true_masks):
            raise ShapeError(
                f"{len(pred_masks)} predicted masks for {len(true_masks)} true masks",
                "pass one prediction per image",
            )
        total = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        for i, (p, t) in enumerate(zip(pred_masks, true_masks)):
            try:
                total += segmentation_confusion(p, t, num_classes, ignore_index=ignore_index)
            except ShapeError as e:
                raise ShapeError(f"image {i}: {e.message}", e.hint) from None
        return total

    pred = _as_tensor(pred_masks, "pred_masks")
    true = _as_tensor(true_masks, "true_masks")
    if true.is_floating_point() and not (true == true.round()).all():
        raise ConfigError("true_masks must hold whole class ids", "pass an integer mask")
    pred = _labels(pred, true, num_classes)
    if pred.shape != true.shape:
        raise ShapeError(
            f"pred_masks {tuple(pred.shape)} and true_masks {tuple(true.shape)} differ in shape",
            f"pass class ids shaped like the masks, or scores [N, {num_classes}, H, W]",
        )
    pred = pred.reshape(-1).to(torch.int64)
    true = true.reshape(-1).to(torch.int64)
    if ignore_index is not None:
        keep = true != ignore_index
        pred, true = pred[keep], true[keep]
    for name, ids in (("true", true), ("predicted", pred)):
        bad = (ids < 0) | (ids >= num_classes)
        if bool(bad.any()):
            first = int(ids[bad][0])
            where = int(bad.nonzero()[0, 0])
            void = (
                " (Pascal VOC marks object borders 255: pass ignore_index=255)"
                if first == 255 and name == "true"
                else ""
            )
            raise ShapeError(
                f"{name} mask holds class id {first} (pixel {where} of the flattened masks), "
                f"outside 0..{num_classes - 1}{void}",
                f"use class ids below num_classes={num_classes}, or raise num_classes",
            )
    # count where the masks live (a GPU counts its own pixels); only the small matrix moves
    idx = true * num_classes + pred.to(true.device)
    counts = torch.bincount(idx, minlength=num_classes * num_classes).cpu()
    return counts.view(num_classes, num_classes)


def scores_from_confusion(confusion: torch.Tensor) -> SegmentationScores:
    """mIoU, pixel accuracy and per-class IoU from a ``[true, predicted]`` confusion matrix."""
    confusion = torch.as_tensor(confusion, dtype=torch.int64)
    c = confusion.double()
    tp = c.diag()
    union = c.sum(0) + c.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.nan)
    present = union > 0
    miou = float(iou[present].mean()) if bool(present.any()) else float("nan")
    total = c.sum()
    acc = float(tp.sum() / total) if total > 0 else float("nan")
    return SegmentationScores(
        miou=miou, pixel_accuracy=acc, per_class_iou=iou.tolist(), confusion=confusion
    )


def segmentation_scores(
    pred_masks, true_masks, num_classes: int, *, ignore_index: int | None = None
) -> SegmentationScores:
    """mIoU, pixel accuracy and per-class IoU of predicted masks against the true masks.

    >>> import torch
    >>> true = torch.tensor([[0, 0, 1, 1]])
    >>> s = segmentation_scores(torch.tensor([[0, 1, 1, 1]]), true, num_classes=2)
    >>> round(s.miou, 4), s.pixel_accuracy, [round(v, 4) for v in s.per_class_iou]
    (0.5833, 0.75, [0.5, 0.6667])
    """
    return scores_from_confusion(
        segmentation_confusion(pred_masks, true_masks, num_classes, ignore_index=ignore_index)
    )
