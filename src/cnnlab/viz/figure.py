"""Writing a finished matplotlib figure: atomically, in the format the file name asks for."""

from __future__ import annotations

import io
from pathlib import Path

from cnnlab.errors import ConfigError

FORMATS = ("png", "svg", "pdf", "jpg", "jpeg")


def check_output(path) -> Path:
    """Fail before any work when the output name has no picture suffix we can write."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        what = f"unknown picture format .{fmt}" if fmt else "the name has no picture suffix"
        raise ConfigError(
            f"cannot write {path.name}: {what}", "end the output name in .png, .svg or .pdf"
        )
    if path.parent != Path("") and path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: {path.parent} is not a folder")
    return path


def figure_bytes(fig, fmt: str = "png", dpi: int | None = None) -> bytes:
    """The figure encoded as ``fmt`` (then closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def save_figure(fig, path, dpi: int | None = None) -> Path:
    """Save ``fig`` to ``path`` (PNG, SVG, PDF or JPEG by the suffix) atomically and close it:
    a crash or Ctrl-C never leaves half a picture."""
    from cnnlab._util import atomic_write

    path = check_output(path)
    data = figure_bytes(fig, path.suffix.lstrip(".").lower(), dpi)
    atomic_write(path, lambda f: f.write(data))
    return path
