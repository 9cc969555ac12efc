"""Reading the pictures the visualization commands work on.

``read_image`` takes a file path or ``sample:china`` / ``sample:flower`` (the two photos
scikit-learn ships, so every command works offline on a fresh install) and returns an
``H x W x C`` uint8 array. ``to_model_channels`` fits the channel count to a model's,
saying what it did, so a grayscale photo shown to an RGB model is converted with a note
instead of failing inside the first convolution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.errors import DataError, suggest

SAMPLES = ("china", "flower")  # sklearn.datasets.load_sample_image("<name>.jpg")


def sample_path(name: str) -> Path | None:
    """Where scikit-learn keeps ``<name>.jpg``, found without importing scikit-learn (its
    import costs seconds; the file is all we need)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "images" / f"{name}.jpg"
    return path if path.is_file() else None


def read_image(spec: str | Path) -> np.ndarray:
    """``H x W x C`` uint8 (C = 1 or 3) from an image file or ``sample:NAME``."""
    text = str(spec)
    if text.startswith("sample:"):
        name = text.split(":", 1)[1]
        if name not in SAMPLES:
            raise DataError(
                f"unknown sample image {name!r}; the samples are "
                f"{', '.join('sample:' + s for s in SAMPLES)}",
                suggest(name, SAMPLES) or None,
            )
        path = sample_path(name)
        if path is None:  # an unusual install: let scikit-learn find its own file
            from sklearn.datasets import load_sample_image

            return np.ascontiguousarray(load_sample_image(f"{name}.jpg"))
    else:
        path = Path(text)
    if not path.is_file():
        raise DataError(
            f"image {path} does not exist",
            "give a PNG/JPEG file, or sample:china / sample:flower (built in)",
        )
    # PIL (matplotlib's dependency) decodes PNG, JPEG, GIF and WebP and imports in milliseconds;
    # torchvision.io would cost 2-3 s of imports (torchvision pulls in torch._dynamo)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return pil_to_array(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(
            f"cannot decode image {path}: {reason}",
            "the file is damaged or not an image; give a PNG, JPEG, GIF or WebP file",
        ) from None


def pil_to_array(im) -> np.ndarray:
    """A PIL image as ``H x W x C`` uint8: gray (with or without alpha) gives one channel,
    anything in colour three (alpha dropped); 16-bit gray keeps its top 8 bits."""
    if im.mode in ("I;16", "I;16B", "I;16L"):
        arr = (np.asarray(im, dtype=np.uint16) >> 8).astype(np.uint8)
    elif im.mode in ("1", "L", "LA", "I", "F"):
        arr = np.asarray(im.convert("L"))
    else:
        arr = np.asarray(im.convert("RGB"))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr)


def resize(t, hw: tuple[int, int]):
    """``[N, C, H, W]`` (uint8 or float) to ``hw``: bilinear with antialiasing, the kernel
    torchvision's ``resize`` calls (equal to it, uint8 included), without importing torchvision."""
    import torch.nn.functional as F

    return F.interpolate(t, size=tuple(hw), mode="bilinear", antialias=True, align_corners=False)


def to_model_channels(img: np.ndarray, channels: int) -> tuple[np.ndarray, str | None]:
    """``img`` (H x W x C uint8) with ``channels`` channels, and a note when it was converted."""
    have = img.shape[2]
    if have == channels:
        return img, None
    if have == 1 and channels == 3:
        return np.repeat(img, 3, axis=2), "grayscale image converted to RGB for an RGB model"
    if have == 3 and channels == 1:
        # ITU-R BT.601 luma, as PIL's convert("L") and torchvision's rgb_to_grayscale use
        gray = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.round(gray)[:, :, None].clip(0, 255).astype(np.uint8), (
            "RGB image converted to grayscale for a 1-channel model"
        )
    raise DataError(
        f"the image has {have} channels and the model takes {channels}",
        "give a grayscale or RGB image",
    )
