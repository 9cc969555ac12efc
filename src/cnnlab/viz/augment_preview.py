"""``cnnlab augment preview``: one image under each operation of an augmentation preset, and
under each kind of variation seed 000 lists as what makes recognition hard.

Seed 000 names the augmentations (flips, horizontal and vertical; crops; brightness,
saturation and hue jitter) and the variations a classifier must survive: viewpoint, scale,
deformation, occlusion, illumination, background clutter, intra-class variation. The grid has
one row per operation the preset switches on (with the preset's own settings), a row for the
whole preset, and one row per variation an augmentation can imitate:

- viewpoint: an affine warp (rotation, shear, translation);
- scale: a random-resized crop (area 25-100%);
- deformation: stretching and lens distortion;
- occlusion: cutout (a square of a third of the side);
- illumination: brightness and contrast.

Background clutter and intra-class variation belong to the data (what is behind the object,
which chair it is); no transform of one image adds them, and the figure says so. Every sample
is a real call of :class:`cnnlab.data.Augment` on a batch of copies of the image.
"""

from __future__ import annotations

from dataclasses import fields

import torch

from cnnlab.errors import ConfigError

# (row name, the switches that make the operation, the one that says whether it is on)
OPERATIONS = [
    ("horizontal flip", ("flip",), "flip"),
    ("alternating flip", ("alternating_flip",), "alternating_flip"),
    ("vertical flip", ("vflip",), "vflip"),
    ("pad + random crop", ("pad", "pad_mode", "crop"), "pad"),
    ("scale jitter + crop", ("scale_jitter", "crop"), "scale_jitter"),
    ("random-resized crop", ("resized_crop", "ratio", "crop"), "resized_crop"),
    ("brightness", ("brightness",), "brightness"),
    ("contrast", ("contrast",), "contrast"),
    ("saturation", ("saturation",), "saturation"),
    ("hue", ("hue",), "hue"),
    ("translate", ("translate", "warp_p", "fill"), "translate"),
    ("rotate", ("rotate", "warp_p", "fill"), "rotate"),
    ("zoom", ("scale", "warp_p", "fill"), "scale"),
    ("stretch", ("stretch", "warp_p", "fill"), "stretch"),
    ("shear", ("shear", "warp_p", "fill"), "shear"),
    ("lens distortion", ("lens", "warp_p", "fill"), "lens"),
    ("cutout", ("cutout", "cutout_fill"), "cutout"),
]

# seed 000's variations, imitated: name -> switches for an image whose shorter side is s
VARIATIONS = {
    "viewpoint (affine)": lambda s: dict(rotate=20.0, shear=10.0, translate=0.1),
    "scale (crop-resize)": lambda s: dict(resized_crop=(0.25, 1.0)),
    "deformation (stretch, lens)": lambda s: dict(stretch=0.3, lens=0.3),
    "occlusion (cutout)": lambda s: dict(cutout=max(1, s // 3)),
    "illumination (brightness, contrast)": lambda s: dict(brightness=0.5, contrast=0.5),
}
NOT_AUGMENTABLE = (
    "background clutter and intra-class variation come from the data, not from a transform"
)


def preview_rows(image: torch.Tensor, preset: str, samples: int = 6, seed: int = 0):
    """``[(row title, uint8 [samples, C, H, W])]``: the original, each operation of ``preset``
    alone, the whole preset, then seed 000's variations. ``image``: uint8 ``[C, H, W]``."""
    from cnnlab.data import Augment

    if image.ndim != 3 or image.dtype != torch.uint8:
        raise ConfigError(f"preview wants one uint8 image [C, H, W], got {tuple(image.shape)}")
    if samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {samples}")
    s = min(image.shape[-2:])
    full = Augment(preset, seed=seed)
    cfg = full.resolve(s)
    batch = image.unsqueeze(0).expand(samples, -1, -1, -1).contiguous()
    rows = [("original", batch)]
    defaults = {f.name: f.default for f in fields(type(cfg))}
    notes = []
    for name, keys, switch in OPERATIONS:
        if getattr(cfg, switch, None) in (None, defaults.get(switch)):
            continue
        if switch == "pad" and (cfg.scale_jitter or cfg.resized_crop):
            continue  # the crop belongs to the scale jitter / resized crop row
        values = {k: getattr(cfg, k) for k in keys}
        rows.append((f"{name}: {_describe(values)}", Augment(seed=seed, **values)(batch)))
    if cfg.mixup:
        notes.append("mixup is left out: it blends an image with other images of the batch")
    rows.append((f"preset {full.preset}: all of it", full(batch)))
    for name, switches in VARIATIONS.items():
        rows.append((f"{name}", Augment(seed=seed, **switches(s))(batch)))
    notes.append(NOT_AUGMENTABLE)
    return rows, notes


def _describe(values: dict) -> str:
    parts = []
    for k, v in values.items():
        if k in ("pad_mode", "warp_p", "fill", "cutout_fill", "ratio") or v in (None, 0, 0.0):
            continue
        v = ":".join(f"{x:g}" for x in v) if isinstance(v, tuple) else v
        parts.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
    return ", ".join(parts)


def plot_preview(rows, path, title: str = "", notes=()):
    """The rows as a grid of images (row titles on the left), saved atomically."""
    from cnnlab.viz.figure import check_output, save_figure
    from cnnlab.viz.plots import _pyplot

    path = check_output(path)
    plt = _pyplot()
    n, cols = len(rows), rows[0][1].shape[0]
    fig, axes = plt.subplots(n, cols, figsize=(1.3 * cols + 2.6, 1.3 * n + 0.6), squeeze=False)
    for r, (name, imgs) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            img = imgs[c].permute(1, 2, 0).cpu().numpy()
            ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    if notes:
        fig.text(0.01, 0.005, "; ".join(notes), fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.02, 1, 0.98))
    return save_figure(fig, path, dpi=100)


def load_preview_image(image=None, data=None, data_dir=None, index: int = 0) -> torch.Tensor:
    """uint8 ``[C, H, W]``: an image file (or ``sample:NAME``), or image ``index`` of a
    dataset's training split. A missing dataset is the loader's DataError."""
    if (image is None) == (data is None):
        raise ConfigError(
            "give IMAGE or --data NAME (one of them)",
            "e.g. cnnlab augment preview --preset strong sample:china -o grid.png",
        )
    if image is not None:
        from cnnlab.viz.images import read_image

        return torch.from_numpy(read_image(image).copy()).permute(2, 0, 1).contiguous()
    from cnnlab.data import load_dataset

    ds = load_dataset(data, "train", data_dir)
    if not 0 <= index < len(ds.images):
        raise ConfigError(f"--index {index} is outside {data}'s {len(ds.images):,} images")
    return ds.images[index]
