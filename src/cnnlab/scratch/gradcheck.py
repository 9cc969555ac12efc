"""Gradient checks: every backward pass against central finite differences (float64).

For a layer ``y = f(x)`` take a fixed random ``r`` and the scalar ``L = sum(r * y)``; then
``dL/dy = r`` and ``backward(r)`` must equal the numeric derivative of ``L`` with respect to every
entry of ``x`` and of each parameter::

    dL/dx_i ~ (L(x_i + eps) - L(x_i - eps)) / (2 eps)     (error O(eps^2))

``rel_error`` is ``|a - n| / (|a| + |n|)`` over whole arrays; in float64 a correct backward gives
about 1e-10, a wrong one 1e-2 or more.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import ConfigError


def rel_error(a, n):
    """Relative error of two arrays: ``||a - n|| / (||a|| + ||n||)`` (0 when both are 0; NaN
    when either holds a NaN or an infinity, so that no ``error <= tol`` test passes it)."""
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    den = np.linalg.norm(a) + np.linalg.norm(n)
    if not np.isfinite(den):  # 'den > 0' is False for NaN: a broken gradient read as error 0
        return float("nan")
    return float(np.linalg.norm(a - n) / den) if den > 0 else 0.0


def passes(error, tol):
    """Whether an error passes ``tol``; a NaN error never does (every comparison with NaN is
    False, so ``not error > tol`` would pass it)."""
    return bool(np.isfinite(error) and error <= tol)


def check_step(eps, flag="eps"):
    """Refuse a finite-difference step that is not a finite number > 0 (0 divides by zero, NaN
    makes every error NaN, a negative one just flips both signs and hides a mistake)."""
    ok = isinstance(eps, (int, float, np.floating)) and not isinstance(eps, bool)
    if not (ok and np.isfinite(eps) and eps > 0):
        raise ConfigError(
            f"{flag} must be a finite number > 0, got {eps!r}",
            "the finite-difference step; about 1e-6 in float64 (default)",
        )


def numeric_grad(f, arr, eps=1e-6):
    """Central differences of the scalar ``f()`` for every entry of ``arr`` (perturbed in place)."""
    check_step(eps)
    g = np.zeros(arr.shape)
    flat, gflat = arr.reshape(-1), g.reshape(-1)  # views: perturbing ``flat`` perturbs ``arr``
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


def check_layer(layer, x, *, train=True, eps=1e-6, seed=0):
    """{"x": error of dx, "<param>": error of each gradient} for ``layer`` at input ``x``."""
    x = np.array(x, np.float64)
    r = None

    def loss():
        if hasattr(layer, "rng"):  # dropout: the same mask at every evaluation
            layer.rng = np.random.default_rng(seed)
        return float((layer.forward(x, train) * r).sum())

    if hasattr(layer, "rng"):
        layer.rng = np.random.default_rng(seed)
    y = layer.forward(x, train)
    r = np.random.default_rng(seed + 1).standard_normal(y.shape)
    dx = layer.backward(r)
    grads = {k: np.array(v) for k, v in layer.grads.items()}
    errors = {}
    if dx is not None:
        errors["x"] = rel_error(dx, numeric_grad(loss, x, eps))
    for k, p in layer.params.items():
        errors[k] = rel_error(grads[k], numeric_grad(loss, p, eps))
    return errors


def check_loss(loss_fn, logits, labels, eps=1e-6):
    """Error of a loss's ``backward()`` (softmax cross-entropy, multiclass hinge) against finite
    differences on the logits."""
    logits = np.array(logits, np.float64)
    loss_fn.forward(logits, labels)
    g = loss_fn.backward()
    return rel_error(g, numeric_grad(lambda: loss_fn.forward(logits, labels), logits, eps))


def distinct(shape, rng, gap=1e-2):
    """Values all at least ``gap`` apart and away from 0 (no max-pool ties or ReLU kinks that
    finite differences would straddle)."""
    n = int(np.prod(shape))
    v = (rng.permutation(n) - n / 2 + 0.5) * gap
    return v.reshape(shape)


def standard_cases(rng=None):
    """(title, layer, input, train) for every layer kind, on odd sizes, stride 2, even kernels
    with 'same' padding, overlapping pools and borders: the CLI's ``gradcheck`` table."""
    from cnnlab.scratch import layers as L

    rng = rng or np.random.default_rng(0)
    f64 = np.float64

    def img(*shape):
        return rng.standard_normal(shape)

    return [
        (
            "conv 3x3 same, odd 7x9, im2col",
            L.Conv2D(3, 4, 3, 1, "same", dtype=f64, rng=rng, method="im2col"),
            img(2, 7, 9, 3),
            True,
        ),
        (
            "conv 4x4 same (even), stride 2, banded",
            L.Conv2D(2, 3, 4, 2, "same", dtype=f64, rng=rng, method="banded"),
            img(2, 7, 8, 2),
            True,
        ),
        (
            "conv 3x2 valid, stride (2, 1), im2col",
            L.Conv2D(2, 3, (3, 2), (2, 1), "valid", dtype=f64, rng=rng, method="im2col"),
            img(2, 8, 7, 2),
            True,
        ),
        (
            "conv 2x3 valid, stride (1, 2), banded",
            L.Conv2D(2, 3, (2, 3), (1, 2), "valid", dtype=f64, rng=rng, method="banded"),
            img(2, 7, 8, 2),
            True,
        ),
        (
            "conv naive 3x3 stride 2",
            L.Conv2DNaive(2, 2, 3, 2, 1, dtype=f64, rng=rng),
            img(1, 7, 7, 2),
            True,
        ),
        (
            "deconv 3x3 stride 2",
            L.ConvTranspose2D(2, 3, 3, 2, dtype=f64, rng=rng),
            img(2, 3, 4, 2),
            True,
        ),
        (
            "deconv 4x3 stride (2, 3) pad 1, output_padding (1, 2)",
            L.ConvTranspose2D(3, 2, (4, 3), (2, 3), 1, (1, 2), dtype=f64, rng=rng),
            img(2, 3, 3, 3),
            True,
        ),
        ("max 2x2 stride 2, odd 7x7", L.MaxPool2D(2, 2), distinct((2, 7, 7, 3), rng), True),
        (
            "max 3x3 stride 2 pad 1 (overlap)",
            L.MaxPool2D(3, 2, 1),
            distinct((2, 7, 8, 2), rng),
            True,
        ),
        (
            "max 3x3 stride 2 ceil_mode",
            L.MaxPool2D(3, 2, ceil_mode=True),
            distinct((1, 8, 8, 2), rng),
            True,
        ),
        (
            "avg 2x2 stride 2 ceil (borders)",
            L.AvgPool2D(2, 2, ceil_mode=True),
            img(2, 7, 7, 3),
            True,
        ),
        ("avg 3x3 stride 2 pad 1", L.AvgPool2D(3, 2, 1), img(2, 7, 8, 2), True),
        (
            "avg 3x3 pad 1, count_include_pad",
            L.AvgPool2D(3, 2, 1, count_include_pad=True),
            img(2, 7, 8, 2),
            True,
        ),
        ("dense 12->5", L.Dense(12, 5, dtype=f64, rng=rng), img(3, 12), True),
        (
            "dense on [mb, 2, 3, 2] (flattens)",
            L.Dense(12, 4, dtype=f64, rng=rng),
            img(3, 2, 3, 2),
            True,
        ),
        ("relu", L.ReLU(), distinct((3, 4, 5, 2), rng), True),
        ("sigmoid", L.Sigmoid(), img(3, 7), True),
        ("tanh", L.Tanh(), img(3, 7), True),
        ("dropout 0.3 (train)", L.Dropout(0.3), img(3, 5, 5, 2), True),
        ("batch norm NHWC (train)", L.BatchNorm(3, dtype=f64), img(4, 3, 5, 3), True),
        ("batch norm dense (train)", L.BatchNorm(6, dtype=f64), img(5, 6), True),
        ("batch norm (eval)", L.BatchNorm(3, dtype=f64), img(4, 3, 5, 3), False),
        ("flatten", L.Flatten(), img(2, 3, 3, 2), True),
    ]


def standard_losses(rng=None):
    """(title, loss, logits, labels) for each loss: the CLI's ``gradcheck`` rows. The hinge's
    logits keep every margin s_j - s_y + 1 well away from its kink at 0, violated or not."""
    from cnnlab.scratch import layers as L

    rng = rng or np.random.default_rng(0)
    labels = np.array([0, 1, 4, 2])
    hinge = rng.permutation(20).reshape(4, 5) * 0.37  # margins are multiples of 0.37, never 1
    return [
        ("softmax cross-entropy", L.SoftmaxCrossEntropy(), rng.standard_normal((4, 5)) * 5, labels),
        ("multiclass hinge", L.MulticlassHinge(), hinge, labels),
    ]
