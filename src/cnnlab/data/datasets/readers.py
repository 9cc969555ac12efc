"""Readers: stored files -> one split as uint8 tensors in memory (an :class:`ImageSet`).

One function per source: the built-in digits, MNIST-family idx files, CIFAR pickles, the
CIFAR-10 JPEG archive and image folders. Decoded tensors are kept in the cache
(``cache.py``), tied to the files they were read from.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import pickle
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.datasets.archives import (
    ARCHIVE_MD5,
    ARCHIVE_URL,
    IDX_RAW_MD5,
    corrupt,
    extracted,
    md5sum,
    missing,
    verified_archive,
)
from cnnlab.data.datasets.cache import TensorCache, source_record
from cnnlab.errors import ConfigError, DataError


@dataclass
class ImageSet:
    """One split of a dataset, held in memory.

    ``images``: uint8 ``[N, C, H, W]``; ``labels``: int64 ``[N]``; ``classes[k]`` names label k.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str = "train"
    source: str = field(default="", compare=False)  # where it was read from, for logs

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, index) -> ImageSet:
        """A new ImageSet with the images at ``index`` (a slice, an index tensor or a mask)."""
        return ImageSet(
            self.images[index], self.labels[index], self.classes, self.name, self.split, self.source
        )

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (
            f"ImageSet({self.name!r}, split={self.split!r}, {len(self)} images {c}x{h}x{w} uint8, "
            f"{self.num_classes} classes)"
        )


# --------------------------------------------------------------------------- digits (built in)


def load_digits(split: str, size: int) -> ImageSet:
    if size < 8:
        raise ConfigError(f"digits are 8x8; image_size must be at least 8, got {size}")
    pixels, target = _digits_arrays()
    x = torch.from_numpy(pixels).float().view(-1, 1, 8, 8).mul_(255.0 / 16.0)  # 0..16 ink
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear")
    images = x.round_().clamp_(0, 255).to(torch.uint8)
    labels = torch.from_numpy(target).long()
    # A fixed split, 20% of each class for test. RandomState is numpy's frozen legacy stream, so
    # the split is the same on every machine and numpy version.
    rng = np.random.RandomState(0)
    test = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(target == c)
        test[rng.permutation(idx)[: round(0.2 * len(idx))]] = True
    keep = torch.from_numpy(test if split == "test" else ~test)
    return ImageSet(
        images[keep].contiguous(),
        labels[keep],
        [str(c) for c in range(10)],
        "digits",
        split,
        "sklearn.datasets.load_digits (built in)",
    )


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits table (1,797 rows: 64 pixels 0..16 and the label).

    Read straight from the file scikit-learn ships: ``import sklearn.datasets`` alone takes
    seconds, which the one-minute demo cannot spare. Falls back to ``load_digits()``."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",", dtype=np.float32)
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float32), digits.target.astype(np.int64)


# --------------------------------------------------------------------------- CIFAR (pickles)

_CIFAR = {
    "cifar10": dict(
        what="CIFAR-10",
        archive="cifar-10-python.tar.gz",
        folder="cifar-10-batches-py",
        train=[f"data_batch_{i}" for i in range(1, 6)],
        test=["test_batch"],
        meta="batches.meta",
        labels="labels",
        names="label_names",
    ),
    "cifar100": dict(
        what="CIFAR-100",
        archive="cifar-100-python.tar.gz",
        folder="cifar-100-python",
        train=["train"],
        test=["test"],
        meta="meta",
        labels="fine_labels",
        names="fine_label_names",
    ),
}

# Only what a CIFAR pickle needs: numpy arrays (any numpy version's path) and bytes.
_PICKLE_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickle CIFAR batches without running arbitrary code from a downloaded file."""

    def find_class(self, module, name):
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch file")


def _read_pickle(path: Path, what: str) -> dict:
    if not path.is_file():
        raise DataError(
            f"{what}: {path.name} is missing from the extracted archive ({path.parent})",
            "the archive is incomplete; download it again",
        )
    try:
        with open(path, "rb") as f:
            # latin1 is what Python 2's str pickles (the official files) need; bytes keys stay bytes
            raw = _CifarUnpickler(f, encoding="latin1").load()
    except Exception as e:
        raise DataError(f"{what}: cannot read {path}: {e}", "download the archive again") from e
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def _names(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _verified_cifar_folder(key: str, spec: dict, folder: Path) -> Path:
    """An already unpacked ``cifar-10-batches-py`` / ``cifar-100-python`` folder, each file
    checked against the md5s torchvision lists for it."""
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10 if key == "cifar10" else tvd.CIFAR100
    url = ARCHIVE_URL[spec["archive"]]
    for name, md5 in [*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"])]:
        path = folder / name
        if not path.is_file():
            raise missing(
                spec["what"],
                name,
                folder,
                md5,
                url,
                extra=f" (or put the whole archive {spec['archive']} in {folder.parent}/)",
            )
        found = md5sum(path)
        if found != md5:
            raise corrupt(spec["what"], path, md5, found, url)
    return folder


def load_cifar(key: str, split: str, data_dir: Path, download: bool, coarse: bool) -> ImageSet:
    spec = _CIFAR[key]

    def fetch():
        import torchvision.datasets as tvd

        cls = tvd.CIFAR10 if key == "cifar10" else tvd.CIFAR100
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            cls(str(data_dir), train=True, download=True)
        except Exception as e:  # network errors come in many types
            raise DataError(
                f"downloading {spec['archive']} failed: {e}",
                f"download it yourself from {ARCHIVE_URL[spec['archive']]} into {data_dir}/",
            ) from e

    fetch_fn = fetch if download else None
    unpacked = data_dir / spec["folder"]
    if not (data_dir / spec["archive"]).is_file() and unpacked.is_dir() and not download:
        # torchvision's own layout (the archive unpacked and deleted): check each batch file
        root = archive = _verified_cifar_folder(key, spec, unpacked)
    else:
        archive = verified_archive(spec["what"], spec["archive"], data_dir, fetch_fn)
        root = extracted(archive, ARCHIVE_MD5[spec["archive"]]) / spec["folder"]
    meta = _read_pickle(root / spec["meta"], spec["what"])
    label_key, names_key = spec["labels"], spec["names"]
    if coarse:
        label_key, names_key = "coarse_labels", "coarse_label_names"
    images, labels = [], []
    for file in spec[split]:
        batch = _read_pickle(root / file, spec["what"])
        try:
            data = np.asarray(batch["data"], dtype=np.uint8)
            images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
            labels.append(torch.as_tensor(np.asarray(batch[label_key]), dtype=torch.int64))
        except (KeyError, ValueError) as e:
            raise DataError(
                f"{spec['what']}: {root / file} is not in the CIFAR python layout ({e})",
                "download the official archive again",
            ) from e
    images, labels = torch.cat(images), torch.cat(labels)
    classes = _names(meta[names_key])
    if len(images) != len(labels) or (len(labels) and int(labels.max()) >= len(classes)):
        raise DataError(f"{spec['what']}: labels do not match images/classes in {root}")
    name = key + ("-coarse" if coarse else "")
    return ImageSet(images, labels, classes, name, split, str(archive))


# --------------------------------------------------------------------------- MNIST family (idx)


def load_idx(key: str, split: str, data_dir: Path, download: bool) -> ImageSet:
    """MNIST / Fashion-MNIST from ``<data_dir>/<MNIST|FashionMNIST>/raw/`` (torchvision's
    layout), each file verified by the md5 of its content. The decoded split is cached, tied to
    the two files it was read from: a changed, moved or missing file is read (or reported) again."""
    import torchvision.datasets as tvd

    cls = tvd.MNIST if key == "mnist" else tvd.FashionMNIST
    folder = cls.__name__  # torchvision's layout: <root>/MNIST/raw, <root>/FashionMNIST/raw
    what = "MNIST" if key == "mnist" else "Fashion-MNIST"
    raw_dir = data_dir / folder / "raw"
    prefix = "train" if split == "train" else "t10k"
    stems = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    if not download:  # the sources must be there, cache or not (a typo is never hidden)
        for stem in stems:
            if not (raw_dir / (stem + ".gz")).is_file() and not (raw_dir / stem).is_file():
                raise missing(what, stem + ".gz", raw_dir, dict(cls.resources)[stem + ".gz"],
                              cls.mirrors[0] + stem + ".gz")  # fmt: skip
    cache = TensorCache(f"{key}-{split}")
    state = cache.load()
    if state is None:
        gz_md5 = dict(cls.resources)
        images, labels, sources = None, None, []
        for stem in stems:
            content, src = _verified_idx(what, cls, raw_dir, stem, gz_md5[stem + ".gz"],
                                         IDX_RAW_MD5[folder][stem], download)  # fmt: skip
            sources.append(source_record(src))
            arr = _read_idx_bytes(content, src)
            if "images" in stem:
                images = torch.from_numpy(arr).unsqueeze(1).contiguous()  # [N, 1, 28, 28]
            else:
                labels = torch.from_numpy(arr.astype(np.int64))
        if len(images) != len(labels):
            raise DataError(f"{what}: {len(images)} images but {len(labels)} labels in {raw_dir}",
                            "the files do not belong together; download them again")  # fmt: skip
        cache.save(images, labels, list(cls.classes), sources)
        state = {"images": images, "labels": labels, "classes": list(cls.classes)}
    return ImageSet(state["images"], state["labels"], list(state["classes"]), key, split,
                    str(raw_dir))  # fmt: skip


def _read_idx_bytes(content: bytes, path: Path) -> np.ndarray:
    """An idx array (LeCun's format: magic, dims, then unsigned bytes) from verified bytes."""
    ndim = content[3] if len(content) > 4 else 0
    dims = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(content, np.uint8, offset=4 + 4 * ndim)
    if content[:3] != b"\x00\x00\x08" or body.size != int(np.prod(dims)):
        raise DataError(f"{path} is not an idx file of unsigned bytes", "download it again")
    return body.reshape(dims).copy()


def _verified_idx(what, cls, raw_dir: Path, stem: str, gz_md5, raw_md5, download):
    """``(content, file)``: the idx bytes of ``stem`` (from ``.gz`` or plain), md5-checked."""
    gz, plain = raw_dir / (stem + ".gz"), raw_dir / stem
    url = cls.mirrors[0] + stem + ".gz"
    if not gz.is_file() and not plain.is_file() and download:
        try:
            cls(str(raw_dir.parent.parent), train=stem.startswith("train"), download=True)
        except Exception as e:
            raise DataError(f"downloading {what} failed: {e}", f"fetch {url} yourself") from e
    if gz.is_file():
        data = gz.read_bytes()
        found = hashlib.md5(data).hexdigest()
        try:
            content = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            content = b""
        # the official .gz, or any .gz whose uncompressed content is the official idx file
        if found == gz_md5 or hashlib.md5(content).hexdigest() == raw_md5:
            return content, gz
        raise corrupt(what, gz, gz_md5, found, url)
    if plain.is_file():
        content = plain.read_bytes()
        found = hashlib.md5(content).hexdigest()
        if found == raw_md5:
            return content, plain
        raise corrupt(what, plain, raw_md5, found, url)
    raise missing(what, stem + ".gz", raw_dir, gz_md5, url)


# --------------------------------------------------------------------------- image folders


def load_cifar10_jpeg(split: str, data_dir: Path) -> ImageSet:
    file = "cifar10-jpeg.tar.gz"
    archive = data_dir / file
    md5 = ARCHIVE_MD5[file]
    if not archive.is_file():  # checked before the cache: a wrong --data-dir is never hidden
        raise missing("CIFAR-10 (JPEG)", file, data_dir, md5, None)
    cache = TensorCache(f"cifar10-jpeg-{md5[:12]}-{split}")
    state = cache.load(md5)
    if state is None:
        archive = verified_archive("CIFAR-10 (JPEG)", file, data_dir)
        root = extracted(archive, md5) / "cifar10-jpeg" / split
        ds = _decode_folder(root, None)
        cache.save(ds.images, ds.labels, ds.classes, [source_record(archive, md5)], md5)
        state = {"images": ds.images, "labels": ds.labels, "classes": ds.classes}
    classes = list(state["classes"])
    return ImageSet(state["images"], state["labels"], classes, "cifar10-jpeg", split, str(archive))


def load_image_folder(path: Path, split: str, image_size: int | None) -> ImageSet:
    """``<path>/<split>/<class>/*`` if that exists (``val/`` is the validation split, never
    the test split), else ``<path>/<class>/*`` split 80/20 per class with a fixed seed."""
    root = path / split if (path / split).is_dir() else None
    name = path.resolve().name
    if root is not None:
        ds = _decode_folder_cached(root, image_size)
        ds.name, ds.split = name, split
        return ds
    if any((path / s).is_dir() for s in ("train", "test", "val")):
        raise DataError(
            f"{path} has split folders but no {split!r} folder",
            f"add {path / split}/<class>/ images (or use the split that exists)",
        )
    ds = _decode_folder_cached(path, image_size)
    rng = np.random.RandomState(0)
    test = np.zeros(len(ds), dtype=bool)
    labels = ds.labels.numpy()
    for c in range(len(ds.classes)):
        idx = np.flatnonzero(labels == c)
        test[rng.permutation(idx)[: int(round(0.2 * len(idx)))]] = True
    keep = torch.from_numpy(test if split == "test" else ~test)
    return dataclasses.replace(ds.subset(keep), name=name, split=split, source=str(path))


def _decode_folder_cached(root: Path, image_size: int | None) -> ImageSet:
    """Decode a folder, reusing the cached tensors while its file list is the same and no file
    changed (each file's size and time are part of the entry's key)."""
    import os

    from torchvision.datasets import ImageFolder

    try:
        folder = ImageFolder(str(root), loader=str)  # only its file list and class names
    except (FileNotFoundError, OSError) as e:
        raise DataError(
            f"no images found under {root}: {e}",
            "an image folder holds one sub-folder per class: <dir>/<class>/*.jpg (or .png ...)",
        ) from e
    h = hashlib.sha1(f"{root.resolve()}|{image_size}".encode())
    for p, _ in folder.samples:
        st = os.stat(p)
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    key = h.hexdigest()
    cache = TensorCache(f"folder-{key[:16]}")
    state = cache.load(key)
    if state is not None:
        return ImageSet(state["images"], state["labels"], list(state["classes"]), root.name)
    ds = _decode_folder(root, image_size, folder)
    cache.save(ds.images, ds.labels, ds.classes, [], key)
    return ds


def _decode_folder(root: Path, image_size: int | None, folder=None) -> ImageSet:
    """Decode every image under ``root`` (an ImageFolder tree) into one uint8 tensor.

    JPEGs go through ``torchvision.io.decode_jpeg`` in batches (one call per few thousand files);
    other formats through ``decode_image``. All images come out RGB."""
    from torchvision.datasets import ImageFolder

    if folder is None:
        try:
            folder = ImageFolder(str(root), loader=str)
        except (FileNotFoundError, OSError) as e:
            raise DataError(f"no images found under {root}: {e}") from e
    paths = [p for p, _ in folder.samples]
    labels = torch.tensor([t for _, t in folder.samples], dtype=torch.int64)
    # torchvision 0.29 marks its image codecs deprecated (in favour of TorchCodec, not installed
    # here); they still work and are what we have, so keep the warning out of users' output.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = _decode_files(paths)
    sizes = {tuple(t.shape[1:]) for t in decoded}
    if image_size is not None:
        decoded = [_square(t, image_size) for t in decoded]
    elif len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:6])
        raise DataError(
            f"images under {root} have {len(sizes)} different sizes ({shown}"
            f"{', ...' if len(sizes) > 6 else ''}); a batch needs one size",
            "pass --image-size N (image_size=N) to resize each image's shorter side to N and "
            "crop its centre to N x N",
        )
    return ImageSet(torch.stack(decoded), labels, list(folder.classes), root.name, "", str(root))


def _decode_files(paths: list[str]) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg

    decoded: list[torch.Tensor] = []
    jpeg = [p.lower().endswith((".jpg", ".jpeg")) for p in paths]
    chunk = 4096
    for start in range(0, len(paths), chunk):
        part = paths[start : start + chunk]
        raw = [torch.frombuffer(bytearray(Path(p).read_bytes()), dtype=torch.uint8) for p in part]
        if all(jpeg[start : start + chunk]):
            try:
                decoded += decode_jpeg(raw, mode=ImageReadMode.RGB)
                continue
            except RuntimeError:
                pass  # a bad file among them: fall back to one by one for a precise message
        for p, r in zip(part, raw):
            try:
                decoded.append(decode_image(r, mode=ImageReadMode.RGB))
            except RuntimeError as e:
                raise DataError(f"cannot decode image {p}: {e}", "remove or replace it") from e
    return decoded


def _square(img: torch.Tensor, size: int) -> torch.Tensor:
    import torchvision.transforms.v2.functional as TF

    if tuple(img.shape[1:]) == (size, size):
        return img
    img = TF.resize(img, size, antialias=True)  # shorter side -> size
    return TF.center_crop(img, [size, size])
