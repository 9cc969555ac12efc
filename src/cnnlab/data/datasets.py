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

import gzip
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from cnnlab.errors import ConfigError, DataError, ShapeError, suggest

SPLITS = ("train", "test")

# The official archives (facts published with the datasets; torchvision lists the same md5s).
ARCHIVE_MD5 = {
    "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    "cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85",
    "cifar10-jpeg.tar.gz": "67664af876dd64ad10750410502e5f72",
}
ARCHIVE_URL = {
    "cifar-10-python.tar.gz": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar-100-python.tar.gz": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "cifar10-jpeg.tar.gz": None,  # no public URL: a copy made for this project
}

# md5 of the *uncompressed* idx files. A re-compressed .gz (same content, different bytes) is
# accepted when its content matches; torchvision itself checks md5s only when downloading.
IDX_RAW_MD5 = {
    "MNIST": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}

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


def list_datasets() -> dict[str, str]:
    """Dataset names and one-line descriptions (a folder path is also accepted)."""
    return dict(DATASETS)


def default_data_dir() -> Path:
    return Path(os.environ.get("CNNLAB_DATA") or Path.home() / ".cache" / "cnnlab" / "data")


def cache_dir() -> Path:
    return Path(os.environ.get("CNNLAB_CACHE") or Path.home() / ".cache" / "cnnlab")


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
        split: ``"train"`` or ``"test"``.
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
            f"unknown split {split!r}; choose 'train' or 'test'", suggest(split, SPLITS) or None
        )
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if coarse and key != "cifar100":
        raise ConfigError("coarse labels exist only for cifar100")
    if key in ("digits-det", "digits-seg"):  # detection / segmentation: a DenseSet
        from cnnlab.data.synthetic import load_preset

        return load_preset(key, split, data_dir=data_dir)
    if key == "digits":
        ds = _load_digits(split, image_size or 32)
        image_size = None
    elif key in ("mnist", "fashion-mnist"):
        ds = _load_idx(key, split, data_dir, download)
    elif key in ("cifar10", "cifar100"):
        ds = _load_cifar(key, split, data_dir, download, coarse)
    elif key == "cifar10-jpeg":
        ds = _load_cifar10_jpeg(split, data_dir)
    elif Path(name).expanduser().is_dir():
        ds = _load_image_folder(Path(name).expanduser(), split, image_size)
        image_size = None
    else:
        hint = suggest(key, DATASETS)
        raise ConfigError(
            f"unknown dataset {name!r}: not one of {', '.join(DATASETS)} and not a folder",
            (hint + " " if hint else "") + "or give the path of a folder of images "
            "(<dir>/train/<class>/*.jpg and <dir>/test/<class>/*.jpg)",
        )
    return _reshape(ds, image_size, pad_to, channels)


# --------------------------------------------------------------------------- digits (built in)


def _load_digits(split: str, size: int) -> ImageSet:
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


# --------------------------------------------------------------------------- files and archives


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _missing(what: str, file: str, folder: Path, md5: str | None, url: str | None, extra=""):
    where = f"put {file}" + (f" (md5 {md5})" if md5 else "") + f" in {folder}/"
    fetch = f"; download it from {url}" if url else ""
    online = " or pass download=True / --download when online," if url else ""
    return DataError(
        f"{what} not found: {folder / file} does not exist{extra}",
        f"{where}{fetch};{online} or point --data-dir (or $CNNLAB_DATA) at the folder "
        "that holds it",
    )


def _corrupt(what: str, path: Path, expected: str, found: str, url: str | None):
    fetch = f" from {url}" if url else ""
    return DataError(
        f"{what}: {path} is corrupt or incomplete (md5 {found}, expected {expected})",
        f"delete it and put a good copy of {path.name} (md5 {expected}) in {path.parent}/{fetch}",
    )


def _verified_archive(what: str, file: str, data_dir: Path, download_fn=None) -> Path:
    """The archive ``data_dir/file``, downloaded if asked and absent, with its md5 checked."""
    path = data_dir / file
    expected, url = ARCHIVE_MD5[file], ARCHIVE_URL.get(file)
    if not path.is_file() and download_fn is not None:
        download_fn()
    if not path.is_file():
        raise _missing(what, file, data_dir, expected, url)
    found = md5sum(path)
    if found != expected:
        raise _corrupt(what, path, expected, found, url)
    return path


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Extract a tar archive into ``dest``, refusing anything that could land outside it.

    Rejected: absolute names, ``..`` components, symbolic and hard links, devices and fifos.
    On top of our own check, Python's ``filter="data"`` is used where it exists (3.12, 3.11.4+).
    """
    archive, dest = Path(archive), Path(dest)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                parts = PurePosixPath(m.name).parts
                reason = None
                if m.name.startswith(("/", "\\")) or (len(m.name) > 1 and m.name[1] == ":"):
                    reason = "has an absolute path"
                elif ".." in parts or any(".." in p.split("\\") for p in parts):
                    reason = "climbs out of the folder with '..'"
                elif m.issym() or m.islnk():
                    reason = "is a link"
                elif not (m.isfile() or m.isdir()):
                    reason = "is not a regular file or folder"
                if reason:
                    raise DataError(
                        f"refusing to extract {archive}: member {m.name!r} {reason}",
                        "the archive is damaged or malicious; get a clean copy from the official "
                        "source",
                    )
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - old Pythons; every member was checked above
                tar.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(
            f"cannot read {archive}: {e}", f"the file is damaged; replace {archive.name}"
        ) from e


def _extracted(archive: Path, md5: str) -> Path:
    """Extract ``archive`` once into the cache (keyed by its md5) and return that folder.

    Extraction goes to a temporary folder renamed into place at the end, so an interrupted run
    never leaves a half-extracted cache behind."""
    root = cache_dir() / "extracted"
    dest = root / f"{archive.name.split('.')[0]}-{md5[:12]}"
    if (dest / ".complete").is_file():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        safe_extract(archive, tmp)
        (tmp / ".complete").write_text(md5 + "\n")
        if dest.exists():  # stale (incomplete) or extracted meanwhile by another process
            if (dest / ".complete").is_file():
                return dest
            shutil.rmtree(dest, ignore_errors=True)
        try:
            os.replace(tmp, dest)
        except OSError:  # another process (a DDP rank) renamed its copy first
            if not (dest / ".complete").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


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
            raise _missing(
                spec["what"],
                name,
                folder,
                md5,
                url,
                extra=f" (or put the whole archive {spec['archive']} in {folder.parent}/)",
            )
        found = md5sum(path)
        if found != md5:
            raise _corrupt(spec["what"], path, md5, found, url)
    return folder


def _load_cifar(key: str, split: str, data_dir: Path, download: bool, coarse: bool) -> ImageSet:
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
        archive = _verified_archive(spec["what"], spec["archive"], data_dir, fetch_fn)
        root = _extracted(archive, ARCHIVE_MD5[spec["archive"]]) / spec["folder"]
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


def _load_idx(key: str, split: str, data_dir: Path, download: bool) -> ImageSet:
    import torchvision.datasets as tvd

    cls = tvd.MNIST if key == "mnist" else tvd.FashionMNIST
    folder = cls.__name__  # torchvision's layout: <root>/MNIST/raw, <root>/FashionMNIST/raw
    what = "MNIST" if key == "mnist" else "Fashion-MNIST"
    raw_dir = data_dir / folder / "raw"
    gz_md5 = dict(cls.resources)
    # torchvision reads the uncompressed idx files (all four must be there); we verify each one
    # and write it to the cache, so a read-only data folder holding only the .gz files works
    # (torchvision would want to extract next to them).
    out_root = cache_dir() / "idx"
    for stem in IDX_RAW_MD5[folder]:
        raw_md5 = IDX_RAW_MD5[folder][stem]
        out = out_root / folder / "raw" / stem
        if out.is_file() and md5sum(out) == raw_md5:
            continue
        content = _verified_idx(what, cls, raw_dir, stem, gz_md5[stem + ".gz"], raw_md5, download)
        _atomic_write(out, content)
    ds = cls(str(out_root), train=split == "train", download=False)
    images = ds.data.unsqueeze(1).contiguous()  # [N, 28, 28] -> [N, 1, 28, 28]
    return ImageSet(images, ds.targets.long(), list(ds.classes), key, split, str(raw_dir))


def _verified_idx(what, cls, raw_dir: Path, stem: str, gz_md5, raw_md5, download) -> bytes:
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
            return content
        raise _corrupt(what, gz, gz_md5, found, url)
    if plain.is_file():
        content = plain.read_bytes()
        found = hashlib.md5(content).hexdigest()
        if found == raw_md5:
            return content
        raise _corrupt(what, plain, raw_md5, found, url)
    raise _missing(what, stem + ".gz", raw_dir, gz_md5, url)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------------- image folders

_CACHE_VERSION = 1


def _checksum(*tensors: torch.Tensor) -> int:
    crc = 0
    for t in tensors:
        crc = zlib.crc32(memoryview(t.contiguous().numpy()).cast("B"), crc)
    return crc


def _save_tensors(path: Path, ds: ImageSet, key: str) -> None:
    state = {
        "version": _CACHE_VERSION,
        "key": key,
        "images": ds.images,
        "labels": ds.labels,
        "classes": list(ds.classes),
        "crc32": _checksum(ds.images, ds.labels),
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    _atomic_write(path, buf.getvalue())


def _load_tensors(path: Path, key: str) -> dict | None:
    """The cached decode at ``path`` if it is intact and made from the same source, else None."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True)
        ok = (
            state.get("version") == _CACHE_VERSION
            and state.get("key") == key
            and _checksum(state["images"], state["labels"]) == state["crc32"]
        )
    except Exception:
        ok = False
    return state if ok else None  # a bad cache is simply rebuilt


def _load_cifar10_jpeg(split: str, data_dir: Path) -> ImageSet:
    file = "cifar10-jpeg.tar.gz"
    archive = _verified_archive("CIFAR-10 (JPEG)", file, data_dir)
    md5 = ARCHIVE_MD5[file]
    cached = cache_dir() / "decoded" / f"cifar10-jpeg-{md5[:12]}-{split}.pt"
    state = _load_tensors(cached, md5)
    if state is None:
        root = _extracted(archive, md5) / "cifar10-jpeg" / split
        ds = _decode_folder(root, None)
        _save_tensors(cached, ds, md5)
        state = {"images": ds.images, "labels": ds.labels, "classes": ds.classes}
    classes = list(state["classes"])
    return ImageSet(state["images"], state["labels"], classes, "cifar10-jpeg", split, str(archive))


def _load_image_folder(path: Path, split: str, image_size: int | None) -> ImageSet:
    """``<path>/<split>/<class>/*`` if that exists (``val`` also counts as test), else
    ``<path>/<class>/*`` split 80/20 per class with a fixed seed."""
    candidates = [path / split] + ([path / "val"] if split == "test" else [])
    root = next((p for p in candidates if p.is_dir()), None)
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
    return ImageSet(ds.images[keep], ds.labels[keep], ds.classes, name, split, str(path))


def _decode_folder_cached(root: Path, image_size: int | None) -> ImageSet:
    """Decode a folder, reusing the cached tensors while no file changed (name, size, mtime)."""
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
    cached = cache_dir() / "decoded" / f"folder-{key[:16]}.pt"
    state = _load_tensors(cached, key)
    if state is not None:
        return ImageSet(state["images"], state["labels"], list(state["classes"]), root.name)
    ds = _decode_folder(root, image_size, folder)
    _save_tensors(cached, ds, key)
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
            "pass image_size=N (--image-size N) to resize the shorter side to N and centre-crop",
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
