"""From a stored uint8 batch to the model's input: scale, normalise, fit the model's size.

The same :class:`InputPipeline` runs in training (after augmentation), evaluation and
``cnnlab predict``, and its state (the fitted preprocessor and the two sizes) is saved in every
checkpoint, so a trained model always sees its inputs prepared the way it was trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.data.preprocess import Preprocessor


def fit_mode(data_hw: tuple[int, int], model_hw: tuple[int, int]) -> str:
    """``"same"``, ``"pad"`` (model input at most 8 px larger, like MNIST 28 -> LeNet's 32: the
    paper centres the 28x28 digits in a 32x32 field) or ``"resize"``."""
    if tuple(data_hw) == tuple(model_hw):
        return "same"
    dh, dw = model_hw[0] - data_hw[0], model_hw[1] - data_hw[1]
    if 0 <= dh <= 8 and 0 <= dw <= 8 and dh % 2 == 0 and dw % 2 == 0:
        return "pad"
    return "resize"


class InputPipeline:
    def __init__(self, preprocessor: Preprocessor, data_hw, model_hw, channels_last=False):
        self.pre = preprocessor
        self.data_hw = tuple(int(v) for v in data_hw)
        self.model_hw = tuple(int(v) for v in model_hw)
        self.mode = fit_mode(self.data_hw, self.model_hw)
        self.channels_last = channels_last

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float ``[B, C, H, W]`` -> normalised float at the model's size."""
        x = self.pre(x)
        h, w = x.shape[-2:]
        if (h, w) == self.data_hw and self.mode == "pad":
            dh, dw = self.model_hw[0] - h, self.model_hw[1] - w
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))  # 0 = the mean
        elif (h, w) != self.model_hw:  # resize mode, or a TTA view of another size
            x = F.interpolate(
                x,
                size=self.model_hw,
                mode="bilinear",
                align_corners=False,
                antialias=self.model_hw[0] < h,
            )
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def state_dict(self) -> dict:
        return {
            "preprocessor": self.pre.state_dict(),
            "data_hw": list(self.data_hw),
            "model_hw": list(self.model_hw),
        }

    @classmethod
    def from_state_dict(cls, state: dict, channels_last=False) -> InputPipeline:
        pre = Preprocessor.from_state_dict(state["preprocessor"])
        return cls(pre, state["data_hw"], state["model_hw"], channels_last)
