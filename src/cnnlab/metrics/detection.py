"""Detection scores: COCO mAP@[.5:.95] and Pascal VOC mAP@0.5 (all-point), in torchvision's format.

``detection_map(preds, targets)`` takes what torchvision's detection models return and what
their datasets give: one dict per image, ``preds[i] = {"boxes": [P, 4] xyxy, "scores": [P],
"labels": [P]}`` and ``targets[i] = {"boxes": [G, 4] xyxy, "labels": [G]}`` (an optional
``"difficult"`` [G] bool marks Pascal VOC's difficult objects). Two protocols, each exactly as its
reference computes it (the tests compare with pycocotools and torchmetrics, and with the VOC
devkit's procedure):

**COCO** (Lin et al. 2014; pycocotools' ``COCOeval``, area "all", at most 100 detections per
image and class): per IoU threshold t in 0.50, 0.55, ..., 0.95, detections in descending score
order each take the unmatched ground-truth box of their class with the highest IoU >= t (true
positive) or none (false positive). Precision, made non-increasing from the right, is read at the
101 recall points 0, 0.01, ..., 1 (0 past the last recall reached) and averaged; "map" is the
mean over thresholds and classes that have ground truth. "map_50"/"map_75" are the same at one
threshold (what torchmetrics calls them), "mar_100" the mean final recall.

**VOC** (Everingham et al. 2010, the devkit from VOC2010 on): IoU threshold 0.5; each detection
is compared with the ground-truth box of its class that it overlaps most; it is a true positive
if that IoU >= 0.5 and the box was not already claimed by a higher-scoring detection, a false
positive otherwise, and ignored when that box is "difficult". AP is the area under the whole
precision-recall curve with precision made non-increasing ("all-point" interpolation, not the
11-point rule of VOC2007). "map_50_voc" is the mean over classes with (non-difficult) ground
truth.

Difficult objects are ignored by both: they do not count as objects to find, and a detection
that matches one (and nothing that counts) is neither right nor wrong (pycocotools' "ignore").
A class without ground truth that counts has no AP and is left out of the means (its detections
cannot be scored); images without objects still contribute false positives. With no ground
truth at all every mean is NaN.

Matching is vectorised over images and thresholds: one IoU matrix per image (torchvision's
``box_iou``), padded into one array, and a loop over detection ranks only, so a test set of
thousands of images scores in a fraction of a second.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.ops import box_iou

from cnnlab.errors import ConfigError, ShapeError

__all__ = ["COCO_IOU_THRESHOLDS", "COCO_RECALL_POINTS", "detection_map"]

# pycocotools' Params, built the same way so the floats are identical
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
COCO_RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
COCO_MAX_DETS = 100
VOC_IOU = 0.5


def _field(d, key: str, i: int, what: str, *, ndim: int, required: bool = True):
    if not isinstance(d, dict):
        raise ConfigError(
            f"{what}[{i}] is a {type(d).__name__}, not a dict",
            "pass one dict per image with 'boxes' (xyxy), 'labels' (and 'scores' for preds)",
        )
    if key not in d:
        if not required:
            return None
        raise ConfigError(
            f"{what}[{i}] has no {key!r} (it has {sorted(d)})",
            "torchvision's format: {'boxes': [N, 4] xyxy, 'scores': [N], 'labels': [N]}",
        )
    value = d[key]
    t = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    if ndim == 2 and t.numel() == 0:
        t = t.reshape(0, 4)
    if t.dim() != ndim or (ndim == 2 and t.shape[1] != 4):
        want = "[N, 4]" if ndim == 2 else "[N]"
        raise ShapeError(
            f"{what}[{i}][{key!r}] has shape {tuple(t.shape)}, expected {want}",
            "boxes are [N, 4] as (x1, y1, x2, y2); scores and labels are [N]",
        )
    return t


def _image(pred, target, i: int):
    """Validated numpy arrays of one image (predictions sorted by descending score)."""
    pb = _field(pred, "boxes", i, "preds", ndim=2).double()
    ps = _field(pred, "scores", i, "preds", ndim=1).double()
    pl = _field(pred, "labels", i, "preds", ndim=1).long()
    gb = _field(target, "boxes", i, "targets", ndim=2).double()
    gl = _field(target, "labels", i, "targets", ndim=1).long()
    gd = _field(target, "difficult", i, "targets", ndim=1, required=False)
    gd = torch.zeros(len(gl), dtype=torch.bool) if gd is None else gd.bool()
    if not (len(pb) == len(ps) == len(pl)):
        raise ShapeError(
            f"preds[{i}] has {len(pb)} boxes, {len(ps)} scores and {len(pl)} labels",
            "give every predicted box one score and one label",
        )
    if not (len(gb) == len(gl) == len(gd)):
        raise ShapeError(
            f"targets[{i}] has {len(gb)} boxes and {len(gl)} labels"
            + (f" and {len(gd)} difficult flags" if "difficult" in target else ""),
            "give every ground-truth box one label",
        )
    for name, t in (("preds", pb), ("preds", ps), ("targets", gb)):
        if not bool(torch.isfinite(t).all()):
            raise ShapeError(f"{name}[{i}] holds NaN or infinite values", "check the model output")
    for name, labels in (("preds", pl), ("targets", gl)):
        if len(labels) and int(labels.min()) < 0:
            raise ShapeError(
                f"{name}[{i}] has label {int(labels.min())}", "labels are class ids >= 0"
            )
    bad = (gb[:, 2] < gb[:, 0]) | (gb[:, 3] < gb[:, 1])
    if bool(bad.any()):
        j = int(bad.nonzero()[0, 0])
        raise ShapeError(
            f"targets[{i}] box {j} {gb[j].tolist()} has x2 < x1 or y2 < y1",
            "boxes are (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2 "
            "(torchvision.ops.box_convert turns xywh or cxcywh into xyxy)",
        )
    order = np.argsort(-ps.numpy(), kind="stable")  # pycocotools sorts with mergesort (stable)
    pb, ps, pl = pb[order], ps[order], pl[order]
    iou = box_iou(pb, gb) if len(pb) and len(gb) else torch.zeros(len(pb), len(gb), dtype=pb.dtype)
    iou = iou.numpy()
    pl, gl = pl.numpy(), gl.numpy()
    iou[pl[:, None] != gl[None, :]] = -1.0  # a detection only competes for its own class
    return ps.numpy(), pl, iou, gl, gd.numpy()


def _rank_within_label(labels: np.ndarray) -> np.ndarray:
    """For detections in score order: how many earlier ones share the label (0, 1, 2, ...)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_labels)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(labels)]))
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - first
    return rank


def _coco_match(iou: np.ndarray, valid: np.ndarray, ignored: np.ndarray):
    """COCO's greedy matching for all images and thresholds at once.

    ``iou`` is [N, D, G] (detections in score order, -1 for another class or padding),
    ``ignored`` [N, G] the ground truth to ignore (difficult). Returns (true positive, ignored
    detection) flags, each [T, N, D]. As pycocotools: a detection takes the free box of its
    class with the highest IoU >= t among the boxes that count, and only if there is none, an
    ignored one, which makes the detection itself ignored.
    """
    n, d_max, g_max = iou.shape
    thr = np.minimum(COCO_IOU_THRESHOLDS, 1 - 1e-10)[:, None, None]  # pycocotools' bound
    tp = np.zeros((len(thr), n, d_max), dtype=bool)
    det_ignored = np.zeros_like(tp)
    if g_max == 0:
        return tp, det_ignored
    taken = np.zeros((len(thr), n, g_max), dtype=bool)
    for d in range(d_max):
        iou_d = iou[:, d, :][None]  # [1, N, G]
        free = (iou_d >= thr) & ~taken
        main = free & ~ignored[None]
        side = free & ignored[None]
        has_main = main.any(-1)
        cand = np.where(has_main[..., None], main, side)
        # the highest IoU among the candidates; on a tie pycocotools keeps the later box
        score = np.where(cand, iou_d, -np.inf)[..., ::-1]
        g = g_max - 1 - score.argmax(-1)  # [T, N]
        hit = cand.any(-1) & valid[None, :, d]
        tp[:, :, d] = hit & has_main
        det_ignored[:, :, d] = hit & ~has_main
        t_idx, n_idx = np.nonzero(hit)
        taken[t_idx, n_idx, g[t_idx, n_idx]] = True
    return tp, det_ignored


def _coco_class(tp: np.ndarray, ignored: np.ndarray, scores: np.ndarray, n_gt: int):
    """(precision at the 101 recall points [T, R], final recall [T]) of one class."""
    order = np.argsort(-scores, kind="stable")
    tp, ignored = tp[:, order], ignored[:, order]
    n_det = tp.shape[1]
    if n_det == 0:
        return np.zeros((tp.shape[0], len(COCO_RECALL_POINTS))), np.zeros(tp.shape[0])
    tps = np.cumsum(tp & ~ignored, axis=1, dtype=np.float64)
    fps = np.cumsum(~tp & ~ignored, axis=1, dtype=np.float64)
    rc = tps / n_gt
    pr = tps / (fps + tps + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # non-increasing from the right
    q = np.zeros((tp.shape[0], len(COCO_RECALL_POINTS)))
    for t in range(tp.shape[0]):
        idx = np.searchsorted(rc[t], COCO_RECALL_POINTS, side="left")
        ok = idx < n_det
        q[t, ok] = pr[t, idx[ok]]
    return q, rc[:, -1]


def _all_point_ap(tp: np.ndarray, n_pos: int) -> float:
    """Area under the precision-recall curve, precision made non-increasing (VOC2010+)."""
    tps = np.cumsum(tp, dtype=np.float64)
    fps = np.cumsum(~tp, dtype=np.float64)
    rec = np.r_[0.0, tps / n_pos, 1.0]
    prec = np.r_[0.0, tps / np.maximum(tps + fps, np.finfo(np.float64).eps), 0.0]
    prec = np.maximum.accumulate(prec[::-1])[::-1]
    step = np.flatnonzero(rec[1:] != rec[:-1])
    return float(np.sum((rec[step + 1] - rec[step]) * prec[step + 1]))


def _mean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def detection_map(preds, targets) -> dict:
    """COCO mAP@[.5:.95] and VOC all-point mAP@0.5 of detections against ground truth.

    ``preds`` and ``targets`` are lists with one dict per image in torchvision's format (boxes
    in absolute xyxy; see the module docstring). Returns plain floats::

        {"map": COCO mAP@[.5:.95], "map_50": COCO AP@.5 (101 points), "map_75": ...,
         "mar_100": COCO mean recall, "map_50_voc": VOC mAP@0.5 (all points),
         "classes": [labels with ground truth], "ap_per_class": [COCO AP per class],
         "ap_50_voc_per_class": [VOC AP per class], "num_images": N}
    """
    if not isinstance(preds, (list, tuple)) or not isinstance(targets, (list, tuple)):
        raise ConfigError(
            "preds and targets must be lists with one dict per image",
            "wrap a single image's dict in a list: detection_map([pred], [target])",
        )
    if len(preds) != len(targets):
        raise ShapeError(
            f"{len(preds)} predictions for {len(targets)} targets",
            "pass one prediction dict per image, in the same order as the targets",
        )
    images = [_image(p, t, i) for i, (p, t) in enumerate(zip(preds, targets))]
    n = len(images)
    d_max = max((len(im[0]) for im in images), default=0)
    g_max = max((len(im[3]) for im in images), default=0)

    # one padded array for all images: [N, D] detections (score order) x [G] ground truth
    iou = np.full((n, d_max, g_max), -1.0)
    scores = np.zeros((n, d_max))
    labels = np.full((n, d_max), -1, dtype=np.int64)
    exists = np.zeros((n, d_max), dtype=bool)
    coco_valid = np.zeros((n, d_max), dtype=bool)
    gt_labels = np.full((n, g_max), -1, dtype=np.int64)
    gt_difficult = np.zeros((n, g_max), dtype=bool)
    for i, (ps, pl, iou_i, gl, gd) in enumerate(images):
        p, g = len(ps), len(gl)
        iou[i, :p, :g] = iou_i
        scores[i, :p], labels[i, :p], exists[i, :p] = ps, pl, True
        coco_valid[i, :p] = _rank_within_label(pl) < COCO_MAX_DETS
        gt_labels[i, :g], gt_difficult[i, :g] = gl, gd

    # the classes that can be scored: those with ground truth that counts (not difficult)
    classes = np.unique(gt_labels[(gt_labels >= 0) & ~gt_difficult])
    tp_coco, ig_coco = _coco_match(iou, coco_valid, gt_difficult)  # [T, N, D] each

    # VOC: each detection against the box of its class it overlaps most (first on a tie)
    if g_max:
        best = iou.argmax(-1)  # [N, D]
        best_iou = np.take_along_axis(iou, best[..., None], -1)[..., 0]
        best_difficult = np.take_along_axis(gt_difficult, best, -1)
    else:
        best = np.zeros((n, d_max), dtype=np.int64)
        best_iou = np.full((n, d_max), -1.0)
        best_difficult = np.zeros((n, d_max), dtype=bool)
    overlaps = exists & (best_iou >= VOC_IOU)
    voc_ignored = overlaps & best_difficult
    claim = (overlaps & ~best_difficult).ravel()
    key = (np.arange(n)[:, None] * max(g_max, 1) + best).ravel()
    tp_voc = np.zeros(n * d_max, dtype=bool)
    if claim.any():  # the first (highest-scoring) claim on each box wins; later ones are duplicates
        claimed = np.flatnonzero(claim)
        _, first = np.unique(key[claimed], return_index=True)
        tp_voc[claimed[first]] = True

    flat_labels, flat_scores = labels.ravel(), scores.ravel()
    flat_coco = coco_valid.ravel()
    flat_voc = (exists & ~voc_ignored).ravel()
    tp_coco = tp_coco.reshape(len(COCO_IOU_THRESHOLDS), -1)
    ig_coco = ig_coco.reshape(len(COCO_IOU_THRESHOLDS), -1)
    precision, recall, ap_voc = [], [], []
    for k in classes:
        n_pos = int(((gt_labels == k) & ~gt_difficult).sum())
        sel = np.flatnonzero(flat_coco & (flat_labels == k))
        q, r = _coco_class(tp_coco[:, sel], ig_coco[:, sel], flat_scores[sel], n_pos)
        precision.append(q)
        recall.append(r)
        sel = np.flatnonzero(flat_voc & (flat_labels == k))
        sel = sel[np.argsort(-flat_scores[sel], kind="stable")]
        ap_voc.append(_all_point_ap(tp_voc[sel], n_pos))

    if classes.size:
        precision = np.stack(precision, axis=1)  # [T, K, R]
        recall = np.stack(recall, axis=1)  # [T, K]
        t50 = int(np.flatnonzero(np.isclose(COCO_IOU_THRESHOLDS, 0.5))[0])
        t75 = int(np.flatnonzero(np.isclose(COCO_IOU_THRESHOLDS, 0.75))[0])
        result = {
            "map": float(precision.mean()),
            "map_50": float(precision[t50].mean()),
            "map_75": float(precision[t75].mean()),
            "mar_100": float(recall.mean()),
        }
        ap_per_class = precision.mean(axis=(0, 2)).tolist()
    else:
        nan = float("nan")
        result = {"map": nan, "map_50": nan, "map_75": nan, "mar_100": nan}
        ap_per_class = []
    result["map_50_voc"] = _mean(ap_voc)
    result["classes"] = classes.tolist()
    result["ap_per_class"] = ap_per_class
    result["ap_50_voc_per_class"] = ap_voc
    result["num_images"] = n
    return result
