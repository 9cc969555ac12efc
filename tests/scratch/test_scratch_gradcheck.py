"""Every layer's backward against central finite differences in float64 (rel. error <= 1e-6)."""

import numpy as np
import pytest

from cnnlab.scratch import layers as L
from cnnlab.scratch.gradcheck import (
    check_layer,
    check_loss,
    numeric_grad,
    rel_error,
    standard_cases,
)
from cnnlab.scratch.optim import Penalty

CASES = standard_cases(np.random.default_rng(0))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_finite_differences(case):
    title, layer, x, train = case
    errors = check_layer(layer, x, train=train)
    assert errors, title
    assert max(errors.values()) <= 1e-6, errors
    if layer.params:  # every trainable array was checked, and dx unless it is skipped on purpose
        assert set(layer.params) | {"x"} == set(errors)


def test_cases_cover_every_layer_kind():
    kinds = {type(c[1]) for c in CASES}
    wanted = {L.Conv2D, L.Conv2DNaive, L.MaxPool2D, L.AvgPool2D, L.Dense, L.ReLU, L.Sigmoid}
    wanted |= {L.Tanh, L.Dropout, L.BatchNorm, L.Flatten, L.ConvTranspose2D}
    assert wanted <= kinds


def test_softmax_cross_entropy_matches_finite_differences(rng):
    logits = rng.standard_normal((5, 7)) * 4
    assert check_loss(L.SoftmaxCrossEntropy(), logits, rng.integers(0, 7, 5)) <= 1e-6
    soft = rng.dirichlet(np.ones(7), 5)  # probability targets too
    assert check_loss(L.SoftmaxCrossEntropy(), logits, soft) <= 1e-6


def test_check_detects_a_wrong_backward(rng):
    class Broken(L.Tanh):
        def backward(self, dy):
            return dy * (1 - self._y)  # forgot the square

    assert check_layer(Broken(), rng.standard_normal((3, 4)))["x"] > 1e-2


@pytest.mark.parametrize("pen", [Penalty(l2=0.3), Penalty(l1=0.2), Penalty.elastic(0.1, 0.5)])
def test_penalty_gradient(pen, rng):
    w = rng.standard_normal((4, 3))
    w[np.abs(w) < 1e-3] = 0.1  # |W| has a kink at 0
    assert rel_error(pen.grad(w), numeric_grad(lambda: pen.loss(w), w)) <= 1e-6


def test_elastic_net_is_seed_formula(rng):
    w = rng.standard_normal((3, 3))
    lam, beta = 0.1, 0.5
    expected = lam * (beta * w**2 + np.abs(w)).sum()  # seed 001: R(W) = sum beta W^2 + |W|
    assert Penalty.elastic(lam, beta).loss(w) == pytest.approx(expected)
