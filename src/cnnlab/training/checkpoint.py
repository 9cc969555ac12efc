"""Checkpoints that survive crashes and say when they are damaged.

A checkpoint is a plain dict of tensors, dicts, lists, numbers and strings, so it loads with
``torch.load(path, weights_only=True)`` (no pickled code runs on load). It is written with
:func:`cnnlab._util.atomic_write` (temporary file, fsync, one rename), and its checksum lives
*inside* the file: ``"sha256"`` is the SHA-256 of its content (every tensor's bytes, dtype and
shape, every key and value), so the file and its checksum are replaced together by the one
rename -- a crash can never leave a good file beside a stale checksum -- and a copy moved out of
its run folder is still verified. :func:`load_checkpoint` recomputes it and refuses a file
whose content changed. Files of cnnlab 0.1 (checksum in a ``<file>.sha256`` beside the file)
are still verified against that sidecar.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from cnnlab._util import atomic_write
from cnnlab.errors import DataError

FORMAT = "cnnlab-checkpoint"
VERSION = 2
_ANY_RUN = "give a .pt file written by `cnnlab train` (runs/<name>/best.pt or last.pt)"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def content_digest(obj) -> str:
    """SHA-256 of a checkpoint's content: keys, values, and each tensor's dtype, shape, bytes."""
    h = hashlib.sha256()

    def walk(x):
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(x, dict):
            h.update(f"D{len(x)}".encode())
            for k, v in x.items():
                walk(k)
                walk(v)
        elif isinstance(x, (list, tuple)):
            h.update(f"{type(x).__name__[0]}{len(x)}".encode())
            for v in x:
                walk(v)
        else:
            h.update(f"{type(x).__name__}:{x!r};".encode())

    walk(obj)
    return h.hexdigest()


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Atomically write ``state`` (with its content checksum inside) to ``path``."""
    path = Path(path)
    from cnnlab import __version__

    state = {"format": FORMAT, "version": VERSION, "written_by": f"cnnlab {__version__}", **state}
    state.pop("sha256", None)
    state["sha256"] = content_digest(state)
    atomic_write(path, lambda f: _save(state, f))
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)  # a 0.1 sidecar is stale now
    return path


def _save(state: dict, f) -> None:
    """``torch.save`` that lets a disk error through as the ``OSError`` it is: torch's zip
    writer turns it into ``RuntimeError: unexpected pos 15872 vs 15824``, which says nothing of
    a full disk."""

    class _Writer:
        error: OSError | None = None

        def write(self, b):
            try:
                return f.write(b)
            except OSError as e:
                self.error = e
                raise

        def flush(self):
            f.flush()

    w = _Writer()
    try:
        torch.save(state, w)
    except RuntimeError:
        if w.error is not None:
            raise w.error from None
        raise


def _corrupt(path: Path, got: str, want: str, where: str) -> DataError:
    return DataError(
        f"checkpoint {path} is corrupt: its content hashes to {got[:16]}..., but {where} "
        f"records {want[:16]}...",
        "the file was truncated or changed after it was written; use the other checkpoint "
        "of the run (best.pt / last.pt) or train again",
    )


def load_checkpoint(path: str | Path, *, verify: bool = True, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` and check its content checksum.

    Raises :class:`DataError` for a missing file, a folder, a file that is not a checkpoint
    (empty, truncated, another format) and a file whose content no longer matches its checksum.
    A plain state dict without a checksum (e.g. torchvision's) loads unchecked.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"checkpoint {path} is a folder, not a file", _ANY_RUN)
    if not path.is_file():
        raise DataError(f"checkpoint {path} does not exist", _ANY_RUN)
    sidecar = path.with_name(path.name + ".sha256")
    if verify and sidecar.is_file():  # cnnlab 0.1: checksum of the file's bytes beside it
        want = (sidecar.read_text().split() or [""])[0]
        got = sha256_file(path)
        if got != want:
            raise _corrupt(path, got, want, sidecar.name)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, not a torch file, unsafe pickle content
        first = (str(e).splitlines() or [""])[0][:200]
        raise DataError(
            f"cannot read checkpoint {path}: it is corrupt, truncated or not a PyTorch "
            f"checkpoint ({type(e).__name__}: {first})",
            "use the other checkpoint of the run (best.pt / last.pt), or "
            + _ANY_RUN[0].lower()
            + _ANY_RUN[1:],
        ) from None
    if not isinstance(state, dict):
        raise DataError(
            f"checkpoint {path} holds a {type(state).__name__}, not a dict of weights", _ANY_RUN
        )
    if verify and "sha256" in state:
        want = state.pop("sha256")
        got = content_digest(state)
        if got != want:
            raise _corrupt(path, got, str(want), "the checksum stored in it")
    return state


def load_weights(module: torch.nn.Module, weights: dict, source: str, model: str,
                 written_by: str | None = None) -> None:  # fmt: skip
    """``module.load_state_dict(weights)``, checked first (``models.weights.check_fits``):
    weights that do not fit the module (a checkpoint of another cnnlab version, or of other
    model options) raise a :class:`DataError` naming the first tensor that differs and who
    wrote the file, instead of torch's list of every key."""
    from cnnlab.errors import ConfigError
    from cnnlab.models.weights import check_fits

    try:
        check_fits(module.state_dict(), weights, repr(model), source)
    except ConfigError as e:
        raise DataError(
            f"{source}: {e.message}",
            f"it was written by {written_by or 'an older cnnlab'} or with other model options; "
            "retrain it with this version, or load it with the version that wrote it",
        ) from None
    module.load_state_dict(weights)
