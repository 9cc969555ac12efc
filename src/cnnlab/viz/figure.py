"""Saving matplotlib figures: PNG bytes written atomically, so a failed or interrupted plot never
leaves a half-written file."""

from __future__ import annotations

import io
from pathlib import Path


def save_figure(fig, path, dpi: int = 100) -> Path:
    """Render ``fig`` to PNG in memory, write it to ``path`` atomically, close the figure."""
    import matplotlib.pyplot as plt

    from cnnlab.training.checkpoint import _atomic_write

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    path = Path(path)
    _atomic_write(path, lambda f: f.write(buf.getvalue()))
    return path
