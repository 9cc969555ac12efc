"""Datasets as whole uint8 tensors in memory: ``load_dataset(name, split) -> ImageSet``.

Every dataset here is small enough to hold at once (CIFAR-10 train: 50,000 x 3 x 32 x 32 bytes =
150 MB), so we decode it once into a ``[N, C, H, W]`` uint8 tensor and let ``BatchLoader`` and
``Augment`` work on whole batches, instead of paying PIL and Python per image per epoch.

Names (``list_datasets()`` prints them with their sources):

- ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, shipped inside scikit-learn),
  upscaled to 32x32; a fixed 80/20 split per class. Needs no file and no network.
- ``mnist``, ``fashion-mnist``: the four idx ``.gz`` files in ``<data_dir>/MNIST/raw/`` or
  ``<data_dir>/FashionMNIST/raw/`` (torchvision's layout), read by torchvision's datasets.
- ``cifar10``, ``cifar100``: the official python archives ``cifar-10-python.tar.gz`` /
  ``cifar-100-python.tar.gz`` in ``<data_dir>``, md5-verified and extracted safely to the cache.
- ``cifar10-jpeg``: ``<data_dir>/cifar10-jpeg.tar.gz`` (CIFAR-10 re-encoded as JPEG; lossy, so
  never report it as CIFAR-10), extracted safely and read as an ImageFolder, decoded once and
  cached as a tensor file.
- a directory path: your own images, ``<dir>/<split>/<class>/*.jpg`` (or ``<dir>/<class>/*``,
  split 80/20 per class like ``digits``), read with torchvision's ImageFolder.

``data_dir`` defaults to ``$CNNLAB_DATA`` or ``~/.cache/cnnlab/data``; derived files (extracted
archives, decoded tensors) go to ``$CNNLAB_CACHE`` or ``~/.cache/cnnlab``. A missing or corrupt
file raises ``DataError`` naming the file, the folder it belongs in, the md5s and the URL.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cnnlab.data.datasets import readers
from cnnlab.data.datasets.cache import default_data_dir
from cnnlab.data.datasets.readers import ImageSet
from cnnlab.errors import ConfigError, ShapeError, suggest

SPLITS = ("train", "val", "test")

DATASETS = {
    "digits": "scikit-learn 8x8 digits upscaled to 32x32, 1,438 train / 359 test, built in",
    "mnist": "MNIST 1x28x28, 60,000 / 10,000 (<data_dir>/MNIST/raw/*.gz)",
    "fashion-mnist": "Fashion-MNIST 1x28x28, 60,000 / 10,000 (<data_dir>/FashionMNIST/raw/*.gz)",
    "cifar10": "CIFAR-10 3x32x32, 50,000 / 10,000 (<data_dir>/cifar-10-python.tar.gz)",
    "cifar100": "CIFAR-100 3x32x32, 100 classes (coarse=True: 20), 50,000 / 10,000 "
    "(<data_dir>/cifar-100-python.tar.gz)",
    "cifar10-jpeg": "CIFAR-10 (JPEG), lossy re-encoding, 50,000 / 10,000 "
    "(<data_dir>/cifar10-jpeg.tar.gz)",
    "digits-det": "detection: 1-4 digits on 1x96x96 canvases, boxes + labels, 2,400 / 400, "
    "generated (cnnlab.data.synthetic)",
    "digits-seg": "segmentation: 1-3 digits on 1x64x64 canvases, per-pixel masks, 2,400 / 400, "
    "generated (cnnlab.data.synthetic)",
}
_ALIASES = {
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "cifar-10-jpeg": "cifar10-jpeg",
    "cifar10jpeg": "cifar10-jpeg",
    "sklearn-digits": "digits",
}


def list_datasets() -> dict[str, str]:
    """Dataset names and one-line descriptions (a folder path is also accepted)."""
    return dict(DATASETS)


def _key(name) -> str:
    key = str(name).strip().lower().replace("_", "-")
    return _ALIASES.get(key, key)


def shipped_splits(name) -> tuple[str, ...]:
    """The splits a dataset comes with: ``("train", "test")`` for the named ones; for an image
    folder the split folders it has (``train``, ``val``, ``test``), or ``("train", "test")``
    when it has none (then split 80/20 per class)."""
    if _key(name) in DATASETS:
        return ("train", "test")
    path = Path(name).expanduser()
    have = tuple(s for s in SPLITS if (path / s).is_dir())
    return have or ("train", "test")


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    *,
    image_size: int | None = None,
    pad_to: int | None = None,
    channels: int | None = None,
    coarse: bool = False,
) -> ImageSet:
    """Load one split of a dataset as uint8 tensors in memory.

    Args:
        name: ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``,
            ``cifar10-jpeg``, or the path of an image folder.
        split: ``"train"``, ``"test"``, or ``"val"`` for a dataset that ships a validation split
            (an image folder with ``val/``; see :func:`shipped_splits`).
        data_dir: where the dataset files are (default ``$CNNLAB_DATA`` or
            ``~/.cache/cnnlab/data``).
        download: fetch MNIST / Fashion-MNIST / CIFAR through torchvision when missing (online).
        image_size: resize every image to ``image_size x image_size`` (antialiased bilinear;
            for ``digits`` the size it is upscaled to, default 32; for an image folder with
            mixed sizes, the shorter side is resized and the centre cropped).
        pad_to: zero-pad (centred) to ``pad_to x pad_to``, e.g. MNIST 28 -> 32 as LeNet-5 had it.
        channels: 1 or 3: convert grayscale to RGB (repeat) or RGB to grayscale.
        coarse: CIFAR-100 only: the 20 superclass labels instead of the 100 fine ones.
    """
    if split not in SPLITS:
        raise ConfigError(
            f"unknown split {split!r}; choose 'train', 'val' or 'test'",
            suggest(split, SPLITS) or None,
        )
    key = _key(name)
    if split == "val" and "val" not in shipped_splits(name):
        raise ConfigError(
            f"{name} ships no validation split",
            "hold one out of the training split instead (cnnlab train --val-fraction F)",
        )
    data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if coarse and key != "cifar100":
        raise ConfigError("coarse labels exist only for cifar100")
    if key in ("digits-det", "digits-seg"):  # detection / segmentation: a DenseSet
        from cnnlab.data.synthetic import load_preset

        given = [f for f, v in (("--image-size", image_size), ("pad_to", pad_to),
                                ("channels", channels)) if v is not None]  # fmt: skip
        if given:  # resizing would have to move every box and mask too: refused, not ignored
            raise ConfigError(
                f"{name} does not take {', '.join(given)}: its canvases have a fixed size, "
                "with boxes and masks drawn at it",
                f"drop {given[0]}; the model's input size follows the data",
            )

        return load_preset(key, split, data_dir=data_dir)
    if key == "digits":
        ds = readers.load_digits(split, image_size or 32)
        image_size = None
    elif key in ("mnist", "fashion-mnist"):
        ds = readers.load_idx(key, split, data_dir, download)
    elif key in ("cifar10", "cifar100"):
        ds = readers.load_cifar(key, split, data_dir, download, coarse)
    elif key == "cifar10-jpeg":
        ds = readers.load_cifar10_jpeg(split, data_dir)
    elif Path(name).expanduser().is_dir():
        ds = readers.load_image_folder(Path(name).expanduser(), split, image_size)
        image_size = None
    else:
        hint = suggest(key, DATASETS)
        raise ConfigError(
            f"unknown dataset {name!r}: not one of {', '.join(DATASETS)} and not a folder",
            (hint + " " if hint else "") + "or give the path of a folder of images "
            "(<dir>/train/<class>/*.jpg and <dir>/test/<class>/*.jpg)",
        )
    return _reshape(ds, image_size, pad_to, channels)


# --------------------------------------------------------------------------- common reshaping


def _reshape(ds: ImageSet, image_size, pad_to, channels) -> ImageSet:
    x = ds.images
    if image_size is not None and tuple(x.shape[2:]) != (image_size, image_size):
        import torchvision.transforms.v2.functional as TF  # only here: importing it takes seconds

        x = torch.cat(
            [
                TF.resize(x[i : i + 8192], [image_size, image_size], antialias=True)
                for i in range(0, len(x), 8192)
            ]
        )
    if pad_to is not None:
        h, w = x.shape[2:]
        if pad_to < max(h, w):
            raise ShapeError(f"pad_to={pad_to} is smaller than the images ({h}x{w})")
        top, left = (pad_to - h) // 2, (pad_to - w) // 2
        x = torch.nn.functional.pad(x, (left, pad_to - w - left, top, pad_to - h - top))
    if channels is not None:
        c = x.shape[1]
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        if c == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        elif c == 3 and channels == 1:
            import torchvision.transforms.v2.functional as TF

            x = TF.rgb_to_grayscale(x)
    if x is not ds.images:
        ds = ImageSet(x.contiguous(), ds.labels, ds.classes, ds.name, ds.split, ds.source)
    return ds
