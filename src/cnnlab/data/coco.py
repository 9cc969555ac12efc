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
it and lists it), an image file that is not there. ``semantic_mask(i)`` turns an image's
polygons and RLE masks into one class-id mask (decoded by pycocotools).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.annotations import (
    DetectionRecord,
    DetectionSet,
    check_boxes,
    check_policy,
    warn_skipped,
)
from cnnlab.errors import ConfigError, DataError

__all__ = ["CocoDetectionSet", "read_coco_detection"]


@dataclass
class CocoDetectionSet(DetectionSet):
    """A DetectionSet whose label k is COCO category ``category_ids[k - 1]``.

    ``semantic_mask(i)`` paints image i's annotation masks into one class-id mask.
    """

    category_ids: list[int] | None = None
    # per record: (label, segmentation as in the file or None, iscrowd, where) of each kept object
    segments: list[list[tuple]] = field(default_factory=list, repr=False)

    def semantic_mask(self, i: int) -> torch.Tensor:
        """uint8 [H, W] class ids of image ``i``: 0 background, label k where an object of
        label k lies (later annotations paint over earlier ones), 255 over crowd regions (void,
        as VOC's borders: score with ``ignore_index=255``).

        Polygons and RLE are decoded with pycocotools (``pip install pycocotools``), COCO's own
        rasteriser, so the masks are the ones COCO's tools see.
        """
        try:
            from pycocotools import mask as mask_utils
        except ImportError:
            raise ConfigError(
                "decoding COCO masks needs pycocotools", "pip install pycocotools"
            ) from None
        rec = self.records[i]
        h, w = rec.height, rec.width
        if len(self.classes) >= VOID:
            raise ConfigError(
                f"{len(self.classes)} classes do not fit a uint8 mask with {VOID} as void",
                "use fewer than 255 categories",
            )
        out = np.zeros((h, w), dtype=np.uint8)
        for label, segm, crowd, where in self.segments[i]:
            out[_decode_segmentation(segm, h, w, where, mask_utils)] = VOID if crowd else label
        return torch.from_numpy(out)


VOID = 255  # crowd regions in a semantic mask, as VOC's void borders


def _decode_segmentation(segm, h: int, w: int, where: str, mask_utils) -> np.ndarray:
    """One annotation's 'segmentation' (polygons, or RLE with list or string counts) as a bool
    [h, w] mask; anything else is an error naming the record."""
    if segm is None:
        raise DataError(
            f"{where}: no 'segmentation'",
            "masks need polygons or RLE; boxes alone cannot paint one",
        )
    if isinstance(segm, list):
        if not segm or not all(
            isinstance(poly, list)
            and len(poly) >= 6
            and len(poly) % 2 == 0
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly)
            for poly in segm
        ):
            raise DataError(
                f"{where}: 'segmentation' is not a list of polygons",
                "each polygon is [x1, y1, x2, y2, ...] with at least 3 points",
            )
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    elif isinstance(segm, dict) and "counts" in segm and "size" in segm:
        if list(segm["size"]) != [h, w]:
            raise DataError(
                f"{where}: RLE size {segm['size']} is not the image's [height, width] = [{h}, {w}]",
                "encode the mask at the image's size",
            )
        counts = segm["counts"]
        if isinstance(counts, list):
            if sum(counts) != h * w:
                raise DataError(
                    f"{where}: RLE counts add up to {sum(counts)}, not {h} x {w} = {h * w}",
                    "uncompressed RLE counts cover every pixel, column by column",
                )
            rle = mask_utils.frPyObjects(segm, h, w)
        elif isinstance(counts, str):
            rle = {"size": [h, w], "counts": counts.encode("ascii")}
        else:
            raise DataError(f"{where}: RLE counts are {type(counts).__name__}", "see the format")
    else:
        raise DataError(
            f"{where}: 'segmentation' is {type(segm).__name__}, neither polygons nor RLE",
            "see the COCO format",
        )
    return mask_utils.decode(rle).astype(bool)


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
        images[iid]["segm"] = []
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
        rec["segm"].append(ann.get("segmentation"))

    records, skipped, segments = [], [], []
    for iid in order:
        rec = images[iid]
        boxes = torch.tensor(rec["boxes"], dtype=torch.float32).reshape(-1, 4)
        keep = check_boxes(boxes, rec["w"], rec["h"], rec["where"], bad_boxes, skipped)
        segments.append(
            [
                (lab, seg, crowd, where)
                for lab, seg, crowd, where, k in zip(
                    rec["labels"], rec["segm"], rec["crowd"], rec["where"], keep.tolist()
                )
                if k
            ]
        )
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
        segments=segments,
    )
