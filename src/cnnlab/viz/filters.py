"""Filters: hand-made image kernels (seed 000, seed 004 §1) and the kernels a network learned.

``apply_kernel`` slides a kernel over an image the way a conv layer does: a weighted sum at
every position (cross-correlation, what PyTorch and every framework compute), with stride and
zero padding; ``flip=True`` turns the kernel 180 degrees first, which gives true convolution;
``average=True`` divides by the kernel's cell count, seed 000's "element-wise multiplication
and average". ``filter_grid`` lays out a conv layer's weights as the tiles of the ZFNet and
AlexNet figures: the first layer in RGB, deeper layers one tile per input channel or their mean,
each kernel normalised on its own.
"""

from __future__ import annotations

import re
import warnings
from fractions import Fraction

import numpy as np

from cnnlab.errors import ConfigError, ShapeError, suggest

# Built-in kernels (cnnlab filter --list). Values as image-processing texts give them.
KERNELS: dict[str, tuple[str, list[list[float]]]] = {
    "identity": ("leaves the image as it is", [[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    "box-blur": ("mean of the 3x3 neighbourhood", [[1 / 9] * 3] * 3),
    "gaussian-blur": (
        "3x3 binomial approximation of a Gaussian",
        [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    ),
    "sharpen": ("centre minus its 4 neighbours", [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "emboss": ("diagonal relief", [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    "outline": ("Laplacian-style edge detector", [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    "sobel-x": ("horizontal gradient (vertical edges)", [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "sobel-y": ("vertical gradient (horizontal edges)", [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
}


def get_kernel(spec) -> np.ndarray:
    """A kernel from a built-in name, a ``"a,b,c;d,e,f;g,h,i"`` string or a 2-D array."""
    if not isinstance(spec, str):
        k = np.asarray(spec, dtype=np.float64)
        if k.ndim != 2 or k.size == 0:
            raise ConfigError(f"a kernel must be a non-empty 2-D array, got shape {k.shape}")
        return _check_entries(k, "the kernel")
    text = spec.strip()
    if text in KERNELS:
        return np.array(KERNELS[text][1], dtype=np.float64)
    if not re.search(r"[,;\s]", text) and not _is_number(text):  # a name, not numbers
        raise ConfigError(
            f"unknown kernel {text!r}",
            (suggest(text, KERNELS) or f"built-in kernels: {', '.join(KERNELS)}")
            + '; or give the numbers row by row: "a,b,c;d,e,f;g,h,i"',
        )
    rows = [r for r in text.split(";")]
    cells = [[c for c in re.split(r"[,\s]+", r.strip()) if c] for r in rows]
    if any(not r for r in cells):
        raise ConfigError(
            f"malformed kernel {spec!r}: an empty row",
            'write rows separated by ";" and numbers by ",", e.g. "0,-1,0;-1,5,-1;0,-1,0"',
        )
    bad = [c for r in cells for c in r if not _is_number(c)]
    if bad:
        raise ConfigError(
            f"malformed kernel {spec!r}: {bad[0]!r} is not a number",
            'write rows separated by ";" and numbers by ",", e.g. "0,-1,0;-1,5,-1;0,-1,0"',
        )
    lengths = [len(r) for r in cells]
    if len(set(lengths)) != 1:
        raise ConfigError(
            f"malformed kernel {spec!r}: ragged rows of {', '.join(map(str, lengths))} numbers",
            "every row of a kernel needs the same number of values",
        )
    return _check_entries(np.array([[float(c) for c in r] for r in cells], dtype=np.float64), spec)


# Larger entries overflow float64 in the weighted sums (255 * 1e308 is inf) and break the
# picture's scaling; no image-processing kernel comes near this.
MAX_ENTRY = 1e6


def _check_entries(k: np.ndarray, what) -> np.ndarray:
    """Refuse nan/inf and entries beyond +-MAX_ENTRY, naming the first bad one."""
    bad = ~np.isfinite(k) | (np.abs(k) > MAX_ENTRY)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        v = float(k[i, j])
        name = what if what == "the kernel" else f"kernel {what!r}"
        problem = (
            "is not a finite number"
            if not np.isfinite(v)
            else f"is outside -{MAX_ENTRY:g}..{MAX_ENTRY:g}"
        )
        raise ConfigError(
            f"{name}: entry {v:g} (row {i + 1}, column {j + 1}) {problem}",
            f"kernel entries must be finite numbers between -{MAX_ENTRY:g} and {MAX_ENTRY:g}; "
            "scale the kernel down (e.g. divide every entry by the same number)",
        )
    return k


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def apply_kernel(image, kernel, stride=1, pad=0, flip=False, average=False) -> np.ndarray:
    """Slide ``kernel`` over ``image`` (``H x W`` or ``H x W x C``, per channel).

    Cross-correlation like ``torch.nn.functional.conv2d``: ``out[i, j] = sum_uv
    img[i*S + u, j*S + v] * k[u, v]`` after ``pad`` zeros on every side; ``flip=True``
    rotates the kernel 180 degrees first (true convolution, ``scipy.signal.convolve2d``);
    ``average=True`` divides by the number of kernel cells. Returns float64, ``H' x W'``
    (``x C``) with ``H' = floor((H - K + 2P)/S) + 1``.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim not in (2, 3):
        raise ShapeError(f"image must be H x W or H x W x C, got shape {img.shape}")
    k = get_kernel(kernel)
    if flip:
        k = k[::-1, ::-1]
    if average:
        k = k / k.size
    stride, pad = _positive(stride, "stride", 1), _positive(pad, "pad", 0)
    planes = img[:, :, None] if img.ndim == 2 else img
    if pad:
        planes = np.pad(planes, ((pad, pad), (pad, pad), (0, 0)))
    kh, kw = k.shape
    if planes.shape[0] < kh or planes.shape[1] < kw:
        raise ShapeError(
            f"the {kh}x{kw} kernel is larger than the {img.shape[0]}x{img.shape[1]} image "
            f"padded by {pad}",
            "use a smaller kernel or more padding (--pad)",
        )
    windows = np.lib.stride_tricks.sliding_window_view(planes, (kh, kw), axis=(0, 1))
    windows = windows[::stride, ::stride]  # [H', W', C, kh, kw]
    out = np.einsum("ijcuv,uv->ijc", windows, k)
    return out[:, :, 0] if img.ndim == 2 else out


def _positive(value, name, minimum) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def output_size_working(h: int, w: int, kernel: np.ndarray, stride: int, pad: int) -> list[str]:
    """The output size with its working, from cnnlab.arithmetic (floored as frameworks do)."""
    from cnnlab.arithmetic import FlooredSizeWarning, conv_output_size
    from cnnlab.arithmetic.core import size_expression

    lines = []
    for axis, n, kk in (("H", h, kernel.shape[0]), ("W", w, kernel.shape[1])):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FlooredSizeWarning)
            size = conv_output_size(n, kk, stride, pad, strict=False)
        exact = Fraction(n + 2 * pad - kk, stride) + 1
        expr = size_expression(n, kk, stride, pad, pad)
        if exact.denominator == 1:
            lines.append(f"output {axis} = {expr} = {size}")
        else:
            lines.append(
                f"output {axis} = {expr} = {float(exact):g} -> floor {size} (as frameworks do)"
            )
    return lines


def _fmt_cell(v: float) -> str:
    if float(v).is_integer():
        return str(int(v))
    frac = Fraction(v).limit_denominator(64)
    return f"{frac.numerator}/{frac.denominator}" if abs(float(frac) - v) < 1e-9 else f"{v:.3g}"


def kernel_text(kernel: np.ndarray) -> str:
    """``0 -1 0 / -1 5 -1 / 0 -1 0`` style rows, fractions kept (1/9, 1/16)."""
    return "\n".join("  ".join(_fmt_cell(v) for v in row) for row in kernel)


def display_output(out: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, str]:
    """A filter's output as a picture in [0, 1], and how it was mapped: a kernel whose weights
    sum to about 1 keeps the brightness (clip to 0..255); an edge kernel (sum about 0) shows
    the size of the response (|out| clipped); anything else is min-max scaled."""
    total = float(kernel.sum())
    if abs(total - 1) < 1e-6:
        return np.clip(out, 0, 255) / 255, "clipped to 0..255"
    if abs(total) < 1e-6:
        return np.clip(np.abs(out), 0, 255) / 255, "|output| clipped to 0..255"
    lo, hi = float(out.min()), float(out.max())
    return ((out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)), "min-max scaled"


def plot_kernel_figure(image, kernel, output, path, title: str = "") -> None:
    """input | kernel (numbers in the cells) | output, as one PNG."""
    from cnnlab.viz.figure import save_figure
    from cnnlab.viz.plots import _pyplot

    plt = _pyplot()
    k = np.asarray(kernel)
    fig, axes = plt.subplots(
        1, 3, figsize=(12, 4.2), dpi=100, gridspec_kw={"width_ratios": [4, 2, 4]}
    )
    gray = image.ndim == 2 or image.shape[2] == 1
    axes[0].imshow(image.squeeze() if gray else image, cmap="gray" if gray else None)
    axes[0].set_title(f"input {image.shape[0]}x{image.shape[1]}")
    lim = max(abs(float(k.min())), abs(float(k.max())), 1e-12)
    axes[1].imshow(k, cmap="RdBu_r", vmin=-lim, vmax=lim)
    if k.size <= 64:
        for (i, j), v in np.ndenumerate(k):
            axes[1].text(j, i, _fmt_cell(float(v)), ha="center", va="center", fontsize=9)
    axes[1].set_title(f"kernel {k.shape[0]}x{k.shape[1]}")
    out, how = display_output(output, k)
    axes[2].imshow(
        out.squeeze() if out.ndim == 3 and out.shape[2] == 1 else out,
        cmap="gray" if (out.ndim == 2 or out.shape[2] == 1) else None,
    )
    axes[2].set_title(f"output {output.shape[0]}x{output.shape[1]} ({how})")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


# ------------------------------------------------------------------------- learned filters


def filter_tiles(weight, mode: str = "auto") -> tuple[np.ndarray, str]:
    """Tiles ``[N, kh, kw, 3|1]`` in [0, 1] from a conv weight ``[out, in, kh, kw]``.

    ``mode``: ``rgb`` (needs 3 input channels), ``channels`` (one tile per out x in pair),
    ``mean`` (the mean over input channels), ``auto`` (rgb for 3 inputs, else mean). Each
    kernel is min-max normalised on its own, as the AlexNet and ZFNet figures show them.
    """
    w = np.asarray(weight.detach().float().cpu() if hasattr(weight, "detach") else weight)
    if w.ndim != 4:
        raise ShapeError(f"a conv weight is [out, in, kh, kw], got shape {w.shape}")
    c_out, c_in = w.shape[:2]
    if mode == "auto":
        mode = "rgb" if c_in == 3 else "mean"
    if mode == "rgb":
        if c_in != 3:
            raise ConfigError(
                f"rgb tiles need 3 input channels, this layer has {c_in}",
                "use mode 'mean' or 'channels'",
            )
        tiles = w.transpose(0, 2, 3, 1)  # [out, kh, kw, 3]
    elif mode == "mean":
        tiles = w.mean(1)[..., None]
    elif mode == "channels":
        tiles = w.reshape(c_out * c_in, 1, *w.shape[2:]).transpose(0, 2, 3, 1)
    else:
        raise ConfigError(f"unknown filter mode {mode!r}", "use auto, rgb, mean or channels")
    lo = tiles.min(axis=(1, 2, 3), keepdims=True)
    hi = tiles.max(axis=(1, 2, 3), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (tiles - lo) / span, mode


def plot_filter_grid(tiles: np.ndarray, path, title: str, cols: int | None = None) -> None:
    """The tiles as a grid with a 1-pixel gap, like the AlexNet / ZFNet conv1 figures."""
    from cnnlab.viz.plots import _pyplot, montage

    plt = _pyplot()
    n, kh, kw, c = tiles.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = montage(tiles, cols, fill=1.0)
    fig, ax = plt.subplots(
        figsize=(min(12, max(3, cols * 0.55)), min(12, max(3, rows * 0.55)) + 0.4), dpi=100
    )
    ax.imshow(
        canvas.squeeze(-1) if c == 1 else canvas,
        cmap="gray" if c == 1 else None,
        interpolation="nearest",
        vmin=0,
        vmax=1,
    )
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    from cnnlab.viz.figure import save_figure

    save_figure(fig, path)
