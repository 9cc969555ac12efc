"""Reading the pictures the visualization commands work on.

``read_image`` takes a file path or ``sample:china`` / ``sample:flower`` (the two photos
scikit-learn ships, so every command works offline on a fresh install) and returns an
``H x W x C`` uint8 array. ``to_model_channels`` fits the channel count to a model's,
saying what it did, so a grayscale photo shown to an RGB model is converted with a note
instead of failing inside the first convolution.
"""

from __future__ import annotations

import warnings
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
    with warnings.catch_warnings():  # torchvision 0.29 points to torchcodec; io still works
        warnings.simplefilter("ignore")
        from torchvision.io import ImageReadMode, decode_image, read_file
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = decode_image(read_file(str(path)), mode=ImageReadMode.UNCHANGED)
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(
            f"cannot decode image {path}: {reason}",
            "the file is damaged or not an image; give a PNG, JPEG, GIF or WebP file",
        ) from None
    arr = img.permute(1, 2, 0).numpy()
    if arr.shape[2] == 2:  # gray + alpha
        arr = arr[:, :, :1]
    elif arr.shape[2] == 4:  # RGBA: drop alpha
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


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
