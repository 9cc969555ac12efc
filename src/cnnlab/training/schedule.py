"""Learning-rate schedules as pure functions of the optimizer step.

``lr(step) = base_lr * factor(step)``: a linear warm-up from ``warmup_start`` to 1 over
``warmup_steps``, then the schedule proper over the remaining steps. Being a pure function of
the step count, the schedule's whole state is one integer -- resuming a run sets it back
exactly, with no pickled lambdas in the checkpoint.

A run with a wall-clock budget (``--budget-min``) passes ``progress``, the share of its budget
spent, in place of the step count: the warm-up still ramps over its steps, then the schedule
proper runs on ``progress`` (so a machine that slows down mid-run still ends its decay on time).
:class:`Budget` keeps that clock.

- ``constant``: 1
- ``step``:     ``gamma ** (number of milestones passed)``; milestones are fractions of the
  post-warm-up steps (default 1/2 and 3/4, the ResNet paper's divide-by-10 points)
- ``cosine``:   ``final + (1 - final) * (1 + cos(pi * t)) / 2`` with ``t`` in [0, 1]
- ``onecycle``: after warm-up, a linear decay to ``final`` (Smith & Topin 2017 use a linear
  ramp up then down; here the warm-up is the ramp up)
"""

from __future__ import annotations

import math
import time
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

    def factor(self, step: int, progress: float | None = None) -> float:
        """Multiplier of the base learning rate for optimizer step ``step`` (0-based); after the
        warm-up, ``progress`` (a budget's share spent, 0..1) replaces ``step / total_steps``."""
        w = self.warmup_steps
        if step < w:  # linear warm-up: (step+1)/w of the way from warmup_start to 1
            return self.warmup_start + (1.0 - self.warmup_start) * (step + 1) / w
        if progress is None:
            t = min(1.0, (step - w) / max(1, self.total_steps - w))
        else:
            t = min(1.0, max(0.0, progress))
        if self.name == "constant":
            return 1.0
        if self.name == "step":
            return self.gamma ** sum(t >= m for m in self.milestones)
        if self.name == "cosine":
            return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * t))
        return 1.0 - (1.0 - self.final) * t  # onecycle: linear down after the warm-up ramp

    def apply(self, optimizer, step: int, progress: float | None = None) -> float:
        """Set each group's lr to ``group['base_lr'] * factor(step, progress)``; returns the
        factor."""
        f = self.factor(step, progress)
        for g in optimizer.param_groups:
            g["lr"] = g["base_lr"] * f
        return f


class Budget:
    """The clock of a run with a wall-clock budget of ``seconds``.

    ``spent_before`` is the wall time earlier processes of the run used (a resumed run goes on
    from it); ``started`` is when this process began the run (``time.perf_counter()``). The
    training part ends early enough to leave time for the evaluations still to come
    (``eval_images``: the images of the last validation pass and the test pass, times its TTA
    views), estimated at three times the training rate measured so far (a forward pass is about
    a third of a training step's work)."""

    def __init__(self, seconds: float, eval_images: int, *, spent_before: float = 0.0,
                 started: float | None = None):  # fmt: skip
        self.seconds, self.eval_images = float(seconds), int(eval_images)
        self.spent_before = spent_before
        self._t0 = time.perf_counter() if started is None else started  # perf_counter time
        self._images = 0  # trained by this process

    def spent(self) -> float:
        """Seconds of the budget used, this process and earlier ones."""
        return self.spent_before + time.perf_counter() - self._t0

    def trained(self, images: int) -> None:
        self._images += images

    def reserve(self) -> float:
        """Seconds kept for the evaluations after training."""
        here = time.perf_counter() - self._t0
        if not self._images or here <= 0:
            return 0.0
        return self.eval_images / (3.0 * self._images / here)

    def progress(self) -> float:
        """Share of the training time spent: 0 at the start, 1 when training must stop."""
        return self.spent() / max(1e-9, self.seconds - self.reserve())

    def done(self) -> bool:
        return self.progress() >= 1.0
