"""Muon for the hidden weights, Nesterov SGD or AdamW for everything else: one optimizer.

Muon (Keller Jordan, "Muon: An optimizer for hidden layers in neural networks", 2024; used in
his ``airbench94_muon`` CIFAR-10 record, 94% in 8 epochs where airbench94's SGD needs 9.9)
replaces a weight matrix's momentum update by the nearest semi-orthogonal matrix (its singular
values all set to about 1), found by a few Newton-Schulz iterations: every direction of the
filter bank moves by the same amount, however small its gradient. A conv filter bank
``[out, in, kh, kw]`` is treated as the matrix ``[out, in*kh*kw]``. As in airbench94_muon,
each Muon tensor is rescaled to Frobenius norm ``sqrt(out)`` before its update (a weight
normalisation: the update's size is then relative to the weights, and weight decay has no
work to do on them, so these groups get none).

Muon is meant for the hidden layers only (Jordan): the classifier and the biases and norm
scales take a standard optimizer. Two forms, as ``--optimizer`` names them:

- ``muon``: the rest by Nesterov SGD with coupled weight decay, as airbench94_muon does;
- ``muon-adamw``: the rest by AdamW (decoupled weight decay), as in Jordan's reference
  ``MuonWithAuxAdam``; on LeNet-5, whose hidden weights are mostly fully connected, it reaches
  99% MNIST validation accuracy in 1.5 epochs where AdamW alone needs 3 (docs/training.md).

``torch.optim.Muon`` (torch 2.9+) takes 2-D parameters only, which is why this one exists.
Groups with ``muon=True`` take the orthogonalised update, groups with ``adamw=True`` AdamW's,
the others SGD's, so a run keeps one optimizer, one state dict and one learning-rate schedule
(each group's ``lr`` follows ``base_lr`` like any other group's).
"""

from __future__ import annotations

import torch
from torch.optim.adamw import adamw

__all__ = ["Muon", "orthogonalize"]

# the quintic iteration's coefficients, chosen (Jordan 2024) to push every singular value
# in (0, 1] towards 1 fast, rather than to converge exactly
NS_COEFFS = (3.4445, -4.7750, 2.0315)
BF16_FROM = 1 << 17  # elements: from here bfloat16 iterations beat float32 ones on the CPU


def orthogonalize(g: torch.Tensor, steps: int = 3, eps: float = 1e-7) -> torch.Tensor:
    """About ``U V^T`` of the 2-D ``g = U S V^T`` (singular values mapped to ~0.7-1.2), in
    ``steps`` Newton-Schulz iterations. They run in bfloat16 on GPUs and for large matrices
    (the result is an update direction, which needs no more precision; on an AMX CPU a
    256 x 2304 bank takes 4.3 ms against 8.4 ms in float32), in float32 for the CPU's small
    ones (LeNet-5's 120 x 400: 0.55 ms against 0.73 ms, the casts costing more than they save).
    """
    a, b, c = NS_COEFFS
    fast = g.is_cuda or g.numel() >= BF16_FROM
    x = g.to(torch.bfloat16 if fast else torch.float32)
    x = x / (x.norm() + eps)  # every singular value now <= 1
    wide = x.shape[0] <= x.shape[1]
    if not wide:
        x = x.T  # iterate on the smaller Gram matrix
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return (x if wide else x.T).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Muon on the groups marked ``muon=True``, AdamW on those marked ``adamw=True``, Nesterov
    SGD on the others.

    Group keys: ``lr``, ``momentum``, ``nesterov``, ``weight_decay`` (coupled as in
    ``torch.optim.SGD`` in SGD groups, decoupled as in ``torch.optim.AdamW`` in AdamW groups,
    unused in Muon groups), ``muon`` and ``ns_steps`` (Muon groups), ``adamw``, ``betas`` and
    ``eps`` (AdamW groups)."""

    def __init__(self, params, lr: float, momentum: float = 0.85, nesterov: bool = True,
                 weight_decay: float = 0.0, ns_steps: int = 3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):  # fmt: skip
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                        muon=False, ns_steps=ns_steps, adamw=False, betas=tuple(betas),
                        eps=eps)  # fmt: skip
        super().__init__(params, defaults)
        for g in self.param_groups:
            if g["muon"] and any(p.ndim < 2 for p in g["params"]):
                raise ValueError("Muon groups take matrices or filter banks (2-D or more)")
            if g["muon"] and g["adamw"]:
                raise ValueError("a group is either Muon's (muon=True) or AdamW's (adamw=True)")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for g in self.param_groups:
            params = [p for p in g["params"] if p.grad is not None]
            if not params:
                continue
            if g.get("adamw"):  # .get: a checkpoint of 0.2's Muon has no such key
                self._adamw(g, params)
                continue
            # (Nesterov) momentum, over the group's tensors at once (foreach: one call each)
            mom, grads = g["momentum"], [p.grad for p in params]
            if not g["muon"] and g["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=g["weight_decay"])
            bufs = [self._buffer(p) for p in params]
            torch._foreach_mul_(bufs, mom)
            torch._foreach_add_(bufs, grads)
            updates = torch._foreach_add(grads, bufs, alpha=mom) if g["nesterov"] else bufs
            if g["muon"]:
                norms = torch._foreach_clamp_min(torch._foreach_norm(params), 1e-12)
                for p, n in zip(params, norms):  # renormalise to norm sqrt(out)
                    p.mul_(len(p) ** 0.5 / n)
                updates = [orthogonalize(u.reshape(len(u), -1), g["ns_steps"]).view_as(u)
                           for u in updates]  # fmt: skip
            torch._foreach_add_(params, updates, alpha=-g["lr"])
        return loss

    def _buffer(self, p: torch.Tensor) -> torch.Tensor:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        return state["momentum_buffer"]

    def _adamw(self, g: dict, params: list[torch.Tensor]) -> None:
        """``torch.optim.AdamW``'s update, by torch's own functional form (its fused kernel:
        0.15 ms a LeNet-5 step on one CPU thread, against 0.5 ms tensor by tensor)."""
        for p in params:
            state = self.state[p]
            if "exp_avg" not in state:
                state["step"] = torch.zeros((), dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
        states = [self.state[p] for p in params]
        fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
        adamw(
            params, [p.grad for p in params], [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states], fused=fused,
            amsgrad=False, beta1=g["betas"][0], beta2=g["betas"][1], lr=g["lr"],
            weight_decay=g["weight_decay"], eps=g["eps"], maximize=False,
        )  # fmt: skip
