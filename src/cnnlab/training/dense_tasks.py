"""Segmentation and detection as tasks of the one trainer (see tasks.py for the interface).

The trainer batches a :class:`cnnlab.data.synthetic.DenseSet` like any image set: its ``labels``
tensor is the per-pixel masks ``[N, H, W]`` of a segmentation set or the padded objects
``[N, K, 5]`` (label, x_min, y_min, x_max, y_max) of a detection set, so the same
``BatchLoader``, schedule, checkpoints and run folder serve all three tasks. What differs lives
here:

- :class:`SegmentationTask`: per-pixel cross-entropy over background + the classes; mIoU and
  pixel accuracy (``cnnlab.metrics.segmentation_scores``) on the evaluation split.
- :class:`DetectionTask`: the model's own loss -- YOLO v1's sum-squared loss on the encoded
  grid, or torchvision Faster R-CNN's RPN and box-head losses (the model needs the targets in
  its forward, which is what :meth:`DetectionTask.forward` supplies) -- and VOC mAP@0.5 and COCO
  mAP@[.5:.95] (``cnnlab.metrics.detection_map``) of the decoded detections.

Scores are in percent, like classification's top-1 (so ``--target 85`` means mIoU or mAP 0.85).
Images stay at the size the data has (fully convolutional FCNs, Faster R-CNN's own resize and
YOLO's box fractions do not need a fixed size), so boxes and masks never need rescaling; a
segmentation model may take its images at another ``--input-size`` (the recipe feeds
``fcn8s_small`` the 64 x 64 canvases at 160 x 160, so its stride-8 scores are 3.2 pixels of
the canvas apart), and its class maps are resized back to the masks.
Augmentations that move pixels would move the targets too; these tasks refuse them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError

__all__ = ["DetectionTask", "SegmentationTask", "dense_task"]

BACKGROUND = "background"
DENSE_FAMILIES = {"FCN": "segmentation", "YOLO": "detection", "Faster R-CNN": "detection"}


def _batches(n: int, batch_size: int, dist):
    rank, world = (dist.rank, dist.world_size) if dist is not None else (0, 1)
    idx = torch.arange(rank, n, world)
    for start in range(0, len(idx), batch_size):
        yield idx[start : start + batch_size]


@dataclass
class DenseResult:
    """One evaluation: the loss (None where the model gives none in eval mode), the count, the
    scores, and a few example images with their predictions for the run report."""

    loss: float | None
    n: int
    scores: dict
    examples: dict = field(default_factory=dict, repr=False)
    details: dict = field(default_factory=dict, repr=False)

    def metrics(self) -> dict:
        return dict(self.scores)


# -------------------------------------------------------------------------------- segmentation


@dataclass
class SegmentationTask:
    """Per-pixel classification: ``classes`` are the dataset's; class 0 is the background."""

    data_classes: list[str]
    metrics: tuple[str, ...] = ("miou", "pixel_acc")
    name = "segmentation"

    @property
    def classes(self) -> list[str]:
        return [BACKGROUND, *self.data_classes]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def augment_batch(self, augment, x, y, index):
        return _no_augment(augment, x, y)

    def forward(self, net, x, target):
        return net(x)

    def loss(self, out, target):
        out = _fit(out, target)
        return F.cross_entropy(out.float(), target.long()), out

    def masks(self, out, size) -> torch.Tensor:
        """Model output -> predicted class ids ``[N, H, W]`` at the data's ``size`` (H, W): a
        model fed another ``--input-size`` has its class maps resized back first."""
        return _resize(out, size).argmax(1)

    def batch_score(self, out, target) -> torch.Tensor:
        """The batch's mIoU (percent) times its size (the trainer divides by the count)."""
        from cnnlab.metrics.segmentation import scores_from_confusion, segmentation_confusion

        conf = segmentation_confusion(out.detach().argmax(1), target.long(), self.num_classes)
        return torch.tensor(100 * scores_from_confusion(conf).miou * len(target))

    @torch.inference_mode()
    def evaluate(self, model, images, labels, pipeline, *, batch_size=256, device="cpu",
                 tta="none", amp=False, dist=None, examples: int = 8, **_):  # fmt: skip
        from cnnlab.metrics.segmentation import scores_from_confusion, segmentation_confusion

        _no_tta(tta)
        was = model.training
        model.eval()
        device = torch.device(device)
        conf = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        loss_sum, n, shown = 0.0, 0, {}
        for sel in _batches(len(images), batch_size, dist):
            x = images[sel.to(images.device)].to(device)
            y = labels[sel.to(labels.device)].to(device).long()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = _fit(model(pipeline(x)), y).float()
            loss_sum += float(F.cross_entropy(out, y, reduction="sum")) / y[0].numel()
            pred = out.argmax(1)
            conf += segmentation_confusion(pred.cpu(), y.cpu(), self.num_classes)
            n += len(y)
            if not shown:
                shown = {"images": x[:examples].cpu(), "pred": pred[:examples].cpu(),
                         "true": y[:examples].cpu()}  # fmt: skip
        model.train(was)
        conf = _all_reduce(conf, dist, device)
        s = scores_from_confusion(conf)
        return DenseResult(
            loss_sum / max(n, 1),
            n,
            {"miou": 100 * s.miou, "pixel_acc": 100 * s.pixel_accuracy},
            shown,
            {"per_class_iou": list(s.per_class_iou), "confusion": conf},
        )

    def save_results(self, result, folder, split: str = "test", png: bool = True) -> None:
        ious = result.details.get("per_class_iou", [])
        lines = ["class,iou"] + [f"{c},{v:.4f}" for c, v in zip(self.classes, ious)]
        folder.write_text(f"per_class_iou_{split}.csv", "\n".join(lines) + "\n")
        if png and result.examples:
            from cnnlab.dense.draw import grid_png, segmentation_overlay

            ex = result.examples
            pairs = zip(ex["images"], ex["pred"])
            panels = [segmentation_overlay(img, p, self.num_classes) for img, p in pairs]
            folder.write_bytes(f"examples_{split}.png", grid_png(panels))


def _fit(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Class maps at the masks' size (a model with another input size is resized back)."""
    return _resize(out, target.shape[-2:])


def _resize(out: torch.Tensor, size) -> torch.Tensor:
    if tuple(out.shape[-2:]) != tuple(size):
        out = F.interpolate(out, size=tuple(size), mode="bilinear", align_corners=False)
    return out


# ----------------------------------------------------------------------------------- detection


@dataclass
class DetectionTask:
    """Boxes and labels per image, for a YOLO v1 (``kind="yolo"``) or Faster R-CNN
    (``kind="rcnn"``; label 0 is its background, so the dataset's labels shift by one)."""

    data_classes: list[str]
    kind: str = "yolo"
    image_size: tuple[int, int] = (96, 96)
    score_threshold: float = 0.05
    metrics: tuple[str, ...] = ("map_50", "map")
    name = "detection"

    def __post_init__(self):
        if self.kind not in ("yolo", "rcnn"):
            raise ConfigError(f"unknown detector kind {self.kind!r}", "use yolo or rcnn")

    @property
    def classes(self) -> list[str]:
        return [BACKGROUND, *self.data_classes] if self.kind == "rcnn" else list(self.data_classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def targets(self, objects: torch.Tensor) -> list[dict]:
        from cnnlab.data.synthetic import objects_to_targets

        t = objects_to_targets(objects)
        if self.kind == "rcnn":
            t = [{"boxes": d["boxes"], "labels": d["labels"] + 1} for d in t]
        return t

    def augment_batch(self, augment, x, y, index):
        return _no_augment(augment, x, y)

    def forward(self, net, x, target):
        """The model's output; Faster R-CNN takes the targets in training and returns losses."""
        if self.kind == "rcnn" and net.training:
            return net(list(x.float()), self.targets(target))
        return net(x)

    def loss(self, out, target):
        if self.kind == "rcnn":
            if not isinstance(out, dict):
                raise ConfigError("a Faster R-CNN task needs the model in training mode here")
            return sum(out.values()), None
        from cnnlab.models.yolo import YoloLoss, encode_targets

        s, per = out.shape[1], out.shape[-1]
        c = len(self.data_classes)
        b = (per - c) // 5
        grid = encode_targets(self.targets(target), s, c, self.image_size).to(out.device)
        return YoloLoss(s, b, c)(out.float(), grid), out

    def batch_score(self, out, target) -> torch.Tensor:
        """Training mAP is not computed per batch (Faster R-CNN returns only losses while it
        trains): NaN, which the run files show as an empty train column."""
        return torch.tensor(float("nan"))

    def detections(self, out) -> list[dict]:
        """Model output -> per-image ``{"boxes", "scores", "labels"}`` with dataset labels."""
        if self.kind == "rcnn":
            return [{"boxes": d["boxes"].float(), "scores": d["scores"].float(),
                     "labels": d["labels"] - 1} for d in out]  # fmt: skip
        from cnnlab.models.yolo import decode

        c = len(self.data_classes)
        b = (out.shape[-1] - c) // 5
        return decode(out.float(), b, c, self.image_size, score_threshold=self.score_threshold)

    @torch.inference_mode()
    def evaluate(self, model, images, labels, pipeline, *, batch_size=256, device="cpu",
                 tta="none", amp=False, dist=None, examples: int = 8, **_):  # fmt: skip
        from cnnlab.metrics.detection import detection_map

        _no_tta(tta)
        if dist is not None and dist.enabled:
            raise ConfigError("detection evaluation runs on one process", "train without --nproc")
        was = model.training
        model.eval()
        device = torch.device(device)
        preds, truths, loss_sum, n, shown = [], [], 0.0, 0, {}
        for sel in _batches(len(images), batch_size, dist):
            x = images[sel.to(images.device)].to(device)
            y = labels[sel.to(labels.device)].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(pipeline(x))
            if self.kind == "yolo":
                loss_sum += float(self.loss(out, y)[0]) * len(y)
            dets = [{k: v.cpu() for k, v in d.items()} for d in self.detections(out)]
            preds += dets
            truths += [{k: v.cpu() for k, v in d.items()} for d in _dataset_targets(y)]
            n += len(y)
            if not shown:
                shown = {"images": x[:examples].cpu(), "pred": dets[:examples]}
        model.train(was)
        m = detection_map(preds, truths)
        loss = loss_sum / max(n, 1) if self.kind == "yolo" else None
        scores = {"map_50": 100 * m["map_50_voc"], "map": 100 * m["map"]}
        return DenseResult(loss, n, scores, shown, m)

    def save_results(self, result, folder, split: str = "test", png: bool = True) -> None:
        d = result.details
        names = [self.data_classes[int(c)] for c in d.get("classes", [])]
        lines = ["class,ap50_voc,ap_coco"] + [
            f"{c},{a:.4f},{b:.4f}"
            for c, a, b in zip(names, d.get("ap_50_voc_per_class", []), d.get("ap_per_class", []))
        ]
        folder.write_text(f"per_class_ap_{split}.csv", "\n".join(lines) + "\n")
        if png and result.examples:
            from cnnlab.dense.draw import draw_detections, grid_png

            ex = result.examples
            pairs = zip(ex["images"], ex["pred"])
            dets = [{k: v[d["scores"] >= 0.3] for k, v in d.items()} for _, d in pairs]
            panels = [
                draw_detections(img, d, self.data_classes) for img, d in zip(ex["images"], dets)
            ]
            folder.write_bytes(f"examples_{split}.png", grid_png(panels))


def _dataset_targets(objects: torch.Tensor) -> list[dict]:
    from cnnlab.data.synthetic import objects_to_targets

    return objects_to_targets(objects)


# --------------------------------------------------------------------------------- helpers


def _no_augment(augment, x, y):
    """Dense tasks train on the images as they are (``dense_task`` refuses --augment)."""
    if augment is not None:
        raise ConfigError("detection and segmentation train without --augment")
    return x, y


def _no_tta(tta: str) -> None:
    if tta not in (None, "none"):
        raise ConfigError(
            f"--tta {tta} is for classification",
            "detection and segmentation evaluate without test-time augmentation",
        )


def _all_reduce(t: torch.Tensor, dist, device) -> torch.Tensor:
    if dist is None or not dist.enabled:
        return t
    from cnnlab.training.distributed import all_reduce_sum

    t = t.to(device)
    all_reduce_sum(t, dist)
    return t.cpu()


def detector_kind(model_name: str) -> str:
    """``yolo`` or ``rcnn`` from the zoo family of ``model_name``."""
    from cnnlab.models import get_info

    family = get_info(model_name).family
    if family == "YOLO":
        return "yolo"
    if family == "Faster R-CNN":
        return "rcnn"
    raise ConfigError(
        f"model {model_name!r} ({family}) is not a detector",
        "train yolov1_small or fasterrcnn_small (or another YOLO / Faster R-CNN model) on "
        "a detection set",
    )


def dense_task(cfg, train_set):
    """The task for a DenseSet: segmentation, or detection with the model's kind."""
    if cfg.augment not in (None, "", "none"):
        raise ConfigError(
            f"--augment {cfg.augment} would move the pixels but not the boxes and masks",
            "train detection and segmentation without --augment",
        )
    if hasattr(train_set, "validate"):
        train_set.validate()  # a bad mask id or box is named here, not met as a NaN later
    if train_set.task == "segmentation":
        from cnnlab.models import get_info

        if get_info(cfg.model).family != "FCN":
            raise ConfigError(
                f"model {cfg.model!r} is not a segmentation model",
                "train fcn8s_small (or another FCN) on a segmentation set",
            )
        return SegmentationTask(list(train_set.classes))
    h, w = train_set.images.shape[-2:]
    return DetectionTask(list(train_set.classes), detector_kind(cfg.model), (int(h), int(w)))


# --------------------------------------------------------------------------------- inference


def _checkpoint_path(run):
    from pathlib import Path

    from cnnlab.errors import DataError

    p = Path(run)
    if p.is_dir():
        for name in ("best.pt", "last.pt"):
            if (p / name).is_file():
                return p / name
        raise DataError(
            f"run folder {p} holds no best.pt or last.pt",
            "give a folder written by `cnnlab train`, or a checkpoint file",
        )
    if not p.is_file():
        raise DataError(f"{p} does not exist", "give a run folder or a checkpoint file")
    return p


def check_kind(tr, path, want: str) -> str:
    """The task of a loaded checkpoint's model ("classification", "detection" or
    "segmentation"), or a ConfigError naming the command for it when it is not ``want``."""
    from cnnlab.models import get_info

    family = get_info(tr.state["model_name"]).family
    kind = {"FCN": "segmentation", "YOLO": "detection", "Faster R-CNN": "detection"}.get(
        family, "classification"
    )
    if kind != want:
        cmd = {"segmentation": "cnnlab segment", "detection": "cnnlab detect"}.get(
            kind, "cnnlab predict"
        )
        raise ConfigError(
            f"{path} holds a {tr.state['model_name']!r} model ({family}, {kind}), not a {want} "
            "model",
            f"use `{cmd}` for it",
        )
    return kind


def load_dense(run, want: str, device="cpu"):
    """(trained model bundle, task) of a detection or segmentation run; ``want`` is the task
    the command needs, so a mix-up gets a clear error instead of a wrong picture."""
    from cnnlab.training.inference import load_trained

    path = _checkpoint_path(run)
    tr = load_trained(path, device=device)
    kind = check_kind(tr, path, want)
    size = tuple(tr.state["data"]["size"])
    if kind == "segmentation":
        task = SegmentationTask([c for c in tr.classes if c != BACKGROUND])
    else:
        dk = detector_kind(tr.state["model_name"])
        names = [c for c in tr.classes if c != BACKGROUND] if dk == "rcnn" else list(tr.classes)
        task = DetectionTask(names, dk, (int(size[1]), int(size[2])))
    return tr, task, size


def read_scene(image, size) -> torch.Tensor:
    """A uint8 ``[1, C, H, W]`` batch from an image file, or from ``digits-det:N`` /
    ``digits-seg:N`` (test image N of a generated set, so examples need no file)."""
    from cnnlab.data.synthetic import PRESETS, load_preset
    from cnnlab.training.inference import read_images

    name, _, index = str(image).partition(":")
    if name in PRESETS and index:
        if not index.isdigit():
            raise ConfigError(f"{image}: the image number must be an integer, e.g. {name}:0")
        test = load_preset(name, "test")
        i = int(index)
        if i >= len(test):
            raise ConfigError(f"{image}: {name} has {len(test)} test images (0..{len(test) - 1})")
        x = test.images[i : i + 1]
        if tuple(x.shape[1:]) != tuple(size):
            raise ConfigError(
                f"{image} is {list(x.shape[1:])}, the run was trained on {list(size)}"
            )
        return x
    return read_images([image], size)


def _check_output(output):
    from pathlib import Path

    out = Path(output)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"output {out} is not a .png file", "name the output file *.png")
    # missing folders are made when the picture is written (save_png: atomic_write), after
    # everything else has worked, so a refused run leaves none; a file in the way is refused
    above = next(p for p in out.parents if p.exists())
    if not above.is_dir():
        raise ConfigError(f"{above} is a file, not a folder", "pick another -o")
    return out


@torch.inference_mode()
def detect_image(run, image, output, *, min_score: float = 0.3, device="cpu") -> dict:
    """Boxes of a trained detector on one image file, drawn into ``output`` (PNG)."""
    from cnnlab.dense.draw import draw_detections, save_png

    out_path = _check_output(output)
    tr, task, size = load_dense(run, "detection", device)
    x = read_scene(image, size).to(device)
    det = task.detections(tr.model(tr.pipeline(x)))[0]
    keep = det["scores"] >= min_score
    det = {k: v[keep].cpu() for k, v in det.items()}
    big = x[0].cpu().repeat_interleave(4, 1).repeat_interleave(4, 2)  # captions stay legible
    save_png(draw_detections(big, {**det, "boxes": det["boxes"] * 4}, task.data_classes), out_path)
    rows = [(task.data_classes[int(l)], float(s), b.tolist())
            for l, s, b in zip(det["labels"], det["scores"], det["boxes"])]  # fmt: skip
    return {"detections": rows, "output": str(out_path)}


@torch.inference_mode()
def segment_image(run, image, output, *, device="cpu") -> dict:
    """The mask a trained segmenter predicts for one image file, overlaid into ``output``."""
    from cnnlab.dense.draw import save_png, segmentation_overlay

    out_path = _check_output(output)
    tr, task, size = load_dense(run, "segmentation", device)
    x = read_scene(image, size).to(device)
    pred = task.masks(tr.model(tr.pipeline(x)), x.shape[-2:])[0].cpu()
    save_png(segmentation_overlay(x[0].cpu(), pred, task.num_classes), out_path, scale=4)
    counts = torch.bincount(pred.flatten(), minlength=task.num_classes)
    pixels = {task.classes[i]: int(c) for i, c in enumerate(counts) if c > 0}
    return {"pixels": pixels, "output": str(out_path)}
