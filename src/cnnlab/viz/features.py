"""Feature maps: what chosen layers output for one image (seed 002's intermediate layers).

Forward hooks catch the outputs of the chosen modules in one forward pass. Each layer's panel
is labelled with its name, output shape and receptive field as :func:`cnnlab.summary` computes
them, so a picture and the layer table always agree. The default layers are the end of each
stage: the last layer before each drop in spatial resolution, found from the summary's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnnlab.viz.source import get_layer


@dataclass
class FeatureMap:
    name: str
    output: torch.Tensor  # [C, H, W] (batch dimension dropped)
    shape: tuple  # as the summary prints it, e.g. (64, 56, 56)
    receptive_field: tuple | None  # (rf_h, rf_w) from the summary
    jump: tuple | None


def _owner(row_name: str) -> str:
    """``"layer1.0 (add)"`` -> ``"layer1.0"``: a functional row belongs to its module."""
    return row_name.split(" (", 1)[0]


def rows_for(summary, name: str):
    """The summary row that produced module ``name``'s output: its own last call, else the
    last row inside it (a container ends with its last row)."""
    own = [r for r in summary.layers if r.name == name]
    if own:
        return own[-1]
    inside = [r for r in summary.layers if _owner(r.name) == name or r.name.startswith(name + ".")]
    return inside[-1] if inside else None


def outermost(summary, name: str, modules) -> str:
    """The largest module whose output is ``name``'s: ``layer1.1.relu`` (the block's last
    call) -> ``layer1`` when the stage ends with it."""
    row = rows_for(summary, name)
    parts = name.split(".")
    for k in range(1, len(parts)):
        parent = ".".join(parts[:k])
        if parent in modules and rows_for(summary, parent) is row:
            return parent
    return name


def stage_ends(summary, model: nn.Module) -> list[str]:
    """Module names at the end of each stage: the last row (mapped to its module) at each
    spatial size before the size drops, plus the last spatial layer (1x1 maps left out)."""
    modules = dict(model.named_modules())
    spatial = [
        r
        for r in summary.layers
        if r.output_shape and len(r.output_shape) == 3 and r.output_shape[1] * r.output_shape[2] > 1
    ]
    ends = []
    for i, r in enumerate(spatial):
        nxt = spatial[i + 1] if i + 1 < len(spatial) else None
        size = tuple(r.output_shape[1:])
        # the stage ends when no later row is at this size (a residual block's downsample runs
        # before its main path, so "the next row differs" is not enough)
        if nxt is None or all(tuple(s.output_shape[1:]) != size for s in spatial[i + 1 :]):
            name = _owner(r.name)
            if name in modules and name:
                name = outermost(summary, name, modules)
                if name not in ends:
                    ends.append(name)
    return ends


def feature_maps(model: nn.Module, x: torch.Tensor, layers: list[str], summary=None):
    """``{name: FeatureMap}`` for the modules ``layers`` (their last call's output)."""
    caught: dict[str, torch.Tensor] = {}
    handles = []
    for name in layers:
        module = get_layer(model, name)

        def hook(_m, _inp, out, name=name):
            t = out[0] if isinstance(out, (tuple, list)) else out
            caught[name] = t.detach()

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    result = {}
    for name in layers:
        t = caught.get(name)
        if t is None:
            from cnnlab.errors import ConfigError

            raise ConfigError(
                f"layer {name!r} did not run in the forward pass",
                "choose a layer the model's forward uses",
            )
        row = rows_for(summary, name) if summary is not None else None
        rf = tuple(row.receptive_field) if row is not None and row.receptive_field else None
        jump = tuple(row.jump) if row is not None and row.jump else None
        result[name] = FeatureMap(name, t[0], tuple(t.shape[1:]), rf, jump)
    return result


def map_tiles(t: torch.Tensor, max_maps: int) -> tuple[np.ndarray, list[int]]:
    """The ``max_maps`` most active channels of ``[C, H, W]`` (by mean activation), each
    min-max scaled, as ``[N, H, W, 1]`` tiles; a 1-D output (a linear layer) is one strip."""
    a = t.float()
    if a.dim() == 1:
        a = a[None, None, :]
    elif a.dim() == 2:
        a = a[None]
    order = a.mean(dim=tuple(range(1, a.dim()))).argsort(descending=True)[:max_maps].tolist()
    tiles = a[order]
    lo = tiles.amin(dim=(1, 2), keepdim=True)
    hi = tiles.amax(dim=(1, 2), keepdim=True)
    tiles = (tiles - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return tiles[..., None].numpy(), order


def fmt_rf(fm: FeatureMap) -> str:
    if not fm.receptive_field:
        return ""
    rf = fm.receptive_field
    text = f"RF {rf[0]:g}" if len(set(rf)) == 1 else "RF " + "x".join(f"{v:g}" for v in rf)
    if fm.jump:
        j = fm.jump
        text += (
            f", jump {j[0]:g}" if len(set(j)) == 1 else ", jump " + "x".join(f"{v:g}" for v in j)
        )
    return text


def plot_features(image: np.ndarray, maps: dict, path, title: str, max_maps: int = 32) -> None:
    """The input, then one panel per layer: its most active maps as a grid, labelled with
    name, shape and receptive field."""
    from cnnlab.viz.figure import save_figure
    from cnnlab.viz.plots import _pyplot, montage

    plt = _pyplot()
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")  # the gaps between maps
    n = len(maps) + 1
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.4 * rows), dpi=100, squeeze=False)
    gray = image.shape[2] == 1
    axes[0][0].imshow(image.squeeze(-1) if gray else image, cmap="gray" if gray else None)
    axes[0][0].set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=9)
    for i, fm in enumerate(maps.values(), 1):
        ax = axes[i // cols][i % cols]
        tiles, order = map_tiles(fm.output, max_maps)
        k = len(order)
        canvas = montage(tiles, max(1, int(np.ceil(np.sqrt(k)))), fill=np.nan)
        ax.imshow(canvas[..., 0], cmap=cmap, interpolation="nearest", vmin=0, vmax=1)
        shape = "x".join(map(str, fm.shape))
        shown = f"{k} most active of {fm.shape[0]}" if fm.output.dim() == 3 else ""
        ax.set_title(f"{fm.name}  {shape}\n{fmt_rf(fm)}  {shown}".rstrip(), fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
