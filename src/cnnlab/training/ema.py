"""Exponential moving average of a model's weights (Polyak averaging).

``ema = d * ema + (1 - d) * w`` after each optimizer step; floating buffers (BN running
statistics) are averaged the same way, integer ones (batch counters) copied. Evaluating the
EMA weights usually gives a smoother, slightly better model late in training. The EMA lives
on the model's device and is saved in checkpoints.

The decay warms up: after ``t`` updates ``d = min(decay, (1 + t) / (10 + t))`` (the
``num_updates`` rule of TensorFlow's ``tf.train.ExponentialMovingAverage``), so the average
follows the model closely at first and reaches ``decay`` after about ``10 / (1 - decay)``
steps. Without it a short run keeps a large share of its random initial weights: YOLO v1 on
digits-det with ``--ema 0.99`` for 134 steps kept 0.99^134 = 26% of them and scored 0.00%
mAP@0.5 where the raw weights scored 22% (docs/training.md).
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
        self.updates = 0  # how many steps the average has taken (sets the warm-up)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        mine = self._tensors(self.module)  # listed once: walking the modules costs ~0.15 ms
        self._floats = [v for v in mine if v.dtype.is_floating_point]
        self._ints = [v for v in mine if not v.dtype.is_floating_point]
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
        decay = self.current_decay()
        self.updates += 1
        if self._floats:
            sf = [s for s, f in zip(src, self._is_float, strict=True) if f]
            torch._foreach_lerp_(self._floats, sf, 1.0 - decay)
        if self._ints:  # BN's batch counters; a loop: _foreach_copy_ is newer than torch 2.1
            for v, s in zip(self._ints, [s for s, f in zip(src, self._is_float) if not f]):
                v.copy_(s)

    def current_decay(self) -> float:
        """The decay of the next update: ``decay``, warmed up over the first steps."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        # a checkpoint from before the warm-up: its average never had one, so none now
        self.updates = int(state.get("updates", 10**9))
        self.module.load_state_dict(state["module"])
