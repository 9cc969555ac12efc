"""Exponential moving average of a model's weights (Polyak averaging).

``ema = decay * ema + (1 - decay) * w`` after each optimizer step; floating buffers (BN
running statistics) are averaged the same way, integer ones (batch counters) copied.
Evaluating the EMA weights usually gives a smoother, slightly better model late in training.
The EMA lives on the model's device and is saved in checkpoints.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0.0 < decay < 1.0:
            from cnnlab.errors import ConfigError

            raise ConfigError(f"EMA decay must be in (0, 1), got {decay}", "try --ema 0.999")
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        mine = self._tensors(self.module)
        self._floats = [v for v in mine if v.dtype.is_floating_point]
        self._is_float = [v.dtype.is_floating_point for v in mine]  # split once, not per step

    @staticmethod
    def _tensors(module: nn.Module) -> list[torch.Tensor]:
        # a deep copy lists its parameters and buffers in the same order as the original
        return [*module.parameters(), *module.buffers()]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average: floating tensors lerp (one fused call), integer ones copy.
        It runs after every optimizer step, so it avoids ``state_dict()``'s per-call cost."""
        src = self._tensors(model)
        if self._floats:
            sf = [s for s, f in zip(src, self._is_float, strict=True) if f]
            torch._foreach_lerp_(self._floats, sf, 1.0 - self.decay)
        for v, s, f in zip(self._tensors(self.module), src, self._is_float):
            if not f:
                v.copy_(s)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.module.load_state_dict(state["module"])
