"""Muon for convolution filters, Nesterov SGD for everything else: one optimizer.

Muon (Keller Jordan, "Muon: An optimizer for hidden layers in neural networks", 2024; used in
his ``airbench94_muon`` CIFAR-10 record, 94% in 8 epochs where airbench94's SGD needs 9.9)
replaces a weight matrix's momentum update by the nearest semi-orthogonal matrix (its singular
values all set to about 1), found by a few Newton-Schulz iterations: every direction of the
filter bank moves by the same amount, however small its gradient. A conv filter bank
``[out, in, kh, kw]`` is treated as the matrix ``[out, in*kh*kw]``. As in airbench94_muon,
each Muon tensor is rescaled to Frobenius norm ``sqrt(out)`` before its update (a weight
normalisation: the update's size is then relative to the weights, and weight decay has no
work to do on them, so these groups get none).

``torch.optim.Muon`` (torch 2.9+) takes 2-D parameters only, which is why this one exists.
Groups with ``muon=True`` take the orthogonalised update; the others are plain SGD with
(Nesterov) momentum and weight decay, so a run keeps one optimizer, one state dict and one
learning-rate schedule (each group's ``lr`` follows ``base_lr`` like any other group's).
"""

from __future__ import annotations

import torch

__all__ = ["Muon", "orthogonalize"]

# the quintic iteration's coefficients, chosen (Jordan 2024) to push every singular value
# in (0, 1] towards 1 fast, rather than to converge exactly
NS_COEFFS = (3.4445, -4.7750, 2.0315)


def orthogonalize(g: torch.Tensor, steps: int = 3, eps: float = 1e-7) -> torch.Tensor:
    """About ``U V^T`` of the 2-D ``g = U S V^T`` (singular values mapped to ~0.7-1.2), in
    ``steps`` Newton-Schulz iterations run in bfloat16 (fast on GPUs and AMX CPUs; the result
    is an update direction, which needs no more precision)."""
    a, b, c = NS_COEFFS
    x = g.to(torch.bfloat16)
    x = x / (x.norm() + eps)  # every singular value now <= 1
    wide = x.shape[0] <= x.shape[1]
    if not wide:
        x = x.T  # iterate on the smaller Gram matrix
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x if wide else x.T).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Muon on the groups marked ``muon=True``, Nesterov SGD on the others.

    Group keys: ``lr``, ``momentum``, ``nesterov``, ``weight_decay`` (SGD groups only, coupled
    as in ``torch.optim.SGD``), ``muon`` and ``ns_steps`` (Muon groups)."""

    def __init__(self, params, lr: float, momentum: float = 0.85, nesterov: bool = True,
                 weight_decay: float = 0.0, ns_steps: int = 3):  # fmt: skip
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                        muon=False, ns_steps=ns_steps)  # fmt: skip
        super().__init__(params, defaults)
        for g in self.param_groups:
            if g["muon"] and any(p.ndim < 2 for p in g["params"]):
                raise ValueError("Muon groups take matrices or filter banks (2-D or more)")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for g in self.param_groups:
            mom, lr = g["momentum"], g["lr"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if not g["muon"] and g["weight_decay"]:
                    grad = grad.add(p, alpha=g["weight_decay"])
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(mom).add_(grad)
                update = grad.add(buf, alpha=mom) if g["nesterov"] else buf
                if g["muon"]:
                    p.mul_(len(p) ** 0.5 / p.norm().clamp_min(1e-12))
                    update = orthogonalize(update.reshape(len(p), -1), g["ns_steps"])
                    update = update.view_as(p)
                p.add_(update, alpha=-lr)
        return loss
