"""``TrainState``: everything a run changes while it trains, saved and restored in one call.

A checkpoint is ``TrainState.state_dict()``; ``--resume`` is ``state.load_state_dict(ckpt)``.
Nothing random needs saving: every step re-seeds torch's generator from ``(seed, step, rank)``
and each epoch's order is a function of ``(seed, epoch)`` (``cnnlab._util``), so the position
(``epoch``, ``batch_in_epoch``, ``step``) is the whole random state. The generators' states
are still stored (``rng``) for whoever wants to inspect them.

Checkpoint keys (a plain dict, loadable with ``weights_only=True``):

``model``, ``optimizer``, ``ema`` (or None), ``epoch`` (epochs completed, or the epoch in
progress when ``batch_in_epoch > 0``), ``batch_in_epoch``, ``step``, ``history`` (the metrics
rows), ``best`` (``{"epoch", <metric>}``), ``epoch_sums`` (the partial epoch's running training
loss and score, so the row of an epoch cut by Ctrl-C is complete after ``--resume``),
``wall_seconds``, ``rng``, plus ``meta``: what does not change during a run (``kind``,
``config``, ``model_name``, ``model_options``, ``pipeline``, ``classes``, ``data``).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from cnnlab.training.checkpoint import load_weights


class TrainState:
    """The model, optimizer and EMA with the run's position and record.

    ``meta`` holds what every checkpoint repeats but training never changes (config, model
    name and options, the input pipeline's state, class names, data size)."""

    def __init__(self, model: nn.Module, optimizer, ema=None, *, metric: str = "top1",
                 meta: dict | None = None):  # fmt: skip
        self.model, self.optimizer, self.ema = model, optimizer, ema
        self.meta = dict(meta or {})
        self.metric = metric
        self.epoch = 0
        self.batch_in_epoch = 0
        self.step = 0
        self.history: list[dict] = []
        self.best: dict = {"epoch": None, metric: None}
        self.epoch_sums = {"loss": 0.0, "score": 0.0, "seen": 0, "seconds": 0.0}
        self.wall_before = 0.0  # seconds trained by earlier processes of this run
        self._t0 = time.perf_counter()

    # ------------------------------------------------------------------ the record

    @property
    def wall_seconds(self) -> float:
        return self.wall_before + time.perf_counter() - self._t0

    def improved(self, score: float | None) -> bool:
        """Whether ``score`` (of ``metric``, higher is better) beats the best so far."""
        return score is not None and (
            self.best[self.metric] is None or score > self.best[self.metric]
        )

    def end_epoch(self, row: dict) -> None:
        """Record a finished epoch's row and move to the next epoch."""
        self.history.append(row)
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_sums = {"loss": 0.0, "score": 0.0, "seen": 0, "seconds": 0.0}

    # ------------------------------------------------------------------ save / restore

    def state_dict(self) -> dict:
        return {
            **self.meta,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "history": list(self.history),
            "best": dict(self.best),
            "epoch_sums": dict(self.epoch_sums),
            "wall_seconds": self.wall_seconds,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            },
        }

    def load_state_dict(self, state: dict, source: str = "the checkpoint") -> None:
        """Continue from a checkpoint: weights, optimizer, EMA and the run's position."""
        name, by = state.get("model_name", "the model"), state.get("written_by")
        load_weights(self.model, state["model"], source, name, by)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and state.get("ema"):  # (the same tensors as the model's)
            self.ema.load_state_dict(state["ema"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.step = int(state["step"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        self.epoch_sums = dict(state.get("epoch_sums") or self.epoch_sums)
        self.wall_before = float(state["wall_seconds"])
        self._t0 = time.perf_counter()
