"""--optimizer muon / muon-adamw: the Newton-Schulz orthogonalisation, the hybrid optimizer's
three kinds of group, which weights are Muon's, and runs that train, checkpoint and resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.config import TrainConfig
from cnnlab.training.finetune import classifier_params
from cnnlab.training.muon import Muon, orthogonalize
from cnnlab.training.trainer import make_optimizer, param_groups, train


def test_orthogonalize_keeps_the_singular_vectors_and_evens_the_values():
    torch.manual_seed(0)
    g = torch.randn(24, 60) @ torch.diag(torch.logspace(0, 1, 60))  # spread singular values
    u, s, vh = torch.linalg.svd(g, full_matrices=False)
    for m in (g, g.T):  # wide and tall alike
        o = orthogonalize(m, steps=5).float()
        assert o.shape == m.shape
        sv = torch.linalg.svdvals(o)
        assert sv.min() > 0.5 and sv.max() < 1.5, sv  # every direction moves about alike
    polar = u @ vh  # the exact nearest orthogonal matrix
    cos = (orthogonalize(g, steps=5).float() * polar).sum() / (polar.norm() * o.norm())
    assert cos > 0.9
    assert torch.linalg.svdvals(g).max() / torch.linalg.svdvals(g).min() > 5  # not trivial


def test_large_matrices_iterate_in_bfloat16_small_ones_in_float32_alike():
    from cnnlab.training.muon import BF16_FROM

    torch.manual_seed(0)
    small, large = torch.randn(64, 216), torch.randn(256, BF16_FROM // 256)  # 64x216: float32
    for g in (small, large):
        o = orthogonalize(g)  # three steps, as the optimizer runs them
        assert o.dtype == torch.float32 and o.shape == g.shape
        sv = torch.linalg.svdvals(o)
        assert sv.min() > 0.3 and sv.max() < 1.3, sv
    # the float32 path is the more exact one: it matches a float64 run of the same iteration
    a, b, c = 3.4445, -4.7750, 2.0315
    x = small.double() / small.double().norm()
    for _ in range(3):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    torch.testing.assert_close(orthogonalize(small).double(), x, rtol=1e-4, atol=1e-5)


def test_sgd_groups_step_like_torch_sgd_and_muon_groups_are_normalised():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
            for _ in range(2)]  # fmt: skip
    nets[1].load_state_dict(nets[0].state_dict())
    conv, lin = nets[0][0], nets[0][2]
    opt = Muon([{"params": [conv.weight], "muon": True, "momentum": 0.6, "lr": 0.1},
                {"params": [conv.bias, lin.weight, lin.bias], "weight_decay": 1e-2}],
               lr=0.05, momentum=0.85)  # fmt: skip
    ref = torch.optim.SGD([p for n, p in nets[1].named_parameters() if n != "0.weight"],
                          lr=0.05, momentum=0.85, nesterov=True, weight_decay=1e-2)  # fmt: skip
    x = torch.randn(5, 2, 6, 6)
    before = conv.weight.detach().clone()
    for _ in range(3):
        for net, o in zip(nets, (opt, ref)):
            o.zero_grad()
            net(x).pow(2).mean().backward()
            o.step()
        with torch.no_grad():  # the reference follows the Muon tensor, so the grads match
            nets[1][0].weight.copy_(conv.weight)
    for n, (a, b) in zip([n for n, _ in nets[0].named_parameters()],
                         zip(nets[0].parameters(), nets[1].parameters())):  # fmt: skip
        if n != "0.weight":
            torch.testing.assert_close(a, b)  # the SGD groups: torch's Nesterov SGD
    # the Muon tensor: renormalised to norm sqrt(out) before each update of about lr per
    # direction, so it ends near that norm and has moved
    assert not torch.equal(conv.weight, before)
    assert abs(conv.weight.norm().item() - 2.0) < 0.5


def test_adamw_groups_step_like_torch_adamw():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    a = nets[0]
    opt = Muon([{"params": [a[0].weight], "muon": True, "lr": 0.02},
                {"params": [a[2].weight], "adamw": True, "weight_decay": 0.1},
                {"params": [a[0].bias, a[2].bias], "adamw": True, "weight_decay": 0.0}],
               lr=3e-3, betas=(0.8, 0.95))  # fmt: skip
    b = nets[1]
    ref = torch.optim.AdamW([{"params": [b[2].weight], "weight_decay": 0.1},
                             {"params": [b[0].bias, b[2].bias], "weight_decay": 0.0}],
                            lr=3e-3, betas=(0.8, 0.95))  # fmt: skip
    x = torch.randn(7, 6)
    for _ in range(4):
        for net, o in zip(nets, (opt, ref)):
            o.zero_grad()
            net(x).pow(2).mean().backward()
            o.step()
        with torch.no_grad():
            b[0].weight.copy_(a[0].weight)  # follow the Muon matrix, so the grads match
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)
    assert opt.state[a[2].weight]["step"].item() == 4


def test_a_group_cannot_be_both_muon_and_adamw():
    with pytest.raises(ValueError, match="either Muon's"):
        Muon([{"params": [nn.Parameter(torch.ones(2, 2))], "muon": True, "adamw": True}], lr=0.1)


def test_a_muon_group_of_vectors_is_refused():
    with pytest.raises(ValueError, match="2-D"):
        Muon([{"params": [nn.Parameter(torch.ones(3))], "muon": True}], lr=0.1)


def test_param_groups_give_conv_filters_to_muon_at_muon_lr():
    cfg = TrainConfig(optimizer="muon", lr=0.5, muon_lr=0.2, muon_momentum=0.5,
                      weight_decay=1e-3)  # fmt: skip
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 2))
    opt = make_optimizer(param_groups(m, cfg, []), cfg)
    assert isinstance(opt, Muon)
    muon = [g for g in opt.param_groups if g["muon"]]
    assert len(muon) == 1 and muon[0]["params"] == [m[0].weight]
    assert muon[0]["base_lr"] == 0.2 and muon[0]["momentum"] == 0.5
    rest = [g for g in opt.param_groups if not g["muon"]]
    decayed = [p for g in rest if g["weight_decay"] > 0 for p in g["params"]]
    assert decayed == [m[3].weight] and all(g["base_lr"] == 0.5 for g in rest)


def test_muon_takes_the_hidden_linear_layers_but_not_the_classifier():
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(16, 8), nn.ReLU(),
                      nn.Linear(8, 3))  # fmt: skip
    assert classifier_params(m) == [m[4].weight, m[4].bias]
    for name in ("muon", "muon-adamw"):
        cfg = TrainConfig(optimizer=name, lr=0.01, muon_lr=0.05)
        groups = make_optimizer(param_groups(m, cfg, []), cfg).param_groups
        muon = [p for g in groups if g["muon"] for p in g["params"]]
        assert muon == [m[0].weight, m[2].weight]
        rest = [g for g in groups if not g["muon"]]
        assert all(g["adamw"] == (name == "muon-adamw") for g in rest)
        assert {id(p) for g in rest for p in g["params"]} == {
            id(p) for p in (m[0].bias, m[2].bias, m[4].weight, m[4].bias)
        }


def test_a_model_without_linear_or_conv_layers_has_no_classifier():
    assert classifier_params(nn.Sequential(nn.Flatten(), nn.ReLU())) == []


def test_muon_momentum_out_of_range_is_a_config_error():
    from cnnlab.errors import ConfigError

    with pytest.raises(ConfigError, match="--muon-momentum must be in"):
        TrainConfig(optimizer="muon", muon_momentum=1.0).validate()


@pytest.mark.parametrize("optimizer,lr", [("muon", 0.05), ("muon-adamw", 0.01)])
def test_a_muon_run_learns_and_resumes_bit_exact(tmp_path, bars, tiny_config, optimizer, lr):
    tr, te = bars
    cfg = tiny_config(tmp_path, optimizer=optimizer, lr=lr, muon_lr=0.05, epochs=2)
    straight = train(cfg.replace(name="straight"), train_set=tr, eval_set=te)
    assert straight.history[-1]["val_top1"] > 50  # the bars are learnable with it
    ref = load_checkpoint(straight.run_dir / "last.pt")
    assert any(g.get("muon") for g in ref["optimizer"]["param_groups"])

    def interrupt(st):
        if st.step == 4:
            raise KeyboardInterrupt

    cut = train(cfg.replace(name="cut"), train_set=tr, eval_set=te, callbacks=[interrupt])
    assert cut.status == "interrupted"
    resumed = train(cfg, train_set=tr, eval_set=te, resume=cut.run_dir)
    got = load_checkpoint(resumed.run_dir / "last.pt")
    assert all(torch.equal(got["model"][k], ref["model"][k]) for k in ref["model"])
