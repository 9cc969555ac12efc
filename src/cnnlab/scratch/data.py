"""Torch-free data for the scratch engine: MNIST idx files and scikit-learn's digits, as NHWC.

Both loaders return ``(images, labels)``: ``uint8 [N, h, w, 1]`` and ``int64 [N]``.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from cnnlab.errors import ConfigError, DataError, suggest

IDX_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dimension, images: 3 (0x00000801 / 0x00000803, uint8)
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DATASETS = ("mnist", "fashion-mnist", "digits")


def read_idx(path):
    """Read one idx file (optionally .gz): check the magic number and that the size matches."""
    path = Path(path)
    try:
        raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    except (OSError, EOFError) as e:
        raise DataError(
            f"cannot read {path}: {e}", "re-download the file; it may be truncated"
        ) from e
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic not in IDX_MAGIC:
        raise DataError(
            f"{path} is not an idx file of unsigned bytes (magic {magic}, expected 2049 or 2051)"
        )
    ndim = IDX_MAGIC[magic]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    start, need = 4 + 4 * ndim, int(np.prod(dims))
    if len(raw) - start != need:
        raise DataError(
            f"{path}: header says {dims} = {need} bytes of data, the file has {len(raw) - start}",
            "the file is truncated or corrupt; download it again",
        )
    return np.frombuffer(raw, np.uint8, offset=start).reshape(dims)


def load_mnist(data_dir, split="train", name="mnist"):
    """MNIST (or Fashion-MNIST) from ``<data_dir>/MNIST/raw/*-idx?-ubyte[.gz]``, torchvision's
    layout."""
    if split not in MNIST_FILES:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    folder = "FashionMNIST" if name == "fashion-mnist" else "MNIST"
    if data_dir is None:
        raise ConfigError(f"{name} needs --data-dir, the folder that holds {folder}/raw/")
    raw = Path(data_dir).expanduser() / folder / "raw"
    found = []
    for stem in MNIST_FILES[split]:
        files = [raw / (stem + ext) for ext in (".gz", "")]
        hit = next((f for f in files if f.is_file()), None)
        if hit is None:
            raise DataError(
                f"{name}: {files[0]} not found", f"put the four idx files of {name} in {raw}"
            )
        found.append(read_idx(hit))
    images, labels = found
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{name} {split}: {images.shape} images do not match {labels.shape} labels")
    return images[..., None], labels.astype(np.int64)


@functools.lru_cache(maxsize=1)
def _digits_table():
    """scikit-learn's digits (1,797 rows of 64 pixels 0..16, then the label), read from the file
    that ``sklearn.datasets.load_digits`` reads, without importing scikit-learn (seconds)."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is not None and path.is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    return d.images, d.target.astype(np.int64)


def load_digits(split="train", scale=4):
    """scikit-learn's 8x8 digits (bundled, no download), upscaled by pixel repetition
    (``scale=4``: 32x32) and split 80/20 per class with the same fixed permutation as
    ``cnnlab.data``'s ``digits``."""
    images, target = _digits_table()
    x = np.round(images * (255 / 16)).astype(np.uint8)
    x = x.repeat(scale, 1).repeat(scale, 2)[..., None]
    rng, test = np.random.RandomState(0), np.zeros(len(target), bool)
    for c in range(10):
        idx = np.flatnonzero(target == c)
        test[rng.permutation(idx)[: round(0.2 * len(idx))]] = True
    keep = test if split == "test" else ~test
    return x[keep], target[keep]


def load(name, split="train", data_dir=None):
    """``mnist`` | ``fashion-mnist`` | ``digits`` -> (uint8 [N, h, w, 1], int64 [N])."""
    if name == "digits":
        return load_digits(split)
    if name in ("mnist", "fashion-mnist"):
        return load_mnist(data_dir, split, name)
    raise ConfigError(
        f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}",
        suggest(name, DATASETS) or None,
    )
