"""What a visualization looks at: SOURCE -> a model with real weights, its input pipeline and
its layers.

SOURCE is, in this order: a run folder (``runs/NAME``: its ``best.pt``, else ``last.pt``), a
cnnlab checkpoint (``.pt``), ``module:factory`` / ``file.py:factory``, or a model name (cnnlab
zoo or torchvision) with ``weights=`` a state-dict file such as torchvision's. Checkpoints load
through :func:`cnnlab.training.inference.load_trained` (``weights_only=True``, SHA-256 checked)
and bring the pipeline the run was trained with; names and factories resolve through
:func:`cnnlab.analysis.resolve.load_model`, and their images are prepared the way torchvision's
ImageNet models expect (resize to the input size, ImageNet mean and std for RGB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.errors import ConfigError, DataError, ShapeError

# torchvision's ImageNet statistics, in [0, 1] units
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class Source:
    """A model ready to look at: eval mode, real weights, on the CPU."""

    model: nn.Module
    name: str  # what to call it in titles
    input_size: tuple[int, int, int]  # C, H, W the model is run at
    pipeline: object  # cnnlab.training.pipeline.InputPipeline
    data_hw: tuple[int, int]  # the stored image size before the pipeline (a checkpoint's)
    classes: list[str] | None = None
    kind: str = "model"  # run, checkpoint, model, factory
    path: Path | None = None  # the checkpoint, for runs and checkpoints
    state: dict | None = None  # the whole checkpoint
    notes: list[str] = field(default_factory=list)

    def prepare(self, image: np.ndarray, size: tuple[int, int] | None = None):
        """``H x W x C`` uint8 -> the model's input ``[1, C, H, W]`` (float), as trained.

        The image's channels are fitted to the model's (with a note); it is resized to the
        stored data size (or ``size``) and goes through the run's pipeline. Returns
        ``(x, shown)``: the input and the uint8 image it shows, at the input's size."""
        from cnnlab.viz.images import resize, to_model_channels

        img, note = to_model_channels(image, self.input_size[0])
        if note and note not in self.notes:
            self.notes.append(note)
        t = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None]
        hw = tuple(size) if size else self.data_hw
        if tuple(t.shape[-2:]) != hw:
            t = resize(t, hw)
        # the pipeline also fits the training size; a heat map keeps the larger image's size
        x = (self.pipeline.pre(t) if size else self.pipeline(t)).contiguous()
        if tuple(t.shape[-2:]) != tuple(x.shape[-2:]):
            t = resize(t, x.shape[-2:])
        return x, t[0].permute(1, 2, 0).numpy()

    def class_name(self, k: int) -> str:
        if self.classes and 0 <= k < len(self.classes):
            return self.classes[k]
        return f"class {k}"


def _imagenet_pipeline(c: int, hw: tuple[int, int]):
    from cnnlab.data.pipeline import InputPipeline
    from cnnlab.data.preprocess import Preprocessor

    pre = Preprocessor("standardize" if c == 3 else "none")
    if c == 3:
        pre.mean = torch.tensor(IMAGENET_MEAN)
        pre.std = torch.tensor(IMAGENET_STD)
    return InputPipeline(pre, hw, hw)


def run_checkpoint(folder: Path) -> Path:
    """The checkpoint of a run folder: best.pt, else last.pt."""
    for name in ("best.pt", "last.pt"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"{folder} holds no best.pt or last.pt",
        "give a run folder written by `cnnlab train` (runs/NAME), a .pt checkpoint, "
        "a model name or module:factory",
    )


def load_source(
    spec: str, *, weights: str | None = None, input_size=None, allow_random: bool = True
) -> Source:
    """Resolve SOURCE (see the module docstring) into a :class:`Source`."""
    from cnnlab._util import parse_input
    from cnnlab.analysis.resolve import load_model

    spec = str(spec)
    path = Path(spec)
    if path.is_dir():
        return _from_checkpoint(run_checkpoint(path), "run", weights)
    if path.suffix in (".pt", ".pth", ".ckpt") or (path.is_file() and ":" not in spec):
        if not path.is_file():
            raise DataError(
                f"checkpoint {path} does not exist",
                "give runs/NAME, runs/NAME/best.pt, a model name or module:factory",
            )
        return _from_checkpoint(path, "checkpoint", weights)
    model, default, name = load_model(spec, meta=weights is not None)
    notes = []
    if weights is not None:
        from cnnlab.models.weights import load_weights

        load_weights(model, weights, name if ":" not in spec else None)
    elif ":" not in spec and allow_random:
        notes.append(f"{name} has random weights (no --weights FILE given)")
    model = model.float().eval()
    size = parse_input(input_size) if isinstance(input_size, str) else input_size
    if size is None:
        size = default or (_first_conv_channels(model), 224, 224)
    size = tuple(int(v) for v in size)
    if len(size) != 3:
        raise ConfigError(f"input size {size} is not C x H x W", "give --input CxHxW")
    return Source(
        model,
        name,
        size,
        _imagenet_pipeline(size[0], size[1:]),
        size[1:],
        None,
        "factory" if ":" in spec else "model",
        None,
        None,
        notes,
    )


def _first_conv_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, _CONV):
            return m.in_channels
    return 3


def _from_checkpoint(path: Path, kind: str, weights) -> Source:
    from cnnlab.training.inference import load_trained

    if weights is not None:
        raise ConfigError(
            "--weights is for a model name; a run or checkpoint brings its own weights",
            "drop --weights, or give a model name: cnnlab viz filters vgg16 --weights FILE",
        )
    try:
        tr = load_trained(path)
    except DataError as e:
        if "not a cnnlab training checkpoint" in e.message:
            raise DataError(
                f"{path} is not a cnnlab training checkpoint (a plain state dict?)",
                "for a state-dict file such as torchvision's, name the architecture: "
                f"cnnlab viz filters vgg16 --weights {path}",
            ) from None
        raise
    name = f"{tr.state['model_name']} ({path.parent.name if kind == 'run' else path.name})"
    return Source(
        tr.model.float().eval(),
        name,
        (int(tr.data_size[0]), *tr.pipeline.model_hw),
        tr.pipeline,
        tuple(tr.pipeline.data_hw),
        list(tr.classes),
        kind,
        path,
        tr.state,
    )


# ----------------------------------------------------------------------------------- layers


def layer_names(model: nn.Module) -> list[str]:
    return [n for n, _ in model.named_modules() if n]


def conv_layers(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if n and isinstance(m, _CONV)]


def _closest_first(name: str, names: list[str]) -> list[str]:
    import difflib

    return sorted(names, key=lambda n: -difflib.SequenceMatcher(None, name, n).ratio())


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``; an unknown name lists the layers, closest first."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    names = layer_names(model)
    ranked = _closest_first(name, names)
    shown = ", ".join(ranked[:12]) + (f" ... ({len(names)} layers)" if len(names) > 12 else "")
    raise ConfigError(
        f"the model has no layer {name!r}",
        f"layers, closest first: {shown}" if names else "the model has no named layers",
    )


def get_conv(model: nn.Module, name: str | None) -> tuple[str, nn.Module]:
    """The conv layer ``name`` (default: the first conv); a non-conv layer names the convs."""
    convs = conv_layers(model)
    if not convs:
        raise ConfigError("the model has no convolution layer to show")
    if name is None:
        return convs[0], get_layer(model, convs[0])
    layer = get_layer(model, name)
    if not isinstance(layer, _CONV):
        ranked = _closest_first(name, convs)
        raise ConfigError(
            f"layer {name!r} is a {type(layer).__name__}, not a convolution",
            f"conv layers, closest first: {', '.join(ranked[:12])}"
            + (f" ... ({len(convs)} convs)" if len(convs) > 12 else ""),
        )
    return name, layer


def check_image_size(image: np.ndarray, need_hw, what: str = "the model") -> None:
    """Refuse an image smaller than ``need_hw`` (no silent upscaling of a thumbnail)."""
    h, w = image.shape[:2]
    if h < need_hw[0] or w < need_hw[1]:
        raise ShapeError(
            f"the image is {h}x{w}, smaller than the {need_hw[0]}x{need_hw[1]} {what} accepts",
            f"give an image of at least {need_hw[0]}x{need_hw[1]} pixels",
        )
