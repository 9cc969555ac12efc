"""ZFNet's figure 2: the dataset images that excite one unit most, cropped to what it sees.

For unit ``K`` (a channel) of a layer, every image is run through the model and scored by the
channel's strongest activation; the ``top`` images are cropped to the receptive field of the
position where that maximum sits, beside the deconvnet projection of that single activation
(Zeiler & Fergus, ECCV 2014, §2 and fig. 2).

The crop is the receptive-field arithmetic of the lectures, taken from :func:`cnnlab.summary`:
its size is the row's receptive field ``r`` and neighbouring positions are ``jump`` pixels
apart. Where the window of position 0 is centred follows from the same rows: each
convolution or pooling with kernel ``K``, dilation ``D`` and padding ``P`` moves the centre by
``(D*(K - 1)/2 - P) * jump_in``. The tests check the box against the gradient support of
the unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cnnlab.errors import ConfigError


@dataclass
class Geometry:
    """Receptive field of one layer: window size, jump and the centre of position 0."""

    rf: tuple[float, float]
    jump: tuple[float, float]
    centre: tuple[float, float]

    def box(self, i: int, j: int, hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)``, inclusive, of position (i, j), clipped to ``hw``."""
        out = []
        for pos, r, jp, c, n in zip((i, j), self.rf, self.jump, self.centre, hw):
            mid = c + pos * jp
            lo, hi = mid - (r - 1) / 2, mid + (r - 1) / 2
            out.append((max(0, int(np.ceil(lo - 1e-9))), min(n - 1, int(np.floor(hi + 1e-9)))))
        (t, b), (l, r_) = out
        return t, l, b, r_


def geometry(summary, layer: str) -> Geometry:
    """The :class:`Geometry` of ``layer`` from the summary's rows.

    The centre follows the chain of spatial sizes: a conv/pool row counts when its input is at
    the current size; parallel branches that shrink the map alike (a ResNet's main path and
    its 1x1 shortcut, both centred) count once, and size-keeping layers move no centre."""
    from cnnlab.viz.features import rows_for

    row = rows_for(summary, layer)
    if row is None or not row.receptive_field or not row.jump:
        raise ConfigError(
            f"layer {layer!r} has no receptive field in the summary",
            "choose a conv or pooling layer (or a block of them)",
        )
    index = summary.layers.index(row)
    centre = [0.0, 0.0]
    size = tuple(summary.input_size[1:])
    for r in summary.layers[: index + 1]:
        if not r.kernel or not r.input_shape or len(r.input_shape) != 3 or not r.jump:
            continue
        if tuple(r.input_shape[1:]) != size or not r.output_shape or len(r.output_shape) != 3:
            continue
        stride = r.stride or [1, 1]
        pad = r.padding or [0, 0]
        dil = r.dilation or [1, 1]
        for d in range(2):
            jump_in = r.jump[d] / stride[d]
            centre[d] += (dil[d] * (r.kernel[d] - 1) / 2 - pad[d]) * jump_in
        size = tuple(r.output_shape[1:])
    return Geometry(tuple(row.receptive_field), tuple(row.jump), tuple(centre))


class _Unit(torch.nn.Module):
    """The model cut at ``layer``: returns that layer's output, flattened per image, so a
    single activation is a Captum target."""

    def __init__(self, model, layer_module):
        super().__init__()
        self.model = model
        self.layer = layer_module

    def forward(self, x):
        caught = []
        h = self.layer.register_forward_hook(lambda m, i, o: caught.append(o))
        try:
            self.model(x)
        finally:
            h.remove()
        return caught[-1].flatten(1)


@dataclass
class TopPatch:
    index: int  # position in the dataset
    label: int
    score: float  # the unit's maximum activation on the image
    position: tuple[int, int]  # where in the layer's map
    box: tuple[int, int, int, int]  # top, left, bottom, right in the model input
    image: np.ndarray  # uint8 crop at the model's input resolution
    projection: np.ndarray  # deconvnet projection of the same crop, [0, 1]


def top_patches(
    source,
    layer: str,
    unit: int,
    images: torch.Tensor,
    labels=None,
    *,
    top: int = 9,
    batch_size: int = 256,
    summary=None,
) -> list[TopPatch]:
    """The ``top`` images of ``images`` (uint8 ``[N, C, H, W]``) that excite channel ``unit``
    of ``layer`` most, each cropped to its receptive field, with its deconvnet projection."""
    from captum.attr import Deconvolution

    import cnnlab
    from cnnlab.viz.attribute import _relus_not_inplace
    from cnnlab.viz.source import get_layer

    model = source.model
    module = get_layer(model, layer)
    summary = summary or cnnlab.summary(model, source.input_size)
    geo = geometry(summary, layer)
    best: list[tuple[float, int, int, int]] = []  # (score, index, i, j)
    caught = []
    h = module.register_forward_hook(lambda m, i, o: caught.append(o.detach()))
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                caught.clear()
                model(source.pipeline(images[start : start + batch_size]))
                out = caught[-1]
                if out.dim() != 4:
                    raise ConfigError(
                        f"layer {layer!r} outputs {tuple(out.shape[1:])}, not a C x H x W map",
                        "choose a conv or pooling layer",
                    )
                if not 0 <= unit < out.shape[1]:
                    raise ConfigError(
                        f"layer {layer!r} has {out.shape[1]} units (channels); "
                        f"--unit {unit} is out of range",
                        f"give --unit 0..{out.shape[1] - 1}",
                    )
                a = out[:, unit].flatten(1)
                score, pos = a.max(1)
                map_hw = tuple(out.shape[-2:])
                w = map_hw[1]
                for n, (s, p) in enumerate(zip(score.tolist(), pos.tolist())):
                    best.append((s, start + n, p // w, p % w))
                best = sorted(best, reverse=True)[:top]
    finally:
        h.remove()
    cut = _Unit(model, module).eval()
    results = []
    for score, idx, i, j in best:
        x = source.pipeline(images[idx : idx + 1]).requires_grad_(True)
        hw = tuple(x.shape[-2:])
        target = (unit * map_hw[0] + i) * map_hw[1] + j  # [C, H, W] flattened
        with _relus_not_inplace(model):
            proj = Deconvolution(cut).attribute(x, target=target).detach()[0]
        t, l, b, r = geo.box(i, j, hw)
        shown = _shown(images[idx], hw)
        crop = shown[t : b + 1, l : r + 1]
        p = proj[:, t : b + 1, l : r + 1].permute(1, 2, 0).numpy()
        p = p - p.mean()
        lim = np.abs(p).max() or 1.0
        label = int(labels[idx]) if labels is not None else -1
        results.append(TopPatch(idx, label, score, (i, j), (t, l, b, r), crop, 0.5 + 0.5 * p / lim))
    return results


def _shown(img: torch.Tensor, hw) -> np.ndarray:
    """The uint8 image at the model input's size (what the crop boxes refer to)."""
    from torchvision.transforms.v2 import functional as TF

    if tuple(img.shape[-2:]) != tuple(hw):
        img = TF.resize(img[None], list(hw), antialias=True)[0]
    return img.permute(1, 2, 0).numpy()


def plot_top_patches(patches: list[TopPatch], path, title: str, classes=None) -> None:
    """Two grids side by side, as ZFNet's figure 2: deconvnet projections | image patches."""
    from cnnlab.viz.figure import save_figure
    from cnnlab.viz.plots import _pyplot

    plt = _pyplot()
    n = len(patches)
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, 2 * cols, figsize=(1.6 * 2 * cols, 1.8 * rows + 0.6), dpi=100, squeeze=False
    )
    for k, p in enumerate(patches):
        r, q = divmod(k, cols)
        proj, img = axes[r][q], axes[r][cols + q]
        pr = p.projection.clip(0, 1)
        proj.imshow(pr.mean(-1) if pr.shape[-1] != 3 else pr, cmap="gray", interpolation="nearest")
        gray = p.image.shape[-1] == 1
        img.imshow(
            p.image.squeeze(-1) if gray else p.image,
            cmap="gray" if gray else None,
            interpolation="nearest",
        )
        name = classes[p.label] if classes and 0 <= p.label < len(classes) else ""
        img.set_title(f"#{p.index} {name} {p.score:.2f}".strip(), fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for k in range(n, rows * cols):
        r, q = divmod(k, cols)
        axes[r][q].set_axis_off()
        axes[r][cols + q].set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
