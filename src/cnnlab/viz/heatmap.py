"""Class heat maps (seed 004, FCN): a classifier slid over an image larger than it was
trained on.

:func:`cnnlab.models.convolutionalize` turns the fully connected head into convolutions, so
on an ``H x W`` image the network returns a map of class scores, one position per placement
of its training-size window (``jump`` pixels apart, the product of the strides). The softmax
over classes at each position gives the class's probability there; upsampled to the image and
overlaid, it shows where the class is found.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def class_map(source, x: torch.Tensor):
    """``(probabilities [K, h, w], fully convolutional model)`` for the prepared image ``x``."""
    from cnnlab.models import convolutionalize

    fcn = convolutionalize(source.model, source.input_size).eval()
    with torch.inference_mode():
        logits = fcn(x)
    if logits.dim() != 4:
        from cnnlab.errors import ConfigError

        raise ConfigError("the converted model did not return a class map")
    return torch.softmax(logits.float(), 1)[0], fcn


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
