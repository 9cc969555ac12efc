"""What differs between learning tasks, in one small object the trainer asks.

The trainer (``trainer.train``) knows nothing about classes or boxes: it feeds batches and asks
the run's *task* how a batch becomes a loss, how good the batch was, and how to score a whole
split. Classification is here; segmentation and detection add their own task class with the
same members to :data:`TASKS` and are chosen by ``TrainConfig.task`` through
:func:`make_task`, with no second training loop.

A task provides (a new one copies :class:`ClassificationTask`'s shape):

- ``from_config(cfg, classes)``: the task of a run (a classmethod; :func:`make_task` calls it).
- ``augment_batch(augment, x, y, index) -> (x, target)``: the training batch after
  augmentation (``augment`` may be None); a dense task transforms its masks or boxes with the
  images here.
- ``metrics``: the names of its scores, the first being the one that chooses ``best.pt``,
  early stopping and ``--target`` (higher is better), e.g. ``("top1", "top5")``. The metrics
  files get the columns ``train_loss``, ``train_<metrics[0]>``, ``val_loss``, ``val_<m>`` ...
- ``loss(out, target) -> (loss, out_main)``: the training loss of one batch (``out`` is what
  the model returned: a tensor or a tuple with auxiliary outputs).
- ``batch_score(out_main, target) -> tensor``: the batch's *sum* of the first metric over its
  images (e.g. 100 x the number of correct images; the trainer divides by the image count).
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


def multiclass_hinge(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Seed 001's multiclass SVM loss, margin 1: the mean over images of
    ``sum_{j != y} max(0, s_j - s_y + 1)``. ``F.multi_margin_loss`` computes the same sum divided
    by the number of classes, so it is scaled back (the scratch engine's ``MulticlassHinge`` is
    the same formula, gradient-checked)."""
    return F.multi_margin_loss(logits, target, margin=1.0) * logits.shape[1]


LOSSES = {"cross-entropy": None, "hinge": multiclass_hinge}  # None: softmax cross-entropy


@dataclass
class ClassificationTask:
    """One label per image; cross-entropy (with label smoothing) or seed 001's multiclass hinge
    loss, GoogLeNet's auxiliary heads weighted by ``aux_weight``; top-1 and top-5 accuracy in
    percent."""

    classes: list[str]
    label_smoothing: float = 0.0
    aux_weight: float = 0.3
    loss_name: str = "cross-entropy"
    metrics: tuple[str, ...] = field(default=("top1", "top5"))
    name = "classification"

    @classmethod
    def from_config(cls, cfg, classes) -> ClassificationTask:
        return cls(
            list(classes),
            label_smoothing=cfg.label_smoothing,
            aux_weight=aux_weight(cfg),
            loss_name=getattr(cfg, "loss", "cross-entropy"),
        )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def augment_batch(self, augment, x, y, index):
        """uint8 batch -> (augmented [0, 1] float batch, targets): class indices, or soft
        ``[B, K]`` probabilities when the augmentation mixes images (mixup)."""
        return (x, y) if augment is None else augment(x, y, index=index)

    def forward(self, net, x, target):
        """The model's output for a batch (a detector may need the targets as well)."""
        return net(x)

    def loss(self, out, target):
        return classification_loss(
            out,
            target,
            label_smoothing=self.label_smoothing,
            aux_w=self.aux_weight,
            criterion=LOSSES[self.loss_name],
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
            loss_fn=LOSSES[self.loss_name], **kw,
        )  # fmt: skip

    def save_results(self, result, folder, split: str = "test", png: bool = True) -> None:
        folder.save_confusion(result, self.classes, png=png, split=split)


def classification_loss(out, target, *, label_smoothing: float, aux_w: float, criterion=None):
    """Cross-entropy, or ``criterion(logits, target)`` (the hinge loss), + ``aux_w`` x each
    auxiliary head's when the model returns ``(logits, aux1, aux2, ...)`` in training mode, as
    GoogLeNet does."""

    def one(logits):
        if criterion is None:
            return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
        if target.ndim != 1:
            raise ConfigError(
                "the hinge loss needs one class per image; these targets are soft (mixup)",
                "drop mixup, or use --loss cross-entropy",
            )
        return criterion(logits, target)

    if isinstance(out, (tuple, list)):
        main, *aux = out
        loss = one(main)
        for a in aux:
            if a is not None:
                loss = loss + aux_w * one(a)
        return loss, main
    return one(out), out


TASKS = {"classification": ClassificationTask}


def make_task(cfg, classes: list[str], data=None):
    """The task of a run for the dataset's classes: the training set's own ``task``
    (segmentation and detection sets carry one; dense_tasks.py), else ``cfg.task``, default
    classification."""
    from cnnlab.errors import suggest
    from cnnlab.training.dense_tasks import DENSE_FAMILIES, dense_task

    kind = getattr(data, "task", None) or getattr(cfg, "task", "classification")
    if kind in ("segmentation", "detection"):
        return dense_task(cfg, data)
    family = _family(cfg.model)
    if family in DENSE_FAMILIES:
        want = DENSE_FAMILIES[family]
        data = "digits-seg" if want == "segmentation" else "digits-det"
        raise ConfigError(
            f"{cfg.model} is a {want} model; it cannot be trained on {cfg.data} (classification)",
            f"train it on a {want} set, e.g. --data {data}",
        )
    if kind not in TASKS:
        raise ConfigError(
            f"unknown task {kind!r}", suggest(kind, TASKS) or f"choose one of: {', '.join(TASKS)}"
        )
    return TASKS[kind].from_config(cfg, classes)


def _family(model: str) -> str | None:
    from cnnlab.models import get_info

    try:
        return get_info(model).family
    except ConfigError:  # not a zoo name (a module:factory model): classification
        return None


def aux_weight(cfg) -> float:
    """GoogLeNet's auxiliary-loss weight: ``cfg.aux_weight``, else the zoo's (0.3, Szegedy et
    al. 2015, section 5)."""
    if cfg.aux_weight is not None:
        return cfg.aux_weight
    from cnnlab.models.googlenet import AUX_LOSS_WEIGHT

    return AUX_LOSS_WEIGHT
