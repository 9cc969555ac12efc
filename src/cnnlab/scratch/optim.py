"""Optimisers and weight penalties for the scratch engine.

An optimiser walks a model's layers and updates every ``params[key]`` in place from
``grads[key]``. Penalties (seed 001's regularisation) act on weights only (key ``"w"``), never on
biases or batch-norm scales:

* L2:          R(W) = sum W^2            (weight decay)      dR/dW = 2 W
* L1:          R(W) = sum |W|                                dR/dW = sign(W)
* elastic net: R(W) = sum beta W^2 + |W|                     dR/dW = 2 beta W + sign(W)

The loss gains ``lam * R(W)``; ``Penalty(l2=a, l1=b)`` stands for ``a * sum W^2 + b * sum |W|``.
"""

from __future__ import annotations

import math

import numpy as np

from cnnlab.errors import ConfigError


class Penalty:
    """``l2 * sum(W^2) + l1 * sum(|W|)`` over every weight array (key ``"w"``)."""

    def __init__(self, l2=0.0, l1=0.0):
        if not (math.isfinite(l2) and math.isfinite(l1) and l2 >= 0 and l1 >= 0):  # NaN too
            raise ConfigError(
                f"penalty strengths must be finite and >= 0, got l2={l2}, l1={l1}",
                "e.g. l2=1e-4; 0 switches a term off",
            )
        self.l2, self.l1 = float(l2), float(l1)

    @classmethod
    def elastic(cls, lam, beta):
        """Seed 001's elastic net ``lam * sum(beta W^2 + |W|)``."""
        return cls(l2=lam * beta, l1=lam)

    def __bool__(self):
        return bool(self.l2 or self.l1)

    def loss(self, w):
        return self.l2 * float((w * w).sum()) + self.l1 * float(np.abs(w).sum())

    def grad(self, w):
        return 2 * self.l2 * w + self.l1 * np.sign(w)


class Optimizer:
    def __init__(self, lr, penalty=None):
        if not (math.isfinite(lr) and lr > 0):  # 'lr <= 0' lets NaN through
            raise ConfigError(
                f"learning rate must be a finite number > 0, got {lr}", "e.g. 2e-3 for Adam"
            )
        self.lr, self.penalty, self.state = float(lr), penalty or Penalty(), {}

    def step(self, model):
        """Update every parameter of ``model`` (after ``model.backward``)."""
        for i, layer in enumerate(model.layers):
            for key, p in layer.params.items():
                g = layer.grads[key]
                if key == "w" and self.penalty:
                    g = g + self.penalty.grad(p).astype(p.dtype)
                self.update((i, key), p, g)

    def update(self, slot, p, g):
        raise NotImplementedError


class SGD(Optimizer):
    """Plain SGD; with ``momentum`` the heavy-ball update, with ``nesterov=True`` Nesterov's
    look-ahead form (PyTorch's formulation: ``v = m v + g``; step ``g + m v`` or ``v``)."""

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, penalty=None):
        super().__init__(lr, penalty)
        if not (math.isfinite(momentum) and 0 <= momentum < 1):
            raise ConfigError(
                f"momentum must be a number in [0, 1), got {momentum}", "0.9 is the usual value"
            )
        if nesterov and not momentum:
            raise ConfigError("nesterov needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def update(self, slot, p, g):
        if self.momentum:
            v = self.state.get(slot)
            v = g.copy() if v is None else np.add(self.momentum * v, g, out=v)
            self.state[slot] = v
            g = g + self.momentum * v if self.nesterov else v
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, arXiv:1412.6980) with bias-corrected moments."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, penalty=None):
        super().__init__(lr, penalty)
        self.b1, self.b2, self.eps = float(betas[0]), float(betas[1]), float(eps)
        self.t = 0

    def step(self, model):
        self.t += 1
        super().step(model)

    def update(self, slot, p, g):
        if slot not in self.state:
            self.state[slot] = (np.zeros_like(p), np.zeros_like(p))
        m, v = self.state[slot]
        m *= self.b1
        m += (1 - self.b1) * g
        v *= self.b2
        v += (1 - self.b2) * g * g
        denom = np.sqrt(v / (1 - self.b2**self.t)) + self.eps  # bias-corrected, as PyTorch
        p -= (self.lr / (1 - self.b1**self.t) * m / denom).astype(p.dtype)


OPTIMIZERS = {"sgd": SGD, "momentum": SGD, "nesterov": SGD, "adam": Adam}


def make_optimizer(name, lr, penalty=None, momentum=0.9):
    """``sgd`` | ``momentum`` | ``nesterov`` | ``adam`` by name (the CLI's ``--optimizer``)."""
    from cnnlab.errors import suggest

    if name not in OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}",
            suggest(name, OPTIMIZERS),
        )
    if name == "adam":
        return Adam(lr, penalty=penalty)
    return SGD(
        lr,
        momentum=0.0 if name == "sgd" else momentum,
        nesterov=name == "nesterov",
        penalty=penalty,
    )
