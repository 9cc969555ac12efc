"""Evaluation: top-1/top-5, loss, confusion matrix -- optionally averaged over TTA views.

With test-time augmentation every image is seen as several views (``flip``: 2, ``10crop``: 10,
``multiscale``: 5 scales x 10 crops = 50, seed 001's protocol); the softmax probabilities of
the views are averaged and the average is scored. Under DDP each rank scores its share of the
images and the counts are summed, so all ranks get the same numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.training.distributed import DistInfo, all_reduce_sum
from cnnlab.training.metrics import EvalResult, confusion_matrix, topk_correct


def _logits(out):
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    pipeline,
    *,
    num_classes: int,
    batch_size: int = 1024,
    device="cpu",
    tta: str = "none",
    amp: bool = False,
    classes: list[str] | None = None,
    dist: DistInfo | None = None,
    loss_fn=None,
) -> EvalResult:
    """Scores of ``model`` on a split. The loss is cross-entropy of the (view-averaged)
    probabilities, or ``loss_fn(logits, labels)`` (mean over the batch; with TTA on the
    view-averaged logits), e.g. the hinge loss a run was trained with."""
    dist = dist or DistInfo()
    was_training = model.training
    model.eval()
    device = torch.device(device)
    idx = torch.arange(dist.rank, len(images), dist.world_size)
    conf = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    sums = torch.zeros(3, dtype=torch.float64)  # loss sum, top5 hits, count
    amp_ctx = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    for start in range(0, len(idx), batch_size):
        sel = idx[start : start + batch_size]
        x = images.index_select(0, sel.to(images.device)).to(device, non_blocking=True)
        y = labels.index_select(0, sel.to(labels.device)).to(device, non_blocking=True)
        with amp_ctx:
            if tta == "none":
                logits = _logits(model(pipeline(x))).float()
                logp = F.log_softmax(logits, dim=1)
            else:  # average the softmax of all views (groups of [v, B, C, h, w])
                from cnnlab.data.tta import iter_tta_views

                probs, logit_sum, count = 0.0, 0.0, 0
                for views in iter_tta_views(x, tta):
                    v, b = views.shape[:2]
                    out = _logits(model(pipeline(views.reshape(v * b, *views.shape[2:])))).float()
                    probs = probs + out.softmax(1).view(v, b, -1).sum(0)
                    logit_sum = logit_sum + out.view(v, b, -1).sum(0)
                    count += v
                logp = (probs / count).clamp_min(1e-12).log()
                logits = logit_sum / count
        if loss_fn is None:
            sums[0] += float(F.nll_loss(logp, y, reduction="sum"))
        else:
            sums[0] += float(loss_fn(logits, y)) * len(y)
        sums[1] += topk_correct(logp, y, ks=(5,))[0]
        sums[2] += len(y)
        conf += confusion_matrix(logp.argmax(1), y, num_classes)
    if dist.enabled:
        sums, conf = sums.to(device), conf.to(device)
        all_reduce_sum(sums, dist)
        all_reduce_sum(conf, dist)
        sums, conf = sums.cpu(), conf.cpu()
    model.train(was_training)
    n = max(1, int(sums[2]))
    return EvalResult(
        top1=100.0 * float(conf.diag().sum()) / n,
        top5=100.0 * float(sums[1]) / n,
        loss=float(sums[0]) / n,
        n=int(sums[2]),
        confusion=conf,
        classes=list(classes or []),
    )
