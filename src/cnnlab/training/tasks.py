"""What differs between learning tasks, in one small object the trainer asks.

The trainer (``trainer.train``) knows nothing about classes or boxes: it feeds batches and asks
the run's *task* how a batch becomes a loss, how good the batch was, and how to score a whole
split. Classification is here; segmentation and detection add their own task class with the
same five members and are chosen by :func:`make_task`, with no second training loop.

A task provides:

- ``metrics``: the names of its scores, the first being the one that chooses ``best.pt``,
  early stopping and ``--target`` (higher is better), e.g. ``("top1", "top5")``. The metrics
  files get the columns ``train_loss``, ``train_<metrics[0]>``, ``val_loss``, ``val_<m>`` ...
- ``loss(out, target) -> (loss, out_main)``: the training loss of one batch (``out`` is what
  the model returned: a tensor or a tuple with auxiliary outputs).
- ``batch_score(out_main, target) -> tensor``: the batch's *sum* of the first metric, over its
  items (e.g. the number of correct images; the trainer divides by the item count).
- ``evaluate(model, images, targets, pipeline, **kw) -> result``: a whole split. ``result``
  has ``loss``, ``n`` and ``metrics() -> {name: value}``.
- ``save_results(result, folder, split, png)``: the task's own files for a final evaluation
  (for classification the confusion matrix and per-class accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError


@dataclass
class ClassificationTask:
    """One label per image; cross-entropy (with label smoothing, and GoogLeNet's auxiliary
    heads weighted by ``aux_weight``); top-1 and top-5 accuracy in percent."""

    classes: list[str]
    label_smoothing: float = 0.0
    aux_weight: float = 0.3
    metrics: tuple[str, ...] = field(default=("top1", "top5"))
    name = "classification"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def loss(self, out, target):
        return classification_loss(
            out, target, label_smoothing=self.label_smoothing, aux_w=self.aux_weight
        )

    def batch_score(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Correct predictions in the batch, x100 so that dividing by the count gives percent
        (soft mixup targets count their strongest class)."""
        hard = target if target.ndim == 1 else target.argmax(1)
        return (logits.detach().argmax(1) == hard).sum() * 100

    def evaluate(self, model, images, labels, pipeline, **kw):
        from cnnlab.training.evaluate import evaluate

        return evaluate(
            model, images, labels, pipeline, num_classes=self.num_classes, classes=self.classes,
            **kw,
        )  # fmt: skip

    def save_results(self, result, folder, split: str = "test", png: bool = True) -> None:
        folder.save_confusion(result, self.classes, png=png, split=split)


def classification_loss(out, target, *, label_smoothing: float, aux_w: float):
    """Cross-entropy (+ ``aux_w`` x each auxiliary head's, when the model returns
    ``(logits, aux1, aux2, ...)`` in training mode, as GoogLeNet does)."""
    if isinstance(out, (tuple, list)):
        main, *aux = out
        loss = F.cross_entropy(main, target, label_smoothing=label_smoothing)
        for a in aux:
            if a is not None:
                loss = loss + aux_w * F.cross_entropy(a, target, label_smoothing=label_smoothing)
        return loss, main
    return F.cross_entropy(out, target, label_smoothing=label_smoothing), out


TASKS = {"classification": ClassificationTask}


def make_task(cfg, classes: list[str]):
    """The task of a run (``cfg.task``, default classification) for the dataset's classes."""
    from cnnlab.errors import suggest

    kind = getattr(cfg, "task", "classification")
    if kind not in TASKS:
        raise ConfigError(
            f"unknown task {kind!r}", suggest(kind, TASKS) or f"choose one of: {', '.join(TASKS)}"
        )
    return TASKS[kind](
        list(classes), label_smoothing=cfg.label_smoothing, aux_weight=aux_weight(cfg)
    )


def aux_weight(cfg) -> float:
    """GoogLeNet's auxiliary-loss weight: ``cfg.aux_weight``, else the zoo's (0.3, Szegedy et
    al. 2015, section 5)."""
    if cfg.aux_weight is not None:
        return cfg.aux_weight
    from cnnlab.models.googlenet import AUX_LOSS_WEIGHT

    return AUX_LOSS_WEIGHT
