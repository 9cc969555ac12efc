"""Pascal VOC readers: detection from Annotations/*.xml, segmentation from SegmentationClass/.

The layout of the VOC devkit (Everingham et al. 2010), which many tools export::

    ROOT/Annotations/<id>.xml            one <annotation> per image: <size>, <object>s
    ROOT/JPEGImages/<id>.jpg             the images
    ROOT/SegmentationClass/<id>.png      class-index masks (palette PNG; 255 = void border)
    ROOT/ImageSets/Main/<split>.txt      image ids of a detection split (train, val, ...)
    ROOT/ImageSets/Segmentation/<split>.txt

:func:`read_voc_detection` returns a :class:`~cnnlab.data.annotations.DetectionSet`: boxes in
torchvision's xyxy pixel frame (VOC's corners are 1-based and inclusive, so x1 = xmin - 1,
x2 = xmax), labels 1..K in the order of ``classes`` (0 is the background, as in the masks and in
torchvision's detectors) and VOC's ``difficult`` flags (``cnnlab.metrics.detection_map`` ignores
those objects as the VOC devkit does). :func:`read_voc_segmentation` lists image/mask pairs and
:func:`load_voc_mask` reads one mask, checking every class id.

Bad input is an error naming the file and the record: XML that does not parse, a missing or
non-numeric field, an unknown class name, a box with zero area or outside the image
(``bad_boxes="skip"`` drops such boxes and lists them), a mask id outside the classes. Images
without objects are kept with empty targets.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.annotations import (
    DetectionRecord,
    DetectionSet,
    check_boxes,
    check_policy,
    load_image,
    warn_skipped,
)
from cnnlab.errors import DataError, suggest

__all__ = [
    "VOC_CLASSES",
    "VOC_VOID",
    "VocSegmentationSet",
    "load_voc_mask",
    "parse_voc_xml",
    "read_voc_detection",
    "read_voc_segmentation",
]

# the 20 Pascal VOC classes in the devkit's order; label k is VOC_CLASSES[k - 1], 0 background
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
VOC_VOID = 255  # SegmentationClass marks object borders and unlabelled pixels 255


def _root(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"Pascal VOC folder {root} does not exist",
            "pass the folder that holds Annotations/, JPEGImages/ (and SegmentationClass/)",
        )
    return root


def _split_ids(root: Path, kind: str, split: str | None, fallback: Path, suffix: str) -> list:
    """Image ids of a split from ImageSets/<kind>/<split>.txt, or every file in ``fallback``."""
    if split is None:
        if not fallback.is_dir():
            raise DataError(
                f"{fallback} does not exist", f"a VOC folder has {fallback.name}/ inside it"
            )
        return sorted(p.stem for p in fallback.glob(f"*{suffix}"))
    path = root / "ImageSets" / kind / f"{split}.txt"
    if not path.is_file():
        folder = path.parent
        have = sorted(p.stem for p in folder.glob("*.txt") if "_" not in p.stem)
        hint = suggest(split, have) or (
            f"splits there: {', '.join(have)}" if have else f"{folder} has no split files"
        )
        raise DataError(
            f"no split {split!r}: {path} does not exist",
            f"{hint} (or pass split=None to read every file in {fallback.name}/)",
        )
    ids = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            ids.append(parts[0])
    return ids


def _text(node, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DataError(
            f"{where}: missing <{tag}>", f"every VOC annotation needs <{tag}> (see the devkit)"
        )
    return child.text.strip()


def _number(node, tag: str, where: str) -> float:
    text = _text(node, tag, where)
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{where}: <{tag}> is {text!r}, not a number", "write pixels") from None


def parse_voc_xml(path, classes=VOC_CLASSES, *, bad_boxes: str = "error", skipped=None):
    """One VOC annotation file as a :class:`DetectionRecord` (image path under ../JPEGImages)."""
    check_policy(bad_boxes)
    path = Path(path)
    try:
        tree = ET.parse(path)
    except ET.ParseError as e:
        line, col = e.position
        raise DataError(
            f"{path}: malformed XML at line {line}, column {col + 1} ({e})",
            "fix the file, or remove it and its id from the ImageSets split",
        ) from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}", "check the file and its permissions") from None
    ann = tree.getroot()
    if ann.tag != "annotation":
        raise DataError(
            f"{path}: the root element is <{ann.tag}>, not <annotation>",
            "is this a Pascal VOC annotation?",
        )
    size = ann.find("size")
    if size is None:
        raise DataError(f"{path}: missing <size>", "VOC needs <size><width>..<height>..</size>")
    width = int(_number(size, "width", f"{path} <size>"))
    height = int(_number(size, "height", f"{path} <size>"))
    if width < 1 or height < 1:
        raise DataError(f"{path}: image size {width}x{height}", "width and height must be >= 1")
    filename = ann.findtext("filename", default="").strip() or f"{path.stem}.jpg"
    index = {name: k + 1 for k, name in enumerate(classes)}
    boxes, labels, difficult, where = [], [], [], []
    for i, obj in enumerate(ann.findall("object")):
        here = f"{path} object {i}"
        name = _text(obj, "name", here)
        here = f"{path} object {i} ({name})"
        if name not in index:
            raise DataError(
                f"{here}: class {name!r} is not one of the {len(classes)} classes",
                suggest(name, classes)
                or f"pass classes=[...] with every name used; known: {', '.join(classes)}",
            )
        bb = obj.find("bndbox")
        if bb is None:
            raise DataError(f"{here}: missing <bndbox>", "each object needs xmin, ymin, xmax, ymax")
        xmin, ymin = _number(bb, "xmin", here), _number(bb, "ymin", here)
        xmax, ymax = _number(bb, "xmax", here), _number(bb, "ymax", here)
        boxes.append([xmin - 1, ymin - 1, xmax, ymax])  # 1-based inclusive -> xyxy pixels
        labels.append(index[name])
        flag = obj.findtext("difficult", default="0").strip()
        difficult.append(flag in ("1", "true", "True"))
        where.append(here)
    boxes_t = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    keep = check_boxes(
        boxes_t, width, height, where, bad_boxes, skipped if skipped is not None else []
    )
    return DetectionRecord(
        image_id=path.stem,
        image_path=path.parent.parent / "JPEGImages" / filename,
        width=width,
        height=height,
        boxes=boxes_t[keep],
        labels=torch.tensor(labels, dtype=torch.int64)[keep],
        difficult=torch.tensor(difficult, dtype=torch.bool)[keep],
        source=str(path),
    )


def read_voc_detection(
    root, split: str | None = "trainval", classes=VOC_CLASSES, *, bad_boxes: str = "error"
) -> DetectionSet:
    """The detection split of a VOC folder (``split=None``: every file in Annotations/).

    Checks that every image file exists; ``bad_boxes="skip"`` drops zero-area or out-of-image
    boxes, lists them in ``.skipped`` and warns once.
    """
    check_policy(bad_boxes)
    root = _root(root)
    ann_dir = root / "Annotations"
    ids = _split_ids(root, "Main", split, ann_dir, ".xml")
    records, skipped = [], []
    for image_id in ids:
        xml = ann_dir / f"{image_id}.xml"
        if not xml.is_file():
            raise DataError(
                f"{xml} does not exist (listed in split {split!r})",
                "add the annotation, or remove the id from the split file",
            )
        rec = parse_voc_xml(xml, classes, bad_boxes=bad_boxes, skipped=skipped)
        if not rec.image_path.is_file():
            raise DataError(
                f"{xml} names image {rec.image_path.name}, which is not in {rec.image_path.parent}",
                "copy the image there or fix <filename>",
            )
        records.append(rec)
    warn_skipped(skipped, str(root))
    return DetectionSet(records, list(classes), str(root), skipped)


# ----------------------------------------------------------------------------- segmentation


def load_voc_mask(path, num_classes: int = len(VOC_CLASSES) + 1) -> torch.Tensor:
    """A SegmentationClass PNG as uint8 [H, W] class ids (0 background, 255 void), checked.

    The file must be single-channel (VOC's palette PNGs are: the palette only colours the ids);
    an id that is neither below ``num_classes`` nor 255 is an error naming the pixel.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise DataError(
                    f"{path}: a {im.mode} image, not a class-index mask (mode P or L)",
                    "save masks as palette or greyscale PNGs whose pixel values are class ids, "
                    "not as RGB colours",
                )
            mask = np.array(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"cannot read mask {path}: {e}", "re-export it as a PNG") from None
    bad = (mask >= num_classes) & (mask != VOC_VOID)
    if bad.any():
        y, x = (int(v[0]) for v in np.nonzero(bad))
        ids = sorted(set(np.unique(mask[bad]).tolist()))
        raise DataError(
            f"{path}: class id {int(mask[y, x])} at pixel (x={x}, y={y}) is outside "
            f"0..{num_classes - 1} (ids found out of range: {ids[:10]})",
            f"the mask has more classes than the {num_classes} given (background included): "
            f"pass the right classes, or mark unlabelled pixels {VOC_VOID}",
        )
    return torch.from_numpy(mask)


@dataclass
class VocSegmentationSet:
    """Image/mask pairs of a VOC segmentation split; ``classes[0]`` is "background"."""

    ids: list[str]
    image_paths: list[Path]
    mask_paths: list[Path]
    classes: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def load(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(image uint8 [3, H, W], mask uint8 [H, W]) of pair ``i``, sizes checked."""
        image = load_image(self.image_paths[i])
        mask = load_voc_mask(self.mask_paths[i], self.num_classes)
        if tuple(image.shape[-2:]) != tuple(mask.shape):
            raise DataError(
                f"{self.mask_paths[i]} is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{self.image_paths[i].name} is {image.shape[2]}x{image.shape[1]}",
                "a mask must have its image's size",
            )
        return image, mask


def read_voc_segmentation(
    root, split: str | None = "train", classes=VOC_CLASSES
) -> VocSegmentationSet:
    """The segmentation split of a VOC folder (``split=None``: every PNG in SegmentationClass/).

    Checks that every image and mask file exists; masks are read (and their ids checked) by
    ``.load(i)`` or :func:`load_voc_mask`.
    """
    root = _root(root)
    mask_dir = root / "SegmentationClass"
    ids = _split_ids(root, "Segmentation", split, mask_dir, ".png")
    images, masks = [], []
    for image_id in ids:
        mask = mask_dir / f"{image_id}.png"
        image = root / "JPEGImages" / f"{image_id}.jpg"
        for path, what in ((mask, "mask"), (image, "image")):
            if not path.is_file():
                raise DataError(
                    f"{what} {path} of image id {image_id!r} does not exist",
                    "add the file, or remove the id from the split file",
                )
        images.append(image)
        masks.append(mask)
    return VocSegmentationSet(ids, images, masks, ["background", *classes], str(root))
