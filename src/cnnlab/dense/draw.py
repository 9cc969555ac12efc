"""Pictures of dense predictions: boxes drawn on an image, masks laid over it, a grid of both.

Boxes are drawn with ``torchvision.utils.draw_bounding_boxes`` and masks with
``torchvision.utils.draw_segmentation_masks``; images are uint8 ``[C, H, W]`` tensors (gray
images are shown in RGB). Files are PNGs written through a temporary name, so a file that exists
is complete (``cnnlab._util.atomic_write``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cnnlab._util import atomic_write

__all__ = [
    "PALETTE",
    "draw_detections",
    "grid_png",
    "png_bytes",
    "save_png",
    "segmentation_overlay",
]

# distinct colours for up to 21 classes (index 0, the background, is never drawn)
PALETTE = [
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
]  # fmt: skip


def _rgb(image: torch.Tensor) -> torch.Tensor:
    if image.dtype != torch.uint8:
        image = (image.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return image.expand(3, -1, -1).contiguous() if image.shape[0] == 1 else image[:3]


def draw_detections(
    image: torch.Tensor, detections: dict, classes: list[str], *, min_score: float = 0.0
) -> torch.Tensor:
    """``image`` with each box of ``detections`` (``boxes`` xyxy, ``labels``, optional
    ``scores``) drawn and captioned "class score"; boxes under ``min_score`` are left out."""
    from torchvision.utils import draw_bounding_boxes

    boxes, labels = detections["boxes"].float(), detections["labels"].long()
    scores = detections.get("scores")
    if scores is not None:
        keep = scores >= min_score
        boxes, labels, scores = boxes[keep], labels[keep], scores[keep]
    captions = [
        classes[int(l)] + (f" {float(s):.2f}" if scores is not None else "")
        for l, s in zip(labels, scores if scores is not None else labels)
    ]
    colors = [PALETTE[1 + int(l) % (len(PALETTE) - 1)] for l in labels]
    if len(boxes) == 0:  # nothing to draw (torchvision would warn)
        return _rgb(image)
    return draw_bounding_boxes(_rgb(image), boxes, captions, colors=colors, width=1)


def segmentation_overlay(
    image: torch.Tensor, mask: torch.Tensor, num_classes: int, *, alpha: float = 0.55
) -> torch.Tensor:
    """``image`` with each non-background class of ``mask`` ([H, W] ids) laid over in colour."""
    from torchvision.utils import draw_segmentation_masks

    ids = torch.arange(1, num_classes)
    masks = mask.long()[None] == ids[:, None, None]
    colors = [PALETTE[1 + (int(i) - 1) % (len(PALETTE) - 1)] for i in ids]
    return draw_segmentation_masks(_rgb(image), masks, alpha=alpha, colors=colors)


def png_bytes(image: torch.Tensor, *, scale: int = 1) -> bytes:
    """A uint8 ``[3, H, W]`` image as PNG bytes (nearest-neighbour enlarged ``scale`` times)."""
    from torchvision.io import encode_png

    if scale > 1:
        image = image.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return encode_png(image.contiguous()).numpy().tobytes()


def save_png(image: torch.Tensor, path: str | os.PathLike, *, scale: int = 1) -> Path:
    """Write ``image`` as a PNG file, atomically."""
    return atomic_write(path, png_bytes(image, scale=scale))


def grid_png(panels: list[torch.Tensor], *, ncol: int = 4, scale: int = 2) -> bytes:
    """Several uint8 images in a grid, as PNG bytes."""
    from torchvision.utils import make_grid

    grid = make_grid(torch.stack(panels), nrow=ncol, padding=2, pad_value=255)
    return png_bytes(grid, scale=scale)
