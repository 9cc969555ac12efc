"""Checkpoints that survive crashes and say when they are damaged.

A checkpoint is a plain dict of tensors, dicts, lists, numbers and strings, so it loads with
``torch.load(path, weights_only=True)`` (no pickled code runs on load). Writes are atomic:
the bytes go to a temporary file in the same folder, are flushed and fsync'ed, and only then
renamed over the old file with ``os.replace`` -- a crash mid-write leaves the previous
checkpoint intact. A ``<file>.sha256`` beside each checkpoint (``sha256sum`` format) lets
:func:`load_checkpoint` tell a truncated or corrupted file from a good one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from cnnlab.errors import DataError

FORMAT = "cnnlab-checkpoint"
VERSION = 1


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # incl. KeyboardInterrupt: never leave a half-written temp file
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some filesystems cannot fsync a directory
        pass


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Atomically write ``state`` to ``path`` and its SHA-256 to ``path.sha256``."""
    path = Path(path)
    state = {"format": FORMAT, "version": VERSION, **state}
    digest = hashlib.sha256()

    def write(f):
        class _Hashing:  # hash the bytes on their way to disk: no second read of the file
            def write(self, b):
                digest.update(b)
                return f.write(b)

            def flush(self):
                f.flush()

        torch.save(state, _Hashing())

    _atomic_write(path, write)
    line = f"{digest.hexdigest()}  {path.name}\n".encode()
    _atomic_write(path.with_name(path.name + ".sha256"), lambda f: f.write(line))
    return path


def verify_checkpoint(path: str | Path) -> None:
    """Raise :class:`DataError` if ``path`` is missing or does not match its ``.sha256``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"checkpoint {path} does not exist",
            "give a .pt file written by `cnnlab train` (runs/<name>/best.pt or last.pt)",
        )
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        return  # a checkpoint from elsewhere: nothing to check against
    want = sidecar.read_text().split()[0] if sidecar.read_text().strip() else ""
    got = sha256_file(path)
    if got != want:
        raise DataError(
            f"checkpoint {path} is corrupt: its SHA-256 is {got[:16]}..., "
            f"but {sidecar.name} records {want[:16]}...",
            "the file was truncated or changed after it was written; use the other checkpoint "
            "of the run (best.pt / last.pt) or train again",
        )


def load_checkpoint(path: str | Path, *, verify: bool = True, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` after checking its SHA-256."""
    path = Path(path)
    if verify:
        verify_checkpoint(path)
    elif not path.is_file():
        raise DataError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, not a torch file, unsafe pickle content
        raise DataError(
            f"cannot read checkpoint {path}: {type(e).__name__}: {str(e).splitlines()[0]}",
            "the file is damaged or not a PyTorch checkpoint",
        ) from None
    return state
