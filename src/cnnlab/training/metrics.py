"""Classification metrics: top-k accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> list[int]:
    """Number of rows whose label is among the ``k`` highest logits, for each ``k``."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices  # [N, kmax]
    hit = top.eq(labels.view(-1, 1))
    return [int(hit[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[true, predicted]`` counts (int64), computed with one bincount."""
    idx = labels.to(torch.int64) * num_classes + pred.to(torch.int64)
    return torch.bincount(idx.cpu(), minlength=num_classes * num_classes).view(
        num_classes, num_classes
    )


@dataclass
class EvalResult:
    top1: float  # percent
    top5: float  # percent
    loss: float  # mean cross-entropy (no label smoothing)
    n: int
    confusion: torch.Tensor = field(repr=False)  # [true, predicted]
    classes: list[str] = field(default_factory=list, repr=False)

    @property
    def per_class(self) -> list[float]:
        """Accuracy (percent) of each true class; NaN for a class with no examples."""
        c = self.confusion.double()
        tot = c.sum(1)
        acc = torch.where(tot > 0, c.diag() / tot.clamp(min=1) * 100, torch.nan)
        return acc.tolist()

    def metrics(self) -> dict[str, float]:
        """The task's scores by name (``ClassificationTask.metrics``)."""
        return {"top1": self.top1, "top5": self.top5}

    def to_dict(self) -> dict:
        return {"top1": self.top1, "top5": self.top5, "loss": self.loss, "n": self.n}
