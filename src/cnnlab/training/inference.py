"""Load a trained checkpoint for evaluation or prediction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.data.pipeline import InputPipeline
from cnnlab.errors import DataError
from cnnlab.models import create
from cnnlab.training.checkpoint import load_checkpoint, load_weights


@dataclass
class Trained:
    model: nn.Module
    pipeline: InputPipeline
    classes: list[str]
    state: dict  # the whole checkpoint
    used_ema: bool

    @property
    def data_size(self) -> tuple[int, int, int]:
        return tuple(self.state["data"]["size"])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_trained(path: str | Path, *, device="cpu", ema: bool = True) -> Trained:
    """Rebuild the model of a ``cnnlab train`` checkpoint (its EMA weights when it has them and
    ``ema`` is true) with the input pipeline it was trained with. ``path`` may be a run folder:
    its ``best.pt`` (the weights validation chose), else its ``last.pt``."""
    path = run_checkpoint(Path(path))
    state = load_checkpoint(path)
    if state.get("format") != "cnnlab-checkpoint" or "model_name" not in state:
        raise DataError(
            f"{path} is not a cnnlab training checkpoint",
            "give runs/<name>/best.pt or last.pt written by `cnnlab train`",
        )
    model = create(state["model_name"], **state["model_options"])
    use_ema = bool(ema and state.get("ema"))
    load_weights(model, state["ema"]["module"] if use_ema else state["model"], str(path),
                 state["model_name"], state.get("written_by"))  # fmt: skip
    model.to(device).eval()
    pipeline = InputPipeline.from_state_dict(state["pipeline"])
    return Trained(model, pipeline, list(state["classes"]), state, use_ema)


def run_checkpoint(path: Path) -> Path:
    """A checkpoint path as given, or a run folder's ``best.pt`` (else ``last.pt``)."""
    if not path.is_dir():
        return path
    found = [p for p in (path / "best.pt", path / "last.pt") if p.exists()]
    if not found:
        raise DataError(
            f"{path} is a folder with no best.pt or last.pt in it",
            "give a run folder written by `cnnlab train`, or a .pt file",
        )
    return found[0]


def read_images(paths, size: tuple[int, int, int]) -> torch.Tensor:
    """Decode image files with torchvision.io into a uint8 batch ``[N, C, H, W]`` of ``size``:
    the first frame of an animation, alpha dropped, 16-bit PNGs scaled to 8 bits, channels
    converted gray <-> RGB (GIF and WebP decode to RGB whatever mode is asked), resized with
    antialiasing."""
    import warnings

    with warnings.catch_warnings():  # torchvision 0.29 points to torchcodec; io still works
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_image, read_file
    from torchvision.transforms.v2 import functional as TF

    c, h, w = size
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            raise DataError(f"{p} is a folder, not an image file", "give files, e.g. img/*.png")
        if not p.is_file():
            raise DataError(f"image {p} does not exist", "check the path")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                img = decode_image(read_file(str(p)), mode=ImageReadMode.UNCHANGED)
        except Exception as e:
            raise DataError(
                f"cannot decode {p}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                "give a PNG, JPEG, GIF or WebP file",
            ) from None
        if img.dtype != torch.uint8:
            # 16-bit PNGs decode to uint16 (0-65535): scale to uint8 (a right shift by 8) so
            # every image is on the [0, 255] scale the pipeline expects, and 8- and 16-bit stack
            img = TF.to_dtype(img, torch.uint8, scale=True)
        if img.ndim == 4:  # an animated GIF: its first frame
            img = img[0]
        if img.shape[0] in (2, 4):  # gray + alpha, RGBA: drop the alpha channel
            img = img[:-1]
        if img.shape[0] == 1 and c == 3:
            img = img.expand(3, -1, -1)
        elif img.shape[0] == 3 and c == 1:
            img = TF.rgb_to_grayscale(img)
        if tuple(img.shape[1:]) != (h, w):
            img = TF.resize(img, [h, w], antialias=True)
        out.append(img.contiguous())
    return torch.stack(out)
