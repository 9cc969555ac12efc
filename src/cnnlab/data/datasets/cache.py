"""The cache of derived data: decoded tensors and extracted archives under ``$CNNLAB_CACHE``
(default ``~/.cache/cnnlab``), each tied to the files it was made from.

A decoded entry (``decoded/<name>.pt``) records every source file's resolved path, size,
modification time and checksum. It is used only while each source is still there and
unchanged -- same size and time, or, when those moved, the same checksum -- so a typo in
``--data-dir``, a deleted or a replaced file is never hidden by an old cache: the loader reads
the sources again (and fails with their own message when they are absent or corrupt). A damaged
entry (checked by a CRC of its tensors) is rebuilt. ``cnnlab cache`` lists the entries with
their sizes and ``cnnlab cache clear`` removes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import zlib
from pathlib import Path

import torch

from cnnlab._util import atomic_write

VERSION = 2


def cache_dir() -> Path:
    return Path(os.environ.get("CNNLAB_CACHE") or Path.home() / ".cache" / "cnnlab")


def default_data_dir() -> Path:
    """Where dataset files are looked for without --data-dir: $CNNLAB_DATA or
    ~/.cache/cnnlab/data."""
    return Path(os.environ.get("CNNLAB_DATA") or Path.home() / ".cache" / "cnnlab" / "data")


def file_checksum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def source_record(path: str | os.PathLike, checksum: str | None = None) -> dict:
    """What ties a cache entry to one source file: path, size, mtime and checksum."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "md5": checksum or file_checksum(p)}  # fmt: skip


def source_unchanged(rec: dict) -> bool:
    p = Path(rec["path"])
    try:
        st = p.stat()
    except OSError:
        return False
    if st.st_size != rec["size"]:
        return False
    return st.st_mtime_ns == rec["mtime_ns"] or file_checksum(p) == rec["md5"]


def _crc(*tensors: torch.Tensor) -> int:
    crc = 0
    for t in tensors:
        crc = zlib.crc32(memoryview(t.contiguous().numpy()).cast("B"), crc)
    return crc


class TensorCache:
    """Decoded datasets as tensor files, ``decoded/<name>.pt``, tied to their source files."""

    def __init__(self, name: str):
        self.path = cache_dir() / "decoded" / f"{name}.pt"

    def load(self, key: str = "") -> dict | None:
        """The entry if it is intact, made with ``key`` and every source is unchanged."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, weights_only=True)
            ok = (
                state.get("version") == VERSION
                and state.get("key") == key
                and _crc(state["images"], state["labels"]) == state["crc32"]
                and all(source_unchanged(r) for r in state["sources"])
            )
        except Exception:
            ok = False
        return state if ok else None  # stale or damaged: the caller reads the sources again

    def save(self, images, labels, classes, sources: list[dict], key: str = "") -> None:
        state = {"version": VERSION, "key": key, "images": images, "labels": labels,
                 "classes": list(classes), "sources": sources,
                 "crc32": _crc(images, labels)}  # fmt: skip
        buf = io.BytesIO()
        torch.save(state, buf)
        with contextlib.suppress(OSError):  # an unwritable cache only costs time
            atomic_write(self.path, buf.getvalue())


def entries() -> list[tuple[Path, int]]:
    """``(path, bytes)`` of every cache entry: decoded datasets, extracted archives, and other
    files (the zoo table), largest first."""
    root = cache_dir()
    out = []
    for sub in ("decoded", "extracted", "idx"):
        for p in sorted((root / sub).iterdir()) if (root / sub).is_dir() else []:
            out.append((p, _size(p)))
    for p in sorted(root.glob("*.json")) if root.is_dir() else []:
        out.append((p, _size(p)))
    return sorted(out, key=lambda e: -e[1])


def _size(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def clear() -> tuple[int, int]:
    """Remove every cache entry; returns ``(entries, bytes)`` removed. The source datasets in
    the data folder are never touched."""
    removed = entries()
    for p, _ in removed:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return len(removed), sum(n for _, n in removed)
