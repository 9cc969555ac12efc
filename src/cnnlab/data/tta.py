"""Test-time augmentation: several views of each test image, predictions averaged.

Modes (seed 001, "Data Augmentation: Random Crops and Scales", testing):

- ``none``: the image itself (1 view);
- ``flip``: the image and its mirror (2 views);
- ``flip-shift``: ``flip``, and the same for the image shifted by one pixel up-left and by one
  down-right (reflect padding): 6 views (Jordan 2024's airbench "TTA level 2", which weights
  the unshifted pair 1/2 and each shifted pair 1/4; here all six count alike);
- ``10crop``: 4 corner crops + the centre crop, and the same of the mirrored image (10 views;
  torchvision's ``ten_crop``). Default crop: 7/8 of the shorter side (224 of 256; 28 of 32);
- ``multiscale``: resize the shorter side to each of 5 scales, 224/256/384/480/640, and take the
  10 crops of 224 at each: 50 views. For other input sizes the protocol is scaled: crop = the
  input's shorter side s (the model's training size) and scales = s * (224, 256, 384, 480, 640)
  / 224, e.g. 32, 37, 55, 69, 91 for CIFAR. As in the seed, the smallest scale equals the crop,
  so its 10 views are the whole image and its mirror, 5 times each.

Views stay in the batch's pixel scale and dtype; preprocess them like any batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from cnnlab.errors import ConfigError, ShapeError, suggest

TTA_MODES = ("none", "flip", "flip-shift", "10crop", "multiscale")
SEED_SCALES = (224, 256, 384, 480, 640)  # seed 001's five test scales, for 224 crops


def tta_view_count(mode: str, scales=None) -> int:
    _check(mode)
    counts = {"none": 1, "flip": 2, "flip-shift": 6, "10crop": 10}
    return counts.get(mode) or 10 * len(scales or SEED_SCALES)


def default_crop(mode: str, height: int, width: int) -> int:
    s = min(height, width)
    return round(s * 224 / 256) if mode == "10crop" else s


def default_scales(crop: int) -> tuple[int, ...]:
    """Seed 001's scales for ``crop``-pixel crops: exactly (224, ..., 640) at 224."""
    return tuple(round(crop * s / 224) for s in SEED_SCALES)


def iter_tta_views(
    batch: torch.Tensor, mode: str = "flip", crop: int | None = None, scales=None
) -> Iterator[torch.Tensor]:
    """Yield the views in groups, each ``[v, B, C, h, w]``: all of them at once for ``none``,
    ``flip`` and ``10crop``, one scale (10 views) at a time for ``multiscale``, which bounds the
    memory of a 50-view evaluation to 10 views."""
    _check(mode)
    if batch.ndim != 4:
        raise ShapeError(f"tta_views wants a [B, C, H, W] batch, got {tuple(batch.shape)}")
    if mode == "none":
        yield batch[None]
        return
    if mode == "flip":
        yield torch.stack((batch, batch.flip(-1)))
        return
    if mode == "flip-shift":
        h, w = batch.shape[-2:]
        if min(h, w) < 2:
            raise ShapeError(f"flip-shift needs images of at least 2x2 pixels, got {h}x{w}")
        padded = torch.nn.functional.pad(batch, (1, 1, 1, 1), mode="reflect")
        views = [batch, padded[..., :h, :w], padded[..., 2 : 2 + h, 2 : 2 + w]]
        yield torch.stack([v for x in views for v in (x, x.flip(-1))])
        return
    import torchvision.transforms.v2.functional as TF

    h, w = batch.shape[-2:]
    crop = int(crop or default_crop(mode, h, w))
    if mode == "10crop":
        if crop > min(h, w):
            raise ShapeError(f"10crop: crop {crop} is larger than the images ({h}x{w})")
        yield torch.stack(TF.ten_crop(batch, [crop, crop]))
        return
    scales = tuple(int(s) for s in (scales or default_scales(crop)))
    if min(scales) < crop:
        raise ShapeError(
            f"multiscale: scale {min(scales)} is smaller than the crop {crop}",
            "every scale (the shorter side after resizing) must be at least the crop size",
        )
    for side in scales:
        if side == min(h, w):
            resized = batch
        else:
            x = batch.float() if batch.dtype == torch.uint8 else batch
            resized = TF.resize(x, side, antialias=True)  # shorter side -> side
            if batch.dtype == torch.uint8:
                resized = resized.round_().clamp_(0, 255).to(torch.uint8)
        yield torch.stack(TF.ten_crop(resized, [crop, crop]))


def tta_views(
    batch: torch.Tensor, mode: str = "flip", crop: int | None = None, scales=None
) -> torch.Tensor:
    """All views of ``batch`` as one ``[V, B, C, h, w]`` tensor (V = 1, 2, 6, 10 or 50).

    ``for view in tta_views(x, "10crop"): model(view)`` runs one view of the whole batch at a
    time. For large images use :func:`iter_tta_views` or :func:`tta_predict` instead."""
    return torch.cat(list(iter_tta_views(batch, mode, crop, scales)))


@torch.no_grad()
def tta_predict(
    model: torch.nn.Module,
    batch: torch.Tensor,
    mode: str = "flip",
    *,
    crop: int | None = None,
    scales=None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Class probabilities ``[B, K]``: the softmax of ``model`` averaged over the views.

    ``preprocess`` maps a view batch to the model's input (e.g. a fitted ``Preprocessor``);
    without it uint8 views are scaled to [0, 1]. Each group of views goes through the model as
    one batch of ``v * B`` images."""
    total, count = None, 0
    for views in iter_tta_views(batch, mode, crop, scales):
        v, b = views.shape[:2]
        x = views.reshape(v * b, *views.shape[2:])
        if preprocess is not None:
            x = preprocess(x)
        elif x.dtype == torch.uint8:
            x = x.float().div_(255)
        out = model(x)
        out = out[0] if isinstance(out, (tuple, list)) else out  # main head of aux-loss models
        probs = out.float().softmax(-1).view(v, b, -1).sum(0)
        total = probs if total is None else total + probs
        count += v
    return total / count


def _check(mode: str) -> None:
    if mode not in TTA_MODES:
        raise ConfigError(
            f"unknown test-time augmentation {mode!r}; choose one of {', '.join(TTA_MODES)}",
            suggest(mode, TTA_MODES) or None,
        )
