"""What the Pascal VOC and COCO readers return: one record per image, boxes checked one way.

A :class:`DetectionRecord` holds one image's path, size and objects as torchvision's detection
models want them (``target()``: ``boxes`` [N, 4] float32 xyxy in pixels, ``labels`` [N] int64
with 0 kept for the background, plus ``difficult`` [N] bool); a :class:`DetectionSet` is the list
of records with the class names and, when bad boxes were skipped, one line per skipped box.

Every box goes through :func:`check_boxes`: a box with zero or negative area or one that leaves
the image is an error naming the file and the record, or, with ``bad_boxes="skip"``, a stated
skip (listed in ``DetectionSet.skipped`` and warned once). A box that overshoots the image by
at most ``EDGE_TOLERANCE`` (1 pixel, the rounding that annotation tools leave) is clipped to it.
Images without objects are kept, with empty tensors: they are the negatives a detector must
learn to leave empty.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cnnlab.errors import ConfigError, DataError

__all__ = [
    "BAD_BOX_POLICIES",
    "DetectionRecord",
    "DetectionSet",
    "check_boxes",
    "load_image",
]

BAD_BOX_POLICIES = ("error", "skip")
EDGE_TOLERANCE = 1.0  # pixels a box may overshoot the image and be clipped instead of refused


@dataclass
class DetectionRecord:
    """One image and its objects; ``boxes`` are xyxy pixels, ``labels`` 1..K (0 = background)."""

    image_id: str
    image_path: Path
    width: int
    height: int
    boxes: torch.Tensor  # [N, 4] float32
    labels: torch.Tensor  # [N] int64
    difficult: torch.Tensor  # [N] bool
    source: str = ""  # the annotation file (and record) it came from, for messages

    def __len__(self) -> int:
        return len(self.labels)

    def target(self) -> dict:
        """torchvision's detection target: ``{"boxes", "labels", "difficult"}``."""
        return {"boxes": self.boxes, "labels": self.labels, "difficult": self.difficult}

    def load_image(self) -> torch.Tensor:
        """The image as uint8 [3, H, W], checked against the annotated size."""
        image = load_image(self.image_path)
        h, w = image.shape[-2:]
        if (h, w) != (self.height, self.width):
            raise DataError(
                f"{self.image_path} is {w}x{h} pixels but {self.source} says "
                f"{self.width}x{self.height}",
                "fix the annotation's size (or the image): the boxes are in the annotated frame",
            )
        return image


@dataclass
class DetectionSet:
    """The records of one split, the class names (``classes[k - 1]`` names label k) and skips."""

    records: list[DetectionRecord]
    classes: list[str]
    source: str
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i) -> DetectionRecord:
        return self.records[i]

    def targets(self) -> list[dict]:
        """All targets, in order, for :func:`cnnlab.metrics.detection_map`."""
        return [r.target() for r in self.records]

    @property
    def num_objects(self) -> int:
        return sum(len(r) for r in self.records)


def check_policy(bad_boxes: str) -> None:
    if bad_boxes not in BAD_BOX_POLICIES:
        raise ConfigError(
            f"unknown bad_boxes policy {bad_boxes!r}",
            "use 'error' (stop at the first bad box) or 'skip' (drop it and list it)",
        )


def check_boxes(
    boxes: torch.Tensor, width: int, height: int, where: list[str], bad_boxes: str, skipped: list
) -> torch.Tensor:
    """A keep-mask over ``boxes`` (xyxy pixels, clipped in place within the edge tolerance).

    ``where[i]`` names box i's file and record for the message; with ``bad_boxes="skip"`` each
    failure is appended to ``skipped`` instead of raised.
    """
    keep = torch.ones(len(boxes), dtype=torch.bool)
    t = EDGE_TOLERANCE
    for i, box in enumerate(boxes.tolist()):
        x1, y1, x2, y2 = box
        problem = None
        if not all(v == v and abs(v) != float("inf") for v in box):
            problem = f"box {box} is not finite"
        elif x2 <= x1 or y2 <= y1:
            problem = f"box {_fmt(box)} has zero area (x2 <= x1 or y2 <= y1)"
        elif x1 < -t or y1 < -t or x2 > width + t or y2 > height + t:
            problem = f"box {_fmt(box)} leaves the {width}x{height} image"
        else:
            cx1, cx2 = max(x1, 0.0), min(x2, float(width))  # within the tolerance: clip
            cy1, cy2 = max(y1, 0.0), min(y2, float(height))
            if cx2 <= cx1 or cy2 <= cy1:
                problem = f"box {_fmt(box)} has zero area inside the {width}x{height} image"
            else:
                boxes[i] = torch.tensor([cx1, cy1, cx2, cy2], dtype=boxes.dtype)
                continue
        if bad_boxes == "error":
            raise DataError(
                f"{where[i]}: {problem}",
                "fix or remove the object, or read with bad_boxes='skip' to drop such boxes "
                "(each is listed in DetectionSet.skipped)",
            )
        skipped.append(f"{where[i]}: {problem}; skipped")
        keep[i] = False
    return keep


def warn_skipped(skipped: list[str], source: str) -> None:
    if skipped:
        warnings.warn(
            f"{source}: skipped {len(skipped)} bad box(es), e.g. {skipped[0]} "
            "(all are listed in DetectionSet.skipped)",
            stacklevel=3,
        )


def _fmt(box) -> str:
    return "(" + ", ".join(f"{v:g}" for v in box) + ")"


def load_image(path) -> torch.Tensor:
    """An image file as uint8 [3, H, W] (torchvision's decoder); a clear error if unreadable."""
    from torchvision.io import ImageReadMode, decode_image, read_file

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image {path} does not exist", "check the image folder and file names")
    try:
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders (TorchCodec)
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except RuntimeError as e:
        raise DataError(f"cannot decode image {path}: {e}", "re-export it as JPEG or PNG") from None
