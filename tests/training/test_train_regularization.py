"""L1, L2 and elastic-net penalties: values and gradients against the analytic formulas."""

import pytest
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.training.config import TrainConfig
from cnnlab.training.regularization import param_groups, penalty


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 4))


def _weights(m):
    return [m[0].weight, m[3].weight]


def _grads(m, loss):
    m.zero_grad()
    loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else None) for n, p in m.named_parameters()}


def test_l2_value_and_gradient():
    m = _model()
    lam = 0.01
    loss = penalty(m, l2=lam)
    assert torch.allclose(loss, lam * sum(w.pow(2).sum() for w in _weights(m)))
    g = _grads(m, loss)
    assert torch.allclose(g["0.weight"], 2 * lam * m[0].weight)
    assert torch.allclose(g["3.weight"], 2 * lam * m[3].weight)
    # biases and batch-norm parameters are not penalised
    assert g["0.bias"] is None and g["1.weight"] is None and g["3.bias"] is None


def test_l1_gradient_is_sign():
    m = _model()
    lam = 0.003
    g = _grads(m, penalty(m, l1=lam))
    assert torch.allclose(g["3.weight"], lam * torch.sign(m[3].weight))
    assert torch.allclose(g["0.weight"], lam * torch.sign(m[0].weight))


def test_elastic_net_matches_seed_formula():
    """Seed 001: R(W) = sum(beta W^2 + |W|), scaled by lambda (--l1)."""
    m = _model()
    lam, beta = 0.02, 0.5
    loss = penalty(m, l1=lam, beta=beta)
    want = lam * sum((beta * w.pow(2) + w.abs()).sum() for w in _weights(m))
    assert torch.allclose(loss, want)
    g = _grads(m, loss)
    w = m[0].weight
    assert torch.allclose(g["0.weight"], lam * (2 * beta * w + torch.sign(w)))


def test_no_penalty_costs_nothing():
    assert penalty(_model()) == 0.0


def test_elastic_net_needs_strength():
    with pytest.raises(ConfigError, match="--l1"):
        TrainConfig(elastic_net=0.5).validate()


def test_weight_decay_groups_skip_bias_and_bn():
    m = _model()
    groups = param_groups(m, weight_decay=0.1, lr=0.5)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(m[0].weight), id(m[3].weight)}
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))


@pytest.mark.parametrize("optimizer", ["adamw", "nesterov", "sgd"])
def test_cpu_optimizer_is_fused_and_steps_like_the_per_op_form(optimizer):
    from cnnlab.training.trainer import make_optimizer
    from cnnlab.training.trainer import param_groups as groups

    cfg = TrainConfig(model="lenet5", data="mnist", optimizer=optimizer, lr=0.05,
                      weight_decay=1e-3)  # fmt: skip
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    fused = make_optimizer(groups(nets[0], cfg, []), cfg)
    kind = type(fused)
    kw = {"betas": tuple(cfg.betas)} if optimizer == "adamw" else {
        "momentum": cfg.momentum, "nesterov": optimizer == "nesterov"}  # fmt: skip
    plain = kind(groups(nets[1], cfg, []), lr=cfg.lr, foreach=False, **kw)
    assert fused.defaults["fused"] and not plain.defaults.get("fused")
    x = torch.randn(8, 6)
    for _ in range(3):
        for net, opt in zip(nets, (fused, plain)):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
