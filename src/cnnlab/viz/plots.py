"""Training curves and confusion matrices as PNG files (written atomically).

matplotlib is imported inside the functions with the non-interactive Agg backend, so plotting
works on a headless machine and ``import cnnlab.viz`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path

from cnnlab._util import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _series(history: list[dict], key: str):
    pts = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_history(history: list[dict], out_dir: str | Path, title: str = "") -> list[Path]:
    """``loss.png`` and ``accuracy.png`` from the per-epoch rows of ``metrics.csv``
    (keys ``epoch``, ``train_loss``, ``val_loss``, ``train_top1``, ``val_top1``, ``val_top5``)."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    paths = []
    panels = [
        ("loss.png", "loss", [("train_loss", "train"), ("val_loss", "validation")]),
        ("accuracy.png", "accuracy (%)",
         [("train_top1", "train top-1"), ("val_top1", "val top-1"), ("val_top5", "val top-5")]),
    ]  # fmt: skip
    for fname, ylabel, keys in panels:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for key, label in keys:
            xs, ys = _series(history, key)
            if xs:
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        if title:
            ax.set_title(title)
        fig.tight_layout()
        path = out_dir / fname
        atomic_write(path, lambda f, fig=fig: fig.savefig(f, format="png"))
        plt.close(fig)
        paths.append(path)
    return paths


def plot_confusion(confusion, classes: list[str], path: str | Path, title: str = "") -> Path:
    """A row-normalised confusion matrix (true class down, predicted across); counts are
    printed in the cells when there are at most 20 classes."""
    import numpy as np

    plt = _pyplot()
    c = np.asarray(confusion, dtype=np.float64)
    k = c.shape[0]
    rows = c.sum(1, keepdims=True)
    norm = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    size = min(14.0, max(4.0, 0.45 * k + 2))
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if k <= 40:
        names = list(classes) if len(classes) == k else [str(i) for i in range(k)]
        ax.set_xticks(range(k), names, rotation=90, fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if c[i, j]:
                    ax.text(j, i, int(c[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return path


def montage(tiles, cols: int, fill: float = 1.0, gap: int = 1):
    """``[N, h, w, c]`` tiles as one ``[rows*(h+gap)+gap, cols*(w+gap)+gap, c]`` image, row by
    row, with ``gap`` pixels of ``fill`` between them (one imshow instead of N subplots)."""
    import numpy as np

    tiles = np.asarray(tiles)
    n, h, w, c = tiles.shape
    rows = -(-n // cols)
    canvas = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, c), fill, tiles.dtype)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + q * (w + gap)
        canvas[y : y + h, x : x + w] = tiles[i]
    return canvas
