"""Class heat maps (seed 004, FCN): a classifier slid over an image larger than it was
trained on.

:func:`cnnlab.models.convolutionalize` turns the fully connected head into convolutions, so
on an ``H x W`` image the network returns a map of class scores, one position per placement
of its training-size window (``jump`` pixels apart, the product of the strides). The softmax
over classes at each position gives the class's probability there; upsampled to the image and
overlaid, it shows where the class is found.

Networks that end in global average pooling (NIN, GoogLeNet, ResNet, DenseNet) are already
fully convolutional up to that pool: their head is applied to the pooled vector. Applied to
each position of the map before the pool instead, it gives the class map directly -- the class
activation map of Zhou et al. 2016 ("Learning Deep Features for Discriminative Localization"),
whose average over the positions is the model's own logits when the head is linear.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def class_map(source, x: torch.Tensor):
    """``(probabilities [K, h, w], how)`` for the prepared image ``x``: the FC head slid by
    :func:`~cnnlab.models.convolutionalize`, or for a global-pooling network its head applied
    at every position before the pool (:func:`pooled_head_map`); ``how`` says which."""
    from cnnlab.errors import ConfigError
    from cnnlab.models import convolutionalize

    try:
        fcn = convolutionalize(source.model, source.input_size).eval()
    except ConfigError as e:
        logits = pooled_head_map(source.model, x)
        if logits is None:
            raise ConfigError(
                f"{e.message}; nor does it end in a global pooling layer whose head could be "
                "applied at each position",
                "heat maps work for networks with an FC head (LeNet-5, AlexNet, VGG) or a "
                "global average pool (NIN, GoogLeNet, ResNet, DenseNet)",
            ) from None
        how = "head applied at each position before the global pool (CAM)"
    else:
        with torch.inference_mode():
            logits = fcn(x)
        how = "FC head convolutionalized (FCN)"
    if logits.dim() != 4:
        raise ConfigError("the converted model did not return a class map")
    return torch.softmax(logits.float(), 1)[0], how


def _global_pool(func, args, out) -> bool:
    """Whether this call pools a [N, C, h, w] map to one value per channel."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not isinstance(out, torch.Tensor):
        return False
    name = getattr(func, "__name__", "")
    if "pool" in name:  # adaptive/avg/max pooling, functional or module
        return out.dim() == 4 and tuple(out.shape[-2:]) == (1, 1) and x.shape[-2:] != (1, 1)
    if name in ("mean", "amax"):  # x.mean((2, 3)): the pool written as a reduction
        return (
            out.dim() in (2, 4)
            and out.shape[:2] == x.shape[:2]
            and out.numel() == x.shape[0] * x.shape[1]
        )
    return False


class _PoolWatch(torch.overrides.TorchFunctionMode):
    """Counts global pools; on the ``replace``-th, hands on every position as its own sample."""

    def __init__(self, replace: int = 0):
        super().__init__()
        self.pools, self.replace, self.grid = 0, replace, None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if _global_pool(func, args, out):
            self.pools += 1
            if self.pools == self.replace:
                n, c, h, w = args[0].shape
                self.grid = (n, h, w)
                positions = args[0].permute(0, 2, 3, 1).reshape(n * h * w, c)
                return positions.reshape(n * h * w, *out.shape[1:])
        return out


def pooled_head_map(model, x: torch.Tensor) -> torch.Tensor | None:
    """``[N, K, h, w]`` logits: the network's head applied to each position of the map its
    last global pool reduces (None when it has none, or cannot run at ``x``'s size: a flatten
    into a fixed-size Linear). Two passes: one finds the last pool, the second feeds the head
    the h*w positions as a batch instead of their average."""
    try:
        with torch.inference_mode():
            watch = _PoolWatch()
            with watch:
                model(x)
            if watch.pools == 0:
                return None
            watch = _PoolWatch(replace=watch.pools)
            with watch:
                logits = model(x)
    except RuntimeError:  # shapes that do not fit: not a fully convolutional body + pool
        return None
    n, h, w = watch.grid
    if logits.dim() != 2 or logits.shape[0] != n * h * w:
        return None
    return logits.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def choose_class(probs: torch.Tensor) -> int:
    """The class with the highest probability anywhere on the map."""
    return int(probs.flatten(1).amax(1).argmax())


def upsample(m: torch.Tensor, hw) -> np.ndarray:
    """A ``[h, w]`` map bilinearly resized to the image's ``hw``."""
    return F.interpolate(m[None, None], size=tuple(hw), mode="bilinear", align_corners=False)[
        0, 0
    ].numpy()


def plot_heatmap(
    image: np.ndarray, probs: torch.Tensor, k: int, path, title: str, class_name: str
) -> None:
    """image | class map (its own grid) | map upsampled over the image."""
    from cnnlab.viz.figure import save_figure
    from cnnlab.viz.plots import _pyplot

    plt = _pyplot()
    m = probs[k]
    gray = image.shape[2] == 1
    shown = image.squeeze(-1) if gray else image
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), dpi=100)
    axes[0].imshow(shown, cmap="gray" if gray else None)
    axes[0].set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=9)
    im = axes[1].imshow(m.numpy(), cmap="jet", vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_title(f"P({class_name}) on a {m.shape[0]}x{m.shape[1]} grid", fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    axes[2].imshow(shown, cmap="gray" if gray else None)
    axes[2].imshow(upsample(m, image.shape[:2]), cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[2].set_title("upsampled overlay", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
