"""Where a network looks: ZFNet's deconvnet and the attribution methods that followed it.

Captum (``captum.attr``) is the engine; cnnlab's part is choosing the model, the layer and
the target, preparing the input as the model was trained, and drawing the result.

- ``deconv``: Zeiler & Fergus's deconvnet ("Visualizing and Understanding Convolutional
  Networks", ECCV 2014, seed 002): the signal goes back through transposed filters,
  max-pooling switches, and ReLUs applied to the backward signal (Captum ``Deconvolution``).
- ``guided``: guided backpropagation (Springenberg et al., "Striving for Simplicity", 2015):
  ReLUs pass a gradient only where both the forward input and the gradient are positive.
- ``saliency``: the absolute input gradient (Simonyan, Vedaldi & Zisserman, 2014).
- ``gradcam``: Grad-CAM (Selvaraju et al., ICCV 2017) on a conv layer (default: the last
  conv), upsampled bilinearly to the input's size.
- ``occlusion``: Zeiler & Fergus's occlusion experiment: the drop of the class score when a
  grey (zero after normalisation) patch covers each place.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from cnnlab.errors import ConfigError, suggest

METHODS = ("deconv", "guided", "saliency", "gradcam", "occlusion")


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(
            f"unknown attribution method {method!r}",
            (suggest(method, METHODS) + " " if suggest(method, METHODS) else "")
            + f"methods: {', '.join(METHODS)}",
        )
    return method


class _Logits(nn.Module):
    """The model's logits as one tensor (a model that returns (logits, aux) gives logits)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return out[0] if isinstance(out, (tuple, list)) else out


@contextlib.contextmanager
def _relus_not_inplace(model: nn.Module):
    """Captum's deconv and guided backprop hook every nn.ReLU; an in-place ReLU would modify a
    tensor its hook has to see, so they run out of place for the attribution."""
    changed = [m for m in model.modules() if isinstance(m, nn.ReLU) and m.inplace]
    for m in changed:
        m.inplace = False
    try:
        with warnings.catch_warnings():  # Captum announces its ReLU hooks on every call
            warnings.filterwarnings("ignore", "Setting backward hooks", UserWarning)
            yield
    finally:
        for m in changed:
            m.inplace = True


def relu_modules(model: nn.Module) -> int:
    return sum(isinstance(m, nn.ReLU) for m in model.modules())


def last_conv(model: nn.Module) -> str:
    from cnnlab.viz.source import conv_layers

    convs = conv_layers(model)
    if not convs:
        raise ConfigError("the model has no convolution layer for Grad-CAM")
    return convs[-1]


def predicted_class(model: nn.Module, x: torch.Tensor) -> int:
    with torch.inference_mode():
        return int(_Logits(model)(x[:1]).argmax(1)[0])


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target=None,
    layer=None,
    *,
    window: int | None = None,
    stride: int | None = None,
) -> torch.Tensor:
    """Attribution of ``model``'s class ``target`` (default: the predicted class) for input
    ``x`` (``[N, C, H, W]``, prepared as the model expects) by ``method``.

    Returns a tensor shaped like ``x`` (``gradcam``: ``[N, 1, H, W]``, the layer's map
    upsampled to the input). ``layer`` (a module or its name) is Grad-CAM's layer, default the
    last conv. ``window``/``stride``: occlusion's square patch (default ``max(3, H // 8)``) and
    step (default half the patch).
    """
    from captum import attr

    from cnnlab.viz.source import get_layer

    check_method(method)
    if x.dim() == 3:
        x = x[None]
    if target is None:
        target = predicted_class(model, x)
    net = _Logits(model).eval()
    x = x.detach().clone().requires_grad_(method != "occlusion")
    if method == "gradcam":
        if layer is None:
            layer = last_conv(model)
        module = get_layer(model, layer) if isinstance(layer, str) else layer
        cam = attr.LayerGradCam(net, module).attribute(x, target=target)
        up = attr.LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear")
        return up.detach()
    if method == "occlusion":
        h = x.shape[-1]
        k = window or max(3, h // 8)
        s = stride or max(1, k // 2)
        occ = attr.Occlusion(net)
        with torch.no_grad():
            out = occ.attribute(
                x,
                target=target,
                sliding_window_shapes=(x.shape[1], k, k),
                strides=(x.shape[1], s, s),
                baselines=0,
                perturbations_per_eval=16,  # 16 occluded copies per forward pass
            )
        return out.detach()
    engine = {
        "deconv": attr.Deconvolution,
        "guided": attr.GuidedBackprop,
        "saliency": attr.Saliency,
    }[method]
    with _relus_not_inplace(model):
        if method == "saliency":
            out = engine(net).attribute(x, target=target, abs=True)
        else:
            out = engine(net).attribute(x, target=target)
    return out.detach()


def to_picture(a: torch.Tensor, method: str):
    """One attribution ``[C, H, W]`` as a displayable ``H x W (x 3)`` array in [0, 1]: the
    deconvnet and guided projections as images (ZFNet's figures), the rest as heat maps."""
    import numpy as np

    a = a.float().cpu()
    if method in ("deconv", "guided") and a.shape[0] == 3:
        img = a.permute(1, 2, 0).numpy()
        img = img - img.mean()
        lim = np.abs(img).max() or 1.0
        return 0.5 + 0.5 * img / lim, False
    m = a.abs().amax(0) if method == "saliency" else a.sum(0)
    if method == "gradcam":
        m = m.clamp(min=0)
    m = m.numpy()
    lim = np.abs(m).max() or 1.0
    return (m / lim if method in ("gradcam", "saliency") else 0.5 + 0.5 * m / lim), True


def plot_attribution(image, a: torch.Tensor, method: str, path, title: str) -> None:
    """image | attribution | overlay."""
    from cnnlab.viz.figure import save_figure
    from cnnlab.viz.plots import _pyplot

    plt = _pyplot()
    pic, is_map = to_picture(a, method)
    gray = image.shape[2] == 1
    shown = image.squeeze(-1) if gray else image
    fig, axes = plt.subplots(1, 3, figsize=(11, 4), dpi=100)
    axes[0].imshow(shown, cmap="gray" if gray else None)
    axes[0].set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=9)
    cmap = "jet" if method == "gradcam" else ("hot" if method == "saliency" else "RdBu_r")
    if is_map:
        axes[1].imshow(pic, cmap=cmap, vmin=0 if method in ("gradcam", "saliency") else 0, vmax=1)
    else:
        axes[1].imshow(pic.clip(0, 1))
    axes[1].set_title(method, fontsize=9)
    axes[2].imshow(shown, cmap="gray" if gray else None)
    overlay = pic if is_map else pic.clip(0, 1).mean(-1)
    axes[2].imshow(overlay, cmap=cmap if is_map else "gray", alpha=0.5)
    axes[2].set_title("overlay", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
