"""Per-epoch scoring cost: cnnlab.metrics against torchmetrics (and pycocotools) on one set.

Detection: N images, each with a few ground-truth boxes and up to --dets scored detections
(what a torchvision detector returns after NMS), scored with ``detection_map`` (COCO
mAP@[.5:.95] and VOC mAP@0.5 in one call) and with torchmetrics' ``MeanAveragePrecision``
(pycocotools backend, COCO numbers only). Segmentation: N masks of --size x --size pixels,
``segmentation_scores`` against torchmetrics' ``MulticlassJaccardIndex`` + ``MulticlassAccuracy``.
Both sides get the same tensors; the script checks the numbers agree, then prints the median
of --repeat timings and the ratio.

    .venv/bin/python benchmarks/dense_metrics.py [--images 500] [--dets 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time


def timed(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def detection_set(n_images, n_dets, n_classes, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for _ in range(n_images):
        n_gt = int(torch.randint(1, 8, (1,), generator=g))
        xy = torch.rand(n_gt, 2, generator=g) * 200
        gt = torch.cat([xy, xy + torch.rand(n_gt, 2, generator=g) * 60 + 8], 1)
        labels = torch.randint(0, n_classes, (n_gt,), generator=g)
        which = torch.randint(0, n_gt, (n_dets,), generator=g)
        boxes = gt[which] + torch.randn(n_dets, 4, generator=g) * 6
        boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)], 1)
        wrong = torch.rand(n_dets, generator=g) < 0.2  # a fifth of them get a random class
        det_labels = torch.where(
            wrong, torch.randint(0, n_classes, (n_dets,), generator=g), labels[which]
        )
        scores = torch.rand(n_dets, generator=g)
        preds.append({"boxes": boxes, "scores": scores, "labels": det_labels})
        targets.append({"boxes": gt, "labels": labels})
    return preds, targets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--dets", type=int, default=100, help="detections per image")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--masks", type=int, default=500)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    import torch
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
    from torchmetrics.detection import MeanAveragePrecision

    from cnnlab.metrics import detection_map, segmentation_scores
    from cnnlab.metrics.detection import COCO_IOU_THRESHOLDS, COCO_RECALL_POINTS

    torch.set_num_threads(1)
    preds, targets = detection_set(args.images, args.dets, args.classes)

    def ours_det():
        return detection_map(preds, targets)

    def torchmetrics_det():
        # pycocotools' own thresholds: torchmetrics' defaults are float32 linspaces, which move
        # a recall point that lands exactly on k/100 (e.g. 3/10 > float32(0.3) is False)
        m = MeanAveragePrecision(
            box_format="xyxy",
            iou_type="bbox",
            iou_thresholds=COCO_IOU_THRESHOLDS.tolist(),
            rec_thresholds=COCO_RECALL_POINTS.tolist(),
        )
        m.update(preds, targets)
        return m.compute()

    t_ours, r_ours = timed(ours_det, args.repeat)
    t_ref, r_ref = timed(torchmetrics_det, args.repeat)
    assert abs(r_ours["map"] - float(r_ref["map"])) < 1e-6, (r_ours["map"], r_ref["map"])
    voc = r_ours["map_50_voc"]
    print(
        f"detection: {args.images} images x {args.dets} detections, {args.classes} classes "
        f"(COCO mAP {r_ours['map']:.6f}, torchmetrics {float(r_ref['map']):.6f}; "
        f"VOC mAP@0.5 {voc:.4f})"
    )
    print(f"  cnnlab detection_map (COCO + VOC)      {t_ours:8.3f} s")
    print(f"  torchmetrics MeanAveragePrecision      {t_ref:8.3f} s   ({t_ref / t_ours:.1f}x)")

    g = torch.Generator().manual_seed(1)
    k = args.classes
    true = torch.randint(0, k, (args.masks, args.size, args.size), generator=g)
    pred = torch.where(
        torch.rand(true.shape, generator=g) < 0.8,
        true,
        torch.randint(0, k, true.shape, generator=g),
    )

    def ours_seg():
        return segmentation_scores(pred, true, k)

    def torchmetrics_seg():
        miou = MulticlassJaccardIndex(num_classes=k, average="macro")(pred, true)
        acc = MulticlassAccuracy(num_classes=k, average="micro")(pred, true)
        return float(miou), float(acc)

    t_ours, s = timed(ours_seg, args.repeat)
    t_ref, (miou, acc) = timed(torchmetrics_seg, args.repeat)
    assert abs(s.miou - miou) < 1e-6 and abs(s.pixel_accuracy - acc) < 1e-6
    print(
        f"segmentation: {args.masks} masks {args.size}x{args.size}, {k} classes "
        f"(mIoU {s.miou:.4f} in both)"
    )
    print(f"  cnnlab segmentation_scores             {t_ours:8.3f} s")
    print(f"  torchmetrics JaccardIndex + Accuracy   {t_ref:8.3f} s   ({t_ref / t_ours:.1f}x)")


if __name__ == "__main__":
    main()
