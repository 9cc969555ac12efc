"""detection_map equals pycocotools and torchmetrics (COCO) and the VOC devkit's procedure."""

import contextlib
import io
import math

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchmetrics.detection import MeanAveragePrecision

from cnnlab.errors import ConfigError, ShapeError
from cnnlab.metrics import detection_map
from cnnlab.metrics.detection import COCO_IOU_THRESHOLDS, COCO_RECALL_POINTS

NUM_CLASSES = 5  # class 4 is predicted but never in the ground truth


def _random_set(seed, n_images=14, difficult=False):
    """Random ground truth and noisy predictions, with the awkward cases on purpose."""
    g = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for i in range(n_images):
        n_gt = int(torch.randint(1, 6, (1,), generator=g))
        if i in (0, 5):
            n_gt = 0  # images without objects (image 0 also without predictions)
        xy = torch.rand(n_gt, 2, generator=g) * 80
        wh = torch.rand(n_gt, 2, generator=g) * 30 + 4
        gt_boxes = torch.cat([xy, xy + wh], 1)
        gt_labels = torch.randint(0, NUM_CLASSES - 1, (n_gt,), generator=g)
        # predictions: jittered copies of the ground truth (some duplicated, some relabelled)
        # plus random boxes, with random scores
        copies = gt_boxes.repeat(2, 1) + torch.randn(2 * n_gt, 4, generator=g) * 3
        copy_labels = gt_labels.repeat(2)
        relabel = torch.rand(2 * n_gt, generator=g) < 0.15
        copy_labels[relabel] = torch.randint(0, NUM_CLASSES, (int(relabel.sum()),), generator=g)
        n_rand = int(torch.randint(0, 5, (1,), generator=g))
        rxy = torch.rand(n_rand, 2, generator=g) * 80
        rand_boxes = torch.cat([rxy, rxy + torch.rand(n_rand, 2, generator=g) * 30 + 2], 1)
        boxes = torch.cat([copies, rand_boxes])
        boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)], 1)
        labels = torch.cat([copy_labels, torch.randint(0, NUM_CLASSES, (n_rand,), generator=g)])
        if i in (0, 3):  # no predictions (image 3 has objects, all missed)
            boxes, labels = boxes[:0], labels[:0]
        scores = torch.rand(len(boxes), generator=g)
        preds.append({"boxes": boxes, "scores": scores, "labels": labels})
        target = {"boxes": gt_boxes, "labels": gt_labels}
        if difficult:
            target["difficult"] = torch.rand(n_gt, generator=g) < 0.25
        targets.append(target)
    return preds, targets


class _IgnoringCOCOeval(COCOeval):
    """pycocotools with VOC's difficult objects as its 'ignore' flag (iscrowd stays 0)."""

    def _prepare(self):
        super()._prepare()
        for gts in self._gts.values():
            for g in gts:
                g["ignore"] = int(g.get("difficult", 0))


def _pycocotools(preds, targets):
    images, anns, dets = [], [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        images.append({"id": i})
        flags = t.get("difficult", torch.zeros(len(t["labels"]), dtype=torch.bool)).tolist()
        for box, label, diff in zip(t["boxes"].tolist(), t["labels"].tolist(), flags):
            w, h = box[2] - box[0], box[3] - box[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": label,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "difficult": bool(diff),
                }
            )
        for box, score, label in zip(
            p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist()
        ):
            dets.append(
                {
                    "image_id": i,
                    "category_id": label,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "score": score,
                }
            )
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": c} for c in range(NUM_CLASSES)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = _IgnoringCOCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _voc_devkit(preds, targets, classes):
    """The VOC2010+ devkit's procedure, one class and one detection at a time (the reference)."""
    aps = []
    for c in classes:
        gts = {}
        for i, t in enumerate(targets):
            diff = t.get("difficult", torch.zeros(len(t["labels"]), dtype=torch.bool))
            gts[i] = {
                "boxes": t["boxes"][t["labels"] == c],
                "difficult": diff[t["labels"] == c].tolist(),
                "claimed": [False] * int((t["labels"] == c).sum()),
            }
        dets = [
            (float(s), i, b)
            for i, p in enumerate(preds)
            for b, s, lab in zip(p["boxes"], p["scores"], p["labels"])
            if lab == c
        ]
        dets.sort(key=lambda d: -d[0])
        npos = sum(d is False for g in gts.values() for d in g["difficult"])
        tp, fp = [], []
        for _, i, box in dets:
            g = gts[i]
            best, jbest = -1.0, -1
            for j, gbox in enumerate(g["boxes"]):
                iw = min(box[2], gbox[2]) - max(box[0], gbox[0])
                ih = min(box[3], gbox[3]) - max(box[1], gbox[1])
                if iw > 0 and ih > 0:
                    inter = float(iw * ih)
                    union = (
                        float((box[2] - box[0]) * (box[3] - box[1]))
                        + float((gbox[2] - gbox[0]) * (gbox[3] - gbox[1]))
                        - inter
                    )
                    if inter / union > best:
                        best, jbest = inter / union, j
            if best >= 0.5 and g["difficult"][jbest]:
                continue  # a difficult object: neither right nor wrong
            if best >= 0.5 and not g["claimed"][jbest]:
                g["claimed"][jbest] = True
                tp.append(1)
                fp.append(0)
            else:
                tp.append(0)
                fp.append(1)
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        rec = [0.0] + list(tp / npos) + [1.0]
        prec = [0.0] + list(tp / np.maximum(tp + fp, 1e-12)) + [0.0]
        for k in range(len(prec) - 2, -1, -1):
            prec[k] = max(prec[k], prec[k + 1])
        aps.append(
            sum((rec[k] - rec[k - 1]) * prec[k] for k in range(1, len(rec)) if rec[k] != rec[k - 1])
        )
    return aps


def _check_against_pycocotools(preds, targets):
    ours = detection_map(preds, targets)
    ev = _pycocotools(preds, targets)
    assert ours["map"] == pytest.approx(ev.stats[0], abs=1e-12)
    assert ours["map_50"] == pytest.approx(ev.stats[1], abs=1e-12)
    assert ours["map_75"] == pytest.approx(ev.stats[2], abs=1e-12)
    assert ours["mar_100"] == pytest.approx(ev.stats[8], abs=1e-12)
    assert 0 < ours["map"] < ours["map_50"] < 1  # the random set is neither trivial nor hopeless
    return ours


@pytest.mark.parametrize("seed", [3, 4])
def test_difficult_objects_are_pycocotools_ignored_ground_truth(seed):
    preds, targets = _random_set(seed, difficult=True)
    assert sum(int(t["difficult"].sum()) for t in targets) > 3
    ours = _check_against_pycocotools(preds, targets)
    ref = _voc_devkit(preds, targets, ours["classes"])
    assert ours["ap_50_voc_per_class"] == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_numbers_equal_pycocotools_and_torchmetrics(seed):
    preds, targets = _random_set(seed)
    ours = _check_against_pycocotools(preds, targets)

    # with pycocotools' thresholds: torchmetrics' defaults are float32 linspaces, which move a
    # recall point that lands exactly on k/100 (pycocotools itself agrees with us to 1e-12)
    tm = MeanAveragePrecision(
        box_format="xyxy",
        iou_type="bbox",
        class_metrics=True,
        iou_thresholds=COCO_IOU_THRESHOLDS.tolist(),
        rec_thresholds=COCO_RECALL_POINTS.tolist(),
    )
    tm.update(preds, targets)
    ref = tm.compute()
    for key in ("map", "map_50", "map_75", "mar_100"):
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-6), key
    # torchmetrics lists the class predicted without ground truth too, with AP -1
    per_class = dict(zip(ref["classes"].tolist(), ref["map_per_class"].tolist()))
    assert per_class[NUM_CLASSES - 1] == -1 and NUM_CLASSES - 1 not in ours["classes"]
    for c, ap in zip(ours["classes"], ours["ap_per_class"]):
        assert ap == pytest.approx(per_class[c], abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_voc_all_point_equals_the_devkit_procedure(seed):
    preds, targets = _random_set(seed)
    ours = detection_map(preds, targets)
    ref = _voc_devkit(preds, targets, ours["classes"])
    assert ours["ap_50_voc_per_class"] == pytest.approx(ref, abs=1e-12)
    assert ours["map_50_voc"] == pytest.approx(np.mean(ref), abs=1e-12)


def _one_image(boxes, scores, labels, gt_boxes, gt_labels, **extra):
    pred = {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores),
        "labels": torch.tensor(labels, dtype=torch.long),
    }
    target = {
        "boxes": torch.tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(gt_labels, dtype=torch.long),
        **extra,
    }
    return [pred], [target]


def test_hand_computed_all_point_and_101_point():
    # two objects; detections by score: hit, duplicate of the same object, hit
    a, b = [0, 0, 10, 10], [20, 20, 30, 30]
    preds, targets = _one_image([a, a, b], [0.9, 0.8, 0.7], [0, 0, 0], [a, b], [0, 0])
    r = detection_map(preds, targets)
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: all-point area = 1/2*1 + 1/2*2/3
    assert r["map_50_voc"] == pytest.approx(1 / 2 + 1 / 3)
    # 101 points: recall 0..0.50 read precision 1 (51 points), 0.51..1 read 2/3 (50 points)
    assert r["map_50"] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert r["map"] == pytest.approx(r["map_50"])  # exact boxes: the same at every threshold


def test_voc_takes_the_most_overlapping_box_even_if_claimed_coco_the_best_free_one():
    # the second detection overlaps object A most (IoU 0.82) and object B enough (IoU 0.67):
    # VOC calls it a duplicate of A; COCO gives it B
    a, b = [0, 0, 10, 10], [3, 0, 13, 10]
    d = [1, 0, 11, 10]
    preds, targets = _one_image([a, d], [0.9, 0.8], [0, 0], [a, b], [0, 0])
    r = detection_map(preds, targets)
    assert r["map_50_voc"] == pytest.approx(0.5)
    assert r["map_50"] == pytest.approx(1.0)


def test_difficult_objects_are_ignored_by_voc():
    a, b = [0, 0, 10, 10], [20, 20, 30, 30]
    preds, targets = _one_image(
        [b, a], [0.9, 0.8], [0, 0], [a, b], [0, 0], difficult=torch.tensor([False, True])
    )
    # the detection of the difficult object is neither right nor wrong; the other is a hit
    assert detection_map(preds, targets)["map_50_voc"] == pytest.approx(1.0)


def test_empty_inputs_and_classes_without_ground_truth():
    # nothing anywhere: no class can be scored
    r = detection_map(
        [
            {
                "boxes": torch.zeros(0, 4),
                "scores": torch.zeros(0),
                "labels": torch.zeros(0, dtype=torch.long),
            }
        ],
        [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}],
    )
    assert math.isnan(r["map"]) and math.isnan(r["map_50_voc"]) and r["classes"] == []
    assert math.isnan(detection_map([], [])["map"])
    # ground truth and no predictions: AP 0
    preds, targets = _one_image([], [], [], [[0, 0, 5, 5]], [2])
    r = detection_map(preds, targets)
    assert r["map"] == 0 and r["map_50_voc"] == 0 and r["classes"] == [2]


def test_at_most_100_detections_per_image_and_class_for_coco():
    # 100 misses outscore the one hit: COCO never sees the hit, VOC does
    gt = [0, 0, 10, 10]
    boxes = [[50, 50, 60, 60]] * 100 + [gt]
    scores = [0.9] * 100 + [0.1]
    preds, targets = _one_image(boxes, scores, [1] * 101, [gt], [1])
    r = detection_map(preds, targets)
    assert r["map"] == 0 and r["mar_100"] == 0
    assert r["map_50_voc"] == pytest.approx(1 / 101)


def test_bad_input_names_the_image_and_the_field():
    preds, targets = _random_set(0, n_images=3)
    with pytest.raises(ShapeError, match="3 predictions for 2 targets"):
        detection_map(preds, targets[:2])
    bad = [dict(t) for t in targets]
    bad[1] = {"boxes": torch.tensor([[5.0, 5, 1, 9]]), "labels": torch.tensor([0])}
    with pytest.raises(ShapeError, match=r"targets\[1\] box 0 .* x2 < x1"):
        detection_map(preds, bad)
    bad = [dict(p) for p in preds]
    del bad[2]["scores"]
    with pytest.raises(ConfigError, match=r"preds\[2\] has no 'scores'"):
        detection_map(bad, targets)
    bad = [dict(p) for p in preds]
    bad[1]["boxes"] = bad[1]["boxes"][:, :3]
    with pytest.raises(ShapeError, match=r"preds\[1\]\['boxes'\] has shape .* expected \[N, 4\]"):
        detection_map(bad, targets)
    bad = [dict(p) for p in preds]
    bad[2]["boxes"] = bad[2]["boxes"].clone()
    bad[2]["boxes"][0, 0] = float("nan")
    with pytest.raises(ShapeError, match=r"preds\[2\] holds NaN"):
        detection_map(bad, targets)
    bad = [dict(t) for t in targets]
    bad[0] = {"boxes": torch.tensor([[0.0, 0, 1, 1]]), "labels": torch.tensor([-1])}
    with pytest.raises(ShapeError, match=r"targets\[0\] has label -1"):
        detection_map(preds, bad)
    with pytest.raises(ConfigError, match="lists with one dict per image"):
        detection_map(preds[0], targets[0])


def test_crowded_images_equal_pycocotools():
    # 150 detections per image around few objects of 3 classes: the 100-per-class cut, many
    # duplicates and IoUs spread over all thresholds
    g = torch.Generator().manual_seed(7)
    preds, targets = [], []
    for _ in range(12):
        n_gt = int(torch.randint(1, 5, (1,), generator=g))
        xy = torch.rand(n_gt, 2, generator=g) * 100
        gt = torch.cat([xy, xy + torch.rand(n_gt, 2, generator=g) * 40 + 8], 1)
        labels = torch.randint(0, 3, (n_gt,), generator=g)
        which = torch.randint(0, n_gt, (150,), generator=g)
        boxes = gt[which] + torch.randn(150, 4, generator=g) * 4
        boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)], 1)
        preds.append({"boxes": boxes, "scores": torch.rand(150, generator=g),
                      "labels": labels[which]})  # fmt: skip
        targets.append({"boxes": gt, "labels": labels})
    _check_against_pycocotools(preds, targets)


def test_an_iou_tie_goes_to_the_later_box_as_in_pycocotools():
    # the first detection overlaps A and B equally (95/105); pycocotools gives it the later box
    # B, which leaves A free for the second detection at every threshold
    a, b = [0.0, 0, 10, 10], [1.0, 0, 11, 10]
    preds, targets = _one_image([[0.5, 0, 10.5, 10], a], [0.9, 0.8], [0, 0], [a, b], [0, 0])
    ours = detection_map(preds, targets)
    ev = _pycocotools(preds, targets)
    assert ours["map"] == pytest.approx(ev.stats[0], abs=1e-12)
    assert ours["mar_100"] == pytest.approx(ev.stats[8], abs=1e-12)
    # had the tie gone to A, the second detection would miss above IoU 9/11 and recall drop
    assert ours["mar_100"] == pytest.approx((9 * 1.0 + 1 * 0.5) / 10)
