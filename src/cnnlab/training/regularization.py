"""Weight penalties of seed 001 as loss terms: L2, L1 and the elastic net.

    L2:          lambda * sum W^2                (gradient 2*lambda*W)
    L1:          lambda * sum |W|                (gradient lambda*sign(W))
    elastic net: lambda * sum (beta*W^2 + |W|)   (seed 001's R(W), scaled by lambda)

They apply to *weights* only -- conv kernels and linear matrices (tensors with 2+ dims) --
not to biases or batch-norm scales/shifts: penalising a BN scale only fights the next layer's
weights and a bias has no capacity to overfit with. Decoupled weight decay (AdamW, or SGD's
``weight_decay``) is the optimizer's job and uses the same weight/no-weight split
(:func:`param_groups`).
"""

from __future__ import annotations

import torch
from torch import nn


def is_weight(name: str, p: torch.Tensor) -> bool:
    """A penalised weight: a conv kernel or a linear matrix (2+ dims), never a bias or BN."""
    return p.ndim >= 2


def weight_tensors(model: nn.Module) -> list[torch.Tensor]:
    return [p for n, p in model.named_parameters() if p.requires_grad and is_weight(n, p)]


def penalty(model: nn.Module, *, l2: float = 0.0, l1: float = 0.0, beta: float | None = None):
    """The regularization loss term ``l2*sum W^2 + l1*sum(|W|)`` (+ ``l1*beta*sum W^2`` when
    ``beta`` is given: the elastic net ``l1 * sum(beta*W^2 + |W|)``).

    Returns a 0-dim tensor (or the float 0.0 when every coefficient is 0, to skip the work).
    """
    sq = l2 + (l1 * beta if beta is not None else 0.0)
    if sq == 0.0 and l1 == 0.0:
        return 0.0
    weights = weight_tensors(model)
    total = weights[0].new_zeros(()) if weights else torch.zeros(())
    for w in weights:
        if sq:
            total = total + sq * w.pow(2).sum()
        if l1:
            total = total + l1 * w.abs().sum()
    return total


def param_groups(model: nn.Module, weight_decay: float, lr: float, extra: dict | None = None):
    """Optimizer groups: weights get ``weight_decay``, biases and norm parameters get none."""
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (decay if is_weight(n, p) else no_decay).append(p)
    extra = extra or {}
    groups = [
        {"params": decay, "weight_decay": weight_decay, "lr": lr, **extra},
        {"params": no_decay, "weight_decay": 0.0, "lr": lr, **extra},
    ]
    return [g for g in groups if g["params"]]
