"""Learning-rate schedules as pure functions of the optimizer step.

``lr(step) = base_lr * factor(step)``: a linear warm-up from ``warmup_start`` to 1 over
``warmup_steps``, then the schedule proper over the remaining steps. Being a pure function of
the step count, the schedule's whole state is one integer -- resuming a run sets it back
exactly, with no pickled lambdas in the checkpoint.

- ``constant``: 1
- ``step``:     ``gamma ** (number of milestones passed)``; milestones are fractions of the
  post-warm-up steps (default 1/2 and 3/4, the ResNet paper's divide-by-10 points)
- ``cosine``:   ``final + (1 - final) * (1 + cos(pi * t)) / 2`` with ``t`` in [0, 1]
- ``onecycle``: after warm-up, a linear decay to ``final`` (Smith & Topin 2017 use a linear
  ramp up then down; here the warm-up is the ramp up)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnlab.errors import ConfigError, suggest
from cnnlab.training.config import SCHEDULES


@dataclass(frozen=True)
class Schedule:
    name: str
    total_steps: int
    warmup_steps: int = 0
    warmup_start: float = 0.0  # factor at step 0 of the warm-up (0.0 -> starts at 0)
    final: float = 0.0  # cosine / onecycle end value (fraction of base lr)
    gamma: float = 0.1  # step schedule: multiply at each milestone
    milestones: tuple[float, ...] = (0.5, 0.75)

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise ConfigError(
                f"unknown schedule {self.name!r}",
                suggest(self.name, SCHEDULES) or f"choose one of: {', '.join(SCHEDULES)}",
            )
        if self.warmup_steps < 0 or self.total_steps < 1:
            raise ConfigError(
                f"schedule needs total_steps >= 1 and warmup_steps >= 0, "
                f"got {self.total_steps} and {self.warmup_steps}"
            )

    def factor(self, step: int) -> float:
        """Multiplier of the base learning rate for optimizer step ``step`` (0-based)."""
        w = self.warmup_steps
        if step < w:  # linear warm-up: (step+1)/w of the way from warmup_start to 1
            return self.warmup_start + (1.0 - self.warmup_start) * (step + 1) / w
        rest = max(1, self.total_steps - w)
        t = min(1.0, (step - w) / rest)
        if self.name == "constant":
            return 1.0
        if self.name == "step":
            return self.gamma ** sum(t >= m for m in self.milestones)
        if self.name == "cosine":
            return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * t))
        return 1.0 - (1.0 - self.final) * t  # onecycle: linear down after the warm-up ramp

    def apply(self, optimizer, step: int) -> float:
        """Set each group's lr to ``group['base_lr'] * factor(step)``; returns the factor."""
        f = self.factor(step)
        for g in optimizer.param_groups:
            g["lr"] = g["base_lr"] * f
        return f
