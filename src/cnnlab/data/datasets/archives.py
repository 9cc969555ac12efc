"""The official archives and files: their md5s and URLs, verification with messages that name
the file, the folder and the fix, and safe extraction into the cache."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from cnnlab.data.datasets.cache import cache_dir, file_checksum
from cnnlab.errors import DataError

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

md5sum = file_checksum  # the archives' md5s are the checksums the cache records


def missing(what: str, file: str, folder: Path, md5: str | None, url: str | None, extra=""):
    where = f"put {file}" + (f" (md5 {md5})" if md5 else "") + f" in {folder}/"
    fetch = f"; download it from {url}" if url else ""
    online = " or pass download=True / --download when online," if url else ""
    return DataError(
        f"{what} not found: {folder / file} does not exist{extra}",
        f"{where}{fetch};{online} or point --data-dir (or $CNNLAB_DATA) at the folder "
        "that holds it",
    )


def corrupt(what: str, path: Path, expected: str, found: str, url: str | None):
    fetch = f" from {url}" if url else ""
    return DataError(
        f"{what}: {path} is corrupt or incomplete (md5 {found}, expected {expected})",
        f"delete it and put a good copy of {path.name} (md5 {expected}) in {path.parent}/{fetch}",
    )


def verified_archive(what: str, file: str, data_dir: Path, download_fn=None) -> Path:
    """The archive ``data_dir/file``, downloaded if asked and absent, with its md5 checked."""
    path = data_dir / file
    expected, url = ARCHIVE_MD5[file], ARCHIVE_URL.get(file)
    if not path.is_file() and download_fn is not None:
        download_fn()
    if not path.is_file():
        raise missing(what, file, data_dir, expected, url)
    found = md5sum(path)
    if found != expected:
        raise corrupt(what, path, expected, found, url)
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


def extracted(archive: Path, md5: str) -> Path:
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
