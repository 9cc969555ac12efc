"""Weight sharing makes convolution translation-equivariant (seed 000): filtering a shifted
image gives the shifted filtered image, away from the borders; max pooling then makes the map
change less under small shifts (approximate invariance).

``shift_equivariance(image, kernel, dx, dy)`` measures both on a real image; ``cnnlab filter
IMAGE --shift DX,DY`` prints the numbers and ``plot_shift_equivariance`` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.errors import ConfigError, ShapeError
from cnnlab.viz.filters import apply_kernel, get_kernel


@dataclass
class ShiftEquivariance:
    """``f`` = the filter (zero 'same' padding), ``T`` = the shift by (dx, dy) with zero fill.

    ``f_of_shifted`` = f(T x), ``shifted_f`` = T f(x); ``interior`` marks the pixels whose
    window lies inside the image before and after the shift, where the two must be equal.
    Maps are ``H x W`` or ``H x W x C`` like the image.
    """

    image: np.ndarray  # H x W or H x W x C
    kernel: np.ndarray  # kh x kw
    dx: int
    dy: int
    pool: int
    filtered: np.ndarray  # f(x)
    f_of_shifted: np.ndarray  # f(T x)
    shifted_f: np.ndarray  # T f(x)
    interior: np.ndarray  # bool H x W
    interior_error: float  # max |f(T x) - T f(x)| inside
    border_error: float  # max |f(T x) - T f(x)| outside (where zero fill enters)
    conv_change: float  # ||f(T x) - f(x)|| / ||f(x)||, whole map
    pooled_change: float  # the same after max pooling pool x pool, stride pool
    pooled: np.ndarray  # maxpool(f(x))
    pooled_shifted: np.ndarray  # maxpool(f(T x))

    @property
    def equivariant(self) -> bool:
        scale = float(np.abs(self.filtered).max()) or 1.0
        return self.interior_error <= 1e-9 * scale

    def lines(self) -> list[str]:
        """The result in words, for the CLI."""
        h, w = self.interior.shape
        kh, kw = self.kernel.shape
        inside = int(self.interior.sum())
        less = "less" if self.pooled_change < self.conv_change else "MORE"
        return [
            f"shift (dx, dy) = ({self.dx}, {self.dy}) on a {h}x{w} image, {kh}x{kw} kernel",
            f"equivariance f(shift x) = shift f(x): max difference {self.interior_error:.2e} "
            f"on the {inside:,} of {h * w:,} pixels away from the borders "
            f"({'equal' if self.equivariant else 'NOT equal'}); {self.border_error:.3g} at the "
            "borders, where the shift brings in zeros",
            f"change of the map under the shift, ||f(shift x) - f(x)|| / ||f(x)||: "
            f"{self.conv_change:.3f}; after {self.pool}x{self.pool} max pooling "
            f"(stride {self.pool}): {self.pooled_change:.3f} ({less})",
        ]


def shift(x, dx: int, dy: int) -> np.ndarray:
    """``x`` (``H x W`` or ``H x W x C``) moved right by ``dx`` and down by ``dy`` (negative:
    left/up); the pixels that enter are zero (no wrap-around)."""
    x = np.asarray(x)
    out = np.zeros_like(x)
    h, w = x.shape[:2]
    src_r, dst_r = slice(max(-dy, 0), h - max(dy, 0)), slice(max(dy, 0), h - max(-dy, 0))
    src_c, dst_c = slice(max(-dx, 0), w - max(dx, 0)), slice(max(dx, 0), w - max(-dx, 0))
    out[dst_r, dst_c] = x[src_r, src_c]
    return out


def _same(x, k):
    """``apply_kernel`` with 'same' zero padding (the extra row/column of an even kernel at the
    bottom/right, as PyTorch's padding='same')."""
    kh, kw = k.shape
    pads = [((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)] + [(0, 0)] * (x.ndim - 2)
    return apply_kernel(np.pad(x, pads), k)


def max_pool(x, p: int) -> np.ndarray:
    """Non-overlapping ``p x p`` max pooling (stride p; a partial last row/column dropped)."""
    h, w = (x.shape[0] // p) * p, (x.shape[1] // p) * p
    x = x[:h, :w]
    return x.reshape(h // p, p, w // p, p, *x.shape[2:]).max(axis=(1, 3))


def shift_equivariance(image, kernel, dx: int, dy: int, pool: int = 2) -> ShiftEquivariance:
    """Measure translation equivariance of ``kernel`` on ``image`` for a shift (dx, dy), and how
    much a ``pool`` x ``pool`` max pooling reduces the change (see the module docstring).

    ``image``: ``H x W`` or ``H x W x C`` (each channel filtered alone, as ``cnnlab filter``);
    ``kernel``: a ``kh x kw`` array or a ``cnnlab filter`` kernel name. Raises ``ShapeError``
    when the shift leaves no pixel away from the borders.
    """
    x = np.asarray(image, dtype=np.float64)
    k = get_kernel(kernel)
    if x.ndim not in (2, 3):
        raise ShapeError(f"the image must be H x W or H x W x C, got shape {list(x.shape)}")
    if (
        isinstance(dx, bool)
        or isinstance(dy, bool)
        or not (isinstance(dx, (int, np.integer)) and isinstance(dy, (int, np.integer)))
    ):
        raise ConfigError(f"the shift must be whole pixels, got ({dx!r}, {dy!r})")
    h, w = x.shape[:2]
    kh, kw = k.shape
    if isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 1:
        raise ConfigError(f"pool must be a whole number >= 1, got {pool!r}")
    if pool > min(h, w):
        raise ConfigError(f"pool {pool} is larger than the {h}x{w} image", "use --pool 2")
    pt, pb, pl, pr = (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2
    rows = (pt + max(dy, 0), h - pb + min(dy, 0))  # window inside before and after the shift
    cols = (pl + max(dx, 0), w - pr + min(dx, 0))
    if rows[0] >= rows[1] or cols[0] >= cols[1]:
        raise ShapeError(
            f"a shift of ({dx}, {dy}) leaves no pixel away from the borders of a {h}x{w} "
            f"image with a {kh}x{kw} kernel",
            f"use |dx| < {max(w - kw + 1, 1)} and |dy| < {max(h - kh + 1, 1)} (a few pixels "
            "show it best)",
        )
    fx = _same(x, k)
    f_t = _same(shift(x, dx, dy), k)
    t_f = shift(fx, dx, dy)
    interior = np.zeros((h, w), dtype=bool)
    interior[rows[0] : rows[1], cols[0] : cols[1]] = True
    diff = np.abs(f_t - t_f)
    pooled, pooled_t = max_pool(fx, pool), max_pool(f_t, pool)

    def change(a, b):
        norm = float(np.linalg.norm(b))
        return float(np.linalg.norm(a - b)) / norm if norm else 0.0

    return ShiftEquivariance(
        image=x,
        kernel=k,
        dx=int(dx),
        dy=int(dy),
        pool=int(pool),
        filtered=fx,
        f_of_shifted=f_t,
        shifted_f=t_f,
        interior=interior,
        interior_error=float(diff[interior].max()),
        border_error=float(diff[~interior].max()) if bool((~interior).any()) else 0.0,
        conv_change=change(f_t, fx),
        pooled_change=change(pooled_t, pooled),
        pooled=pooled,
        pooled_shifted=pooled_t,
    )


def plot_shift_equivariance(result: ShiftEquivariance, path, title: str = ""):
    """A PNG: image, f(x), f(shift x), shift f(x), their difference (borders only), and the
    max-pooled maps before and after the shift."""
    from cnnlab.viz.figure import check_output, save_figure
    from cnnlab.viz.plots import _pyplot

    path = check_output(path)
    plt = _pyplot()

    def gray(a):
        return a if a.ndim == 2 else a.mean(2)

    diff = np.abs(gray(result.f_of_shifted) - gray(result.shifted_f))
    panels = [
        ("image x", gray(result.image)),
        ("f(x)", gray(result.filtered)),
        (f"f(shift x), shift ({result.dx}, {result.dy})", gray(result.f_of_shifted)),
        ("shift f(x)", gray(result.shifted_f)),
        (f"|difference|: max {result.interior_error:.1e} inside", diff),
        (f"maxpool f(x) ({result.pool}x{result.pool})", gray(result.pooled)),
        (f"maxpool f(shift x): change {result.pooled_change:.2f}", gray(result.pooled_shifted)),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.2))
    for ax, (name, a) in zip(axes, panels):
        ax.imshow(a, cmap="gray")
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    inner = result.interior
    rows, cols = np.where(inner)
    axes[4].add_patch(
        plt.Rectangle(
            (cols.min() - 0.5, rows.min() - 0.5),
            cols.max() - cols.min() + 1,
            rows.max() - rows.min() + 1,
            fill=False,
            edgecolor="red",
            linewidth=1,
        )
    )
    fig.suptitle(
        title or f"conv change {result.conv_change:.2f} vs pooled {result.pooled_change:.2f}"
    )
    fig.tight_layout()
    return save_figure(fig, path)
