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

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        src = model.state_dict()
        for name, v in self.module.state_dict().items():
            s = src[name]
            if v.dtype.is_floating_point:
                v.lerp_(s.detach(), 1.0 - self.decay)
            else:
                v.copy_(s)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.module.load_state_dict(state["module"])
