"""Detection and segmentation sets that cnnlab draws itself: digits scattered on a canvas.

``make_digit_scenes(n, seed=...)`` places several handwritten digits at random scales and places
on a blank canvas and returns a :class:`DenseSet`: the images, a per-pixel class mask
(0 = background, k + 1 = digit k) and, per image, the digits' tight boxes (xyxy, pixel edges)
and labels (0-9). Everything is a pure function of the arguments: the same seed gives the same
bytes on every machine (numpy's frozen ``RandomState`` stream, torch's bilinear resize).

Controls: ``count`` (digits per image, a range), ``scale`` (digit height in pixels, a range),
``max_overlap`` (the largest IoU allowed between two digits' boxes; 0 = none may touch),
``clutter`` (unlabelled digit fragments per image, drawn fainter: background in the mask, no
box) and ``noise`` (Gaussian pixel noise, std as a fraction of 255).

Glyphs come from the built-in scikit-learn digits (no file, no network; the train scenes use
the glyphs of ``digits``' train split, the test scenes those of its test split, so no glyph
is shared) or, with ``source="mnist"``, from MNIST in ``data_dir`` (required then).

Presets (``load_dataset("digits-det")`` / ``cnnlab train ... --data digits-det``), with fixed
train and test splits:

- ``digits-det``: 1x96x96, 1-4 digits of 16-36 pixels whose boxes never intersect (so two
  centres seldom share a YOLO cell), 2,400 train / 400 test images;
- ``digits-seg``: 1x64x64, 1-3 digits of 14-30 pixels, boxes overlapping up to IoU 0.1,
  2,400 train / 400 test images.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError, DataError

__all__ = ["DenseSet", "PRESETS", "load_preset", "make_digit_scenes", "objects_to_targets"]

INK = 96  # a pixel at or above this value (of 255) belongs to its digit's mask and box

PRESETS: dict[str, dict] = {
    "digits-det": dict(
        task="detection",
        canvas=96,
        count=(1, 4),
        scale=(16, 36),
        max_overlap=0.0,
        sizes={"train": 2400, "test": 400},
    ),
    "digits-seg": dict(
        task="segmentation",
        canvas=64,
        count=(1, 3),
        scale=(14, 30),
        max_overlap=0.1,
        sizes={"train": 2400, "test": 400},
    ),
}
_SPLIT_SEED = {"train": 0, "test": 1}


@dataclass
class DenseSet:
    """One split of a detection / segmentation set, in memory.

    ``images`` uint8 ``[N, C, H, W]``; ``masks`` uint8 ``[N, H, W]`` (0 = background, k + 1 =
    ``classes[k]``; None when there are none); ``objects`` float32 ``[N, K, 5]``: per object
    ``(label, x_min, y_min, x_max, y_max)`` in pixels, rows past an image's objects padded with
    label -1. ``labels`` is what the trainer batches as the target of each image: the masks for
    a segmentation set, the objects for a detection set (plain tensor indexing, like a
    classification set's class indices).
    """

    images: torch.Tensor
    masks: torch.Tensor | None
    objects: torch.Tensor
    classes: list[str]
    name: str
    split: str = "train"
    task: str = "detection"  # or "segmentation"
    source: str = field(default="", compare=False)
    labels: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.task not in ("detection", "segmentation"):
            raise ConfigError(f"unknown task {self.task!r}", "use detection or segmentation")
        if self.task == "segmentation" and self.masks is None:
            raise DataError(f"{self.name}: a segmentation set needs masks")
        if self.labels is None:
            self.labels = self.masks if self.task == "segmentation" else self.objects

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, index) -> DenseSet:
        m = self.masks[index] if self.masks is not None else None
        return replace(self, images=self.images[index], masks=m, objects=self.objects[index],
                       labels=None)  # fmt: skip

    def targets(self, index=None) -> list[dict]:
        """torchvision's target dicts (``boxes`` xyxy float, ``labels`` int64) of the images."""
        return objects_to_targets(self.objects if index is None else self.objects[index])

    def validate(self) -> DenseSet:
        """Raise DataError naming the first bad record: a mask id out of range, a box outside
        the image, of zero area or inverted, a label out of range."""
        n, _, h, w = self.images.shape
        k = self.num_classes
        if self.masks is not None:
            if tuple(self.masks.shape) != (n, h, w):
                raise DataError(
                    f"{self.name}: masks are {list(self.masks.shape)}, images "
                    f"{[n, h, w]} (N, H, W must match)"
                )
            bad = (self.masks.long() > k).flatten(1).any(1).nonzero()
            if len(bad):
                i = int(bad[0])
                raise DataError(
                    f"{self.name}: record {i}: mask holds class id "
                    f"{int(self.masks[i].max())}, but there are {k} classes (ids 0..{k})",
                    "fix the mask, or add the missing class names",
                )
        labels, b = self.objects[..., 0], self.objects[..., 1:]
        valid = labels >= 0
        if (labels >= k).any():
            i, j = (labels >= k).nonzero()[0].tolist()
            raise DataError(
                f"{self.name}: record {i}, object {j}: label {int(labels[i, j])} "
                f"is out of range for {k} classes"
            )
        outside = (b[..., 0] < 0) | (b[..., 1] < 0) | (b[..., 2] > w) | (b[..., 3] > h)
        empty = (b[..., 2] <= b[..., 0]) | (b[..., 3] <= b[..., 1])
        for what, bad in (("lies outside the image", outside), ("has zero area", empty)):
            hit = (bad & valid).nonzero()
            if len(hit):
                i, j = hit[0].tolist()
                raise DataError(
                    f"{self.name}: record {i}, object {j}: box {b[i, j].tolist()} {what} ({w}x{h})",
                    "boxes are [x_min, y_min, x_max, y_max] in pixels, inside the image",
                )
        return self

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (
            f"DenseSet({self.name!r}, split={self.split!r}, task={self.task!r}, {len(self)} "
            f"images {c}x{h}x{w}, {self.num_classes} classes)"
        )


def _glyphs(source: str, split: str, data_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """(float glyphs [G, h, w] in 0..255, labels [G]) of one split of the source."""
    from pathlib import Path

    from cnnlab.data.datasets import readers  # the readers, not the registry that calls us

    if source == "digits":
        ds = readers.load_digits(split, 8)  # the original 8x8 glyphs
    elif source == "mnist":
        if data_dir is None:
            raise ConfigError("source='mnist' needs data_dir", "the folder that holds MNIST/raw/")
        ds = readers.load_idx("mnist", split, Path(data_dir).expanduser(), False)
    else:
        raise ConfigError(f"unknown digit source {source!r}", "use 'digits' or 'mnist'")
    return ds.images[:, 0].float(), ds.labels


def _range(value, name: str, low: float) -> tuple:
    lo, hi = (value, value) if np.isscalar(value) else tuple(value)
    if not (low <= lo <= hi):
        raise ConfigError(f"{name} must be a range ({low} <= min <= max), got {value!r}")
    return lo, hi


def _iou(box, others: list) -> float:
    if not others:
        return 0.0
    o = np.asarray(others, dtype=np.float64)
    iw = np.clip(np.minimum(box[2], o[:, 2]) - np.maximum(box[0], o[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], o[:, 3]) - np.maximum(box[1], o[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    return float((inter / (area + (o[:, 2] - o[:, 0]) * (o[:, 3] - o[:, 1]) - inter)).max())


def _touches(box, others: list) -> bool:
    """True when ``box`` shares any pixel with one of ``others`` (for max_overlap == 0)."""
    return any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in others)


def make_digit_scenes(
    n: int,
    *,
    seed: int = 0,
    canvas: int | tuple[int, int] = 96,
    count=(1, 4),
    scale=(16, 36),
    max_overlap: float = 0.0,
    clutter: int = 0,
    noise: float = 0.0,
    source: str = "digits",
    split: str = "train",
    data_dir=None,
    task: str = "detection",
    name: str | None = None,
) -> DenseSet:
    """``n`` canvases of digits with boxes, labels and masks (see the module docstring)."""
    if n < 1:
        raise ConfigError(f"the number of images must be at least 1, got {n}")
    h_img, w_img = (canvas, canvas) if isinstance(canvas, int) else tuple(canvas)
    c_lo, c_hi = _range(count, "count", 0)
    s_lo, s_hi = _range(scale, "scale", 4)
    if s_hi > min(h_img, w_img):
        raise ConfigError(f"scale {s_hi} does not fit a {w_img}x{h_img} canvas")
    if not 0 <= max_overlap <= 1:
        raise ConfigError(f"max_overlap is an IoU in [0, 1], got {max_overlap}")
    if clutter < 0 or noise < 0:
        raise ConfigError("clutter and noise must be >= 0")
    glyphs, glabels = _glyphs(source, split, data_dir)
    rng = np.random.RandomState(seed)
    rng_clutter = np.random.RandomState([seed, 1])  # clutter never moves the objects
    images = torch.zeros(n, h_img, w_img)
    masks = torch.zeros(n, h_img, w_img, dtype=torch.uint8)
    all_boxes: list[list] = []
    all_labels: list[list] = []
    for i in range(n):
        boxes, labels = [], []
        for _ in range(rng.randint(c_lo, c_hi + 1)):
            g = int(rng.randint(len(glyphs)))
            size = int(rng.randint(s_lo, s_hi + 1))
            patch = _resize(glyphs[g], size)
            ink = patch >= INK
            if not ink.any():
                continue
            rows, cols = ink.any(1).nonzero()[:, 0], ink.any(0).nonzero()[:, 0]
            r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            for _try in range(50):  # rejection sampling of a place that overlaps little enough
                y = int(rng.randint(-r0, h_img - r1 + 1))
                x = int(rng.randint(-c0, w_img - c1 + 1))
                box = [x + c0, y + r0, x + c1, y + r1]
                if max_overlap == 0:
                    ok = not _touches(box, boxes)
                else:
                    ok = _iou(box, boxes) <= max_overlap
                if ok:
                    break
            else:
                continue  # no room left on this canvas
            _paste(images[i], masks[i], patch, ink, x, y, int(glabels[g]) + 1)
            boxes.append(box)
            labels.append(int(glabels[g]))
        for _ in range(clutter):  # a fragment (a quarter) of some glyph, fainter, unlabelled
            g = int(rng_clutter.randint(len(glyphs)))
            size = int(rng_clutter.randint(s_lo, s_hi + 1))
            patch = _resize(glyphs[g], size)
            half = size // 2
            qy, qx = int(rng_clutter.randint(2)) * half, int(rng_clutter.randint(2)) * half
            frag = patch[qy : qy + half, qx : qx + half] * 0.6
            y, x = (
                int(rng_clutter.randint(0, h_img - half + 1)),
                int(rng_clutter.randint(0, w_img - half + 1)),
            )
            region = images[i, y : y + half, x : x + half]
            region.copy_(torch.maximum(region, frag))
        all_boxes.append(boxes)
        all_labels.append(labels)
    if noise > 0:
        gen = torch.Generator().manual_seed(seed)
        images += torch.randn(images.shape, generator=gen) * (noise * 255)
    k = max(1, max(len(b) for b in all_boxes))
    objects = torch.zeros(n, k, 5)
    objects[..., 0] = -1
    for i, (b, l) in enumerate(zip(all_boxes, all_labels)):
        if b:
            objects[i, : len(b), 0] = torch.tensor(l, dtype=torch.float32)
            objects[i, : len(b), 1:] = torch.tensor(b, dtype=torch.float32)
    return DenseSet(
        images.round().clamp(0, 255).to(torch.uint8)[:, None].contiguous(),
        masks,
        objects,
        [str(d) for d in range(10)],
        name or f"digit-scenes-{seed}",
        split,
        task,
        f"{source} glyphs ({split} split), seed {seed}",
    )


def objects_to_targets(objects: torch.Tensor) -> list[dict]:
    """``[N, K, 5]`` padded (label, box) rows -> torchvision's per-image target dicts."""
    out = []
    for rows in objects:
        keep = rows[:, 0] >= 0
        out.append({"boxes": rows[keep, 1:], "labels": rows[keep, 0].long()})
    return out


def _resize(glyph: torch.Tensor, size: int) -> torch.Tensor:
    return (
        F.interpolate(glyph[None, None], size=(size, size), mode="bilinear", align_corners=False)[
            0, 0
        ]
        .clamp(0, 255)
        .round()
    )


def _paste(image, mask, patch, ink, x: int, y: int, mask_id: int) -> None:
    """Draw ``patch`` at (x, y), clipped to the canvas; ink pixels take ``mask_id``."""
    h, w = image.shape
    ph, pw = patch.shape
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + ph, h), min(x + pw, w)
    p = patch[y0 - y : y1 - y, x0 - x : x1 - x]
    region = image[y0:y1, x0:x1]
    region.copy_(torch.maximum(region, p))
    mask[y0:y1, x0:x1][ink[y0 - y : y1 - y, x0 - x : x1 - x]] = mask_id


def load_preset(
    name: str, split: str = "train", *, size: int | None = None, data_dir=None
) -> DenseSet:
    """One split of ``digits-det`` or ``digits-seg`` (``size`` overrides the image count)."""
    if name not in PRESETS:
        from cnnlab.errors import suggest

        raise ConfigError(f"unknown synthetic set {name!r}", suggest(name, PRESETS) or None)
    if split not in _SPLIT_SEED:
        raise ConfigError(f"unknown split {split!r}; choose 'train' or 'test'")
    p = dict(PRESETS[name])
    sizes = p.pop("sizes")
    return make_digit_scenes(
        size or sizes[split],
        seed=_SPLIT_SEED[split],
        split=split,
        data_dir=data_dir,
        name=name,
        **p,
    )
