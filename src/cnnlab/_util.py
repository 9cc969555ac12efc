"""Small helpers every part shares, each written once: atomic writes, input-size parsing,
number formatting, seeds and the epoch permutation, and the CPU's name for benchmark headers.

No torch at import time (arithmetic and scratch, which never import torch, use this module).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from cnnlab.errors import ConfigError

__all__ = [
    "atomic_write",
    "cpu_name",
    "derive_seed",
    "epoch_permutation",
    "fmt_count",
    "parse_input",
]


# ------------------------------------------------------------------------------ atomic writes


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_CREATE_MODE = 0o666 & ~_umask()  # what a plain open(path, "w") would create


def _why_not(path: Path, e: OSError) -> str:
    """Why ``path``'s folder cannot be made: a file in the way reads better than EEXIST."""
    for parent in path.parents:
        if parent.exists():
            return e.strerror if parent.is_dir() else f"{parent} is a file, not a folder"
    return e.strerror


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    ``data`` is bytes, text (UTF-8) or a function ``write(fileobj)``. The bytes go to a hidden
    temporary file in the same folder, are flushed and fsync'ed, then renamed over ``path``
    (``os.replace`` is atomic on POSIX and Windows); the folder is fsync'ed so the rename
    survives a power cut. On any failure, including Ctrl-C, the temporary file is removed and
    ``path`` is untouched.
    """
    path = Path(path)
    if path.is_dir():  # else the rename fails naming the hidden temporary file
        raise OSError(errno.EISDIR, f"cannot write {path} (it is a folder: give a file name)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # name the file asked for, not the hidden temporary one
        raise OSError(e.errno, f"cannot write {path} ({_why_not(path, e)})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _CREATE_MODE)  # mkstemp makes 0600; give the mode open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some filesystems cannot fsync a folder
        pass
    return path


# ------------------------------------------------------------------------------ input sizes

_SEP = re.compile(r"\s*[x×X*,]\s*")
_FORM = "expected CxHxW like 3x227x227 (channels first)"


def parse_input(
    text, *, flat: bool = False, flag: str = "--input", on_note: Callable[[str], None] | None = None
) -> tuple[int, ...]:
    """``"3x224x224"`` -> ``(3, 224, 224)``: the one parser of input sizes.

    cnnlab writes sizes channels first (CxHxW, PyTorch's order). The seeds also write H x W x C
    (``32x32x3``): when the last number is 1, 3 or 4, the first is larger than 4 and the last two
    differ, that is read as HxWxC and ``on_note`` (default: a ``UserWarning``) is told. When the
    last two are equal (``512x1x1``, ``256x3x3``: a square map after pooling) it stays CxHxW.
    Where the reading is a guess (``32x32x64``), the note says which order was used.
    ``flat=True`` also accepts one number (a flat vector, for fully connected layers).
    A tuple or list of ints is accepted as is (CxHxW).
    """
    if isinstance(text, (tuple, list)):
        try:
            dims = tuple(int(d) for d in text)
        except (TypeError, ValueError):
            dims = ()
        if not dims or any(d <= 0 or d != x for d, x in zip(dims, text)):
            raise ConfigError(
                f"input size must hold positive integers like (3, 224, 224), got {text!r}",
                "give the input as C, H, W (no batch dimension)",
            )
        return dims
    form = _FORM + (", or a single number for fc" if flat else "")
    parts = _SEP.split(str(text).strip()) if isinstance(text, str) else []
    if not parts or not all(p.isdigit() for p in parts):
        raise ConfigError(f"malformed {flag} {text!r}", form)
    dims = tuple(int(p) for p in parts)
    if any(d <= 0 for d in dims):
        raise ConfigError(
            f"malformed {flag} {text!r}: a dimension is zero",
            "every dimension must be > 0; " + form,
        )
    if len(dims) == 1 and flat:
        return dims
    if len(dims) != 3:
        example = f"3x{dims[0]}x{dims[0]}" if len(dims) == 1 else "3x224x224"
        raise ConfigError(
            f"malformed {flag} {text!r}: {len(dims)} number{'s' * (len(dims) > 1)}, not 3",
            f"write it as CxHxW (channels first), e.g. {flag} {example}",
        )
    a, b, c = dims
    note = on_note or (lambda m: warnings.warn(m, UserWarning, stacklevel=3))
    if c in (1, 3, 4) and a > 4 and b != c:
        note(
            f"read {flag} {text} as H x W x C (the seeds' order); cnnlab writes C x H x W: "
            f"{c}x{a}x{b}"
        )
        return (c, a, b)
    if a == b and c != a and a > 4 and c > 4:
        note(
            f"read {flag} {text} as C x H x W (C={a}, H={b}, W={c}); "
            f"if you meant H x W x C, write {c}x{a}x{b}"
        )
    return dims


# ------------------------------------------------------------------------------ numbers


def parse_size(text: str | None, flag: str, *, minimum: int = 1):
    """A size flag (kernel, stride, feature map): ``'3'`` -> 3, ``'3x5'`` -> (3, 5)."""
    if text is None:
        return None
    parts = _SEP.split(str(text).strip())
    if len(parts) not in (1, 2) or not all(p.isdigit() and int(p) >= minimum for p in parts):
        raise ConfigError(
            f"malformed {flag} {text!r}",
            f"expected a whole number >= {minimum} like 3, or HxW like 3x5",
        )
    values = tuple(int(p) for p in parts)
    return values[0] if len(values) == 1 else values


def fmt_count(n: float | None, unit: str = "") -> str:
    """Operation and parameter counts the way the tables print them: ``72.9M``, ``419.9K``,
    ``1.82G`` (two decimals from G up, one below), ``""`` for zero or None."""
    if not n:
        return ""
    for div, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            digits = 2 if prefix in "GT" else 1
            return f"{n / div:,.{digits}f}{prefix}{unit}"
    return f"{n:g}{unit}"


# ------------------------------------------------------------------------------ seeds


@contextlib.contextmanager
def frozen_heap():
    """Keep the objects that exist now (the ~300k that importing torch and cnnlab creates) out
    of the garbage collector's full passes while the block runs, then hand them back. Each
    full pass walks every tracked object: 0.18 s, taken once in a LeNet-5 run that lasts 4 s
    (benchmarks/RESULTS.md). Usable as a decorator."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def derive_seed(*parts) -> int:
    """The one seeding mechanism: a 63-bit seed from any parts, e.g. ``(seed, step, rank)``.

    Every random stream of a run (initial weights, each step's augmentation and dropout, each
    epoch's order, the hold-out split) is seeded from the run's seed and where it is used, so a
    run's whole random state is a few integers and ``--resume`` repeats it exactly."""
    h = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


def epoch_permutation(n: int, seed: int, epoch: int):
    """The order of epoch ``epoch``: a permutation of ``range(n)`` (int64 tensor) that depends
    only on ``(seed, epoch)``, shared by the single-process loader and every DDP rank."""
    import torch

    g = torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch))
    return torch.randperm(n, generator=g)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere), which
    benchmark headers print beside their figures."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
