"""COCO JSON reader: ``instances_*.json`` boxes as torchvision detection targets.

The format (Lin et al. 2014) is one JSON file per split::

    {"images":      [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}, ...],
     "annotations": [{"id": 7, "image_id": 1, "category_id": 18,
                      "bbox": [x, y, w, h], "iscrowd": 0}, ...],
     "categories":  [{"id": 18, "name": "dog"}, ...]}

:func:`read_coco_detection` returns a :class:`~cnnlab.data.annotations.DetectionSet` with one
record per image, in the file's order: boxes converted from xywh to xyxy pixels, labels made
contiguous 1..K in the order of the category ids (COCO's ids have gaps; ``category_ids[k - 1]``
is the COCO id of label k, to map predictions back), ``iscrowd`` regions kept as "difficult" so
:func:`cnnlab.metrics.detection_map` ignores them as pycocotools does. Images without
annotations are kept with empty targets.

Bad input is an error naming the file and the record: JSON that does not parse (with line and
column), a missing list or field, an annotation whose image or category id does not exist (a
class id out of range), a box with zero area or leaving its image (``bad_boxes="skip"`` drops
it and lists it), an image file that is not there. Segmentation polygons are not read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.data.annotations import (
    DetectionRecord,
    DetectionSet,
    check_boxes,
    check_policy,
    warn_skipped,
)
from cnnlab.errors import DataError

__all__ = ["CocoDetectionSet", "read_coco_detection"]


@dataclass
class CocoDetectionSet(DetectionSet):
    """A DetectionSet whose label k is COCO category ``category_ids[k - 1]``."""

    category_ids: list[int] | None = None


def _load(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"COCO annotation file {path} does not exist",
            "pass the instances_<split>.json file",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}", "is it a UTF-8 JSON file?") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path}: malformed JSON at line {e.lineno}, column {e.colno} ({e.msg})",
            "fix the file (a JSON linter shows the spot)",
        ) from None
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: the top level is a {type(data).__name__}, not an object",
            'COCO files hold {"images": [...], "annotations": [...], "categories": [...]}',
        )
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            found = "missing" if key not in data else f"a {type(data[key]).__name__}"
            raise DataError(f"{path}: {key!r} is {found}, not a list", f"add a {key!r} list")
    return data


def _get(record, key: str, where: str, kind=(int,)):
    if not isinstance(record, dict):
        raise DataError(f"{where} is a {type(record).__name__}, not an object", "see the format")
    if key not in record:
        raise DataError(f"{where} has no {key!r}", f"every such record needs {key!r}")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        kinds = " or ".join(k.__name__ for k in kind)
        raise DataError(f"{where}: {key!r} is {value!r}", f"{key!r} must be a {kinds}")
    return value


def read_coco_detection(
    annotation_file, image_dir=None, *, bad_boxes: str = "error"
) -> CocoDetectionSet:
    """Read a COCO instances file; ``image_dir`` (default: the JSON's folder) holds the images.

    Checks that every image file exists. ``bad_boxes="skip"`` drops zero-area or out-of-image
    boxes, lists them in ``.skipped`` and warns once.
    """
    check_policy(bad_boxes)
    path = Path(annotation_file)
    data = _load(path)
    image_dir = Path(image_dir) if image_dir is not None else path.parent

    cats = {}
    for i, cat in enumerate(data["categories"]):
        where = f"{path} categories[{i}]"
        cid = _get(cat, "id", where)
        if cid in cats:
            raise DataError(f"{where}: category id {cid} appears twice", "give each its own id")
        cats[cid] = str(_get(cat, "name", where, (str,)))
    category_ids = sorted(cats)
    label_of = {cid: k + 1 for k, cid in enumerate(category_ids)}

    images, order = {}, []
    for i, im in enumerate(data["images"]):
        where = f"{path} images[{i}]"
        iid = _get(im, "id", where, (int, str))
        if iid in images:
            raise DataError(f"{where}: image id {iid!r} appears twice", "give each its own id")
        name = _get(im, "file_name", where, (str,))
        w, h = _get(im, "width", where), _get(im, "height", where)
        if w < 1 or h < 1:
            raise DataError(f"{where} ({name}): size {w}x{h}", "width and height must be >= 1")
        images[iid] = {"name": name, "w": w, "h": h, "boxes": [], "labels": [], "crowd": []}
        images[iid]["where"] = []
        order.append(iid)

    for i, ann in enumerate(data["annotations"]):
        aid = ann.get("id", i) if isinstance(ann, dict) else i
        where = f"{path} annotations[{i}] (id {aid})"
        iid = _get(ann, "image_id", where, (int, str))
        if iid not in images:
            raise DataError(
                f"{where}: image_id {iid!r} is not in 'images'", "add the image or drop the record"
            )
        cid = _get(ann, "category_id", where)
        if cid not in label_of:
            raise DataError(
                f"{where}: category_id {cid} is out of range: not one of the "
                f"{len(category_ids)} categories (ids {category_ids[:10]}"
                f"{', ...' if len(category_ids) > 10 else ''})",
                "add the category to 'categories' or fix the annotation's category_id",
            )
        bbox = _get(ann, "bbox", where, (list,))
        if len(bbox) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox
        ):
            raise DataError(f"{where}: bbox {bbox!r}", "a bbox is [x, y, width, height] numbers")
        x, y, bw, bh = (float(v) for v in bbox)
        rec = images[iid]
        rec["boxes"].append([x, y, x + bw, y + bh])
        rec["labels"].append(label_of[cid])
        rec["crowd"].append(bool(ann.get("iscrowd", 0)))
        rec["where"].append(f"{where} in image {rec['name']} ({cats[cid]})")

    records, skipped = [], []
    for iid in order:
        rec = images[iid]
        boxes = torch.tensor(rec["boxes"], dtype=torch.float32).reshape(-1, 4)
        keep = check_boxes(boxes, rec["w"], rec["h"], rec["where"], bad_boxes, skipped)
        image_path = image_dir / rec["name"]
        if not image_path.is_file():
            raise DataError(
                f"{path} image id {iid!r}: {rec['name']} is not in {image_dir}",
                "pass image_dir= the folder that holds the images",
            )
        records.append(
            DetectionRecord(
                image_id=str(iid),
                image_path=image_path,
                width=rec["w"],
                height=rec["h"],
                boxes=boxes[keep],
                labels=torch.tensor(rec["labels"], dtype=torch.int64)[keep],
                difficult=torch.tensor(rec["crowd"], dtype=torch.bool)[keep],
                source=f"{path} image id {iid!r}",
            )
        )
    warn_skipped(skipped, str(path))
    return CocoDetectionSet(
        records,
        [cats[c] for c in category_ids],
        str(path),
        skipped,
        category_ids=category_ids,
    )
