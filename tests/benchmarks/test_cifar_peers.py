"""benchmarks/cifar_peers.py: the airbench94 port and the course recipe train and report, on tiny
generated data; the pieces of the port do what the paper states."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import cifar_peers as P  # noqa: E402
from cnnlab.data.datasets import ImageSet  # noqa: E402


def _set(n, seed):
    """A learnable toy: class k images are brighter in channel k % 3."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.randint(0, 120, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    x[torch.arange(n), y % 3] += (y * 12).to(torch.uint8)[:, None, None]
    return ImageSet(x, y, [str(k) for k in range(10)], "toy", "train")


def test_airbench_lr_triangle_runs_on_the_share_of_the_budget_spent():
    f = [P._lr_factor(k / 100) for k in range(101)]
    assert f[0] == pytest.approx(0.2) and f[23] == pytest.approx(1.0)
    assert f[-1] == pytest.approx(0.07) and max(f) == pytest.approx(1.0)
    assert P._lr_factor(1.4) == pytest.approx(0.07)  # past the end: the final value


def test_whitening_decorrelates_patches():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(64, 1, 16, 16, generator=g)
    x = torch.cat([base, 0.5 * base + 0.1 * torch.randn(64, 1, 16, 16, generator=g),
                   torch.randn(64, 1, 16, 16, generator=g)], 1)  # fmt: skip
    conv = torch.nn.Conv2d(3, 24, 2)
    P.whiten(conv, x)
    w = conv.weight.flatten(1)
    assert torch.allclose(w[:12], -w[12:])  # both signs of each filter
    patches = torch.nn.functional.unfold(x, 2).transpose(1, 2).reshape(-1, 12)
    with torch.no_grad():
        z = patches @ w[:12].T
        cov = z.T @ z / len(z)
    off = cov - torch.diag(cov.diagonal())
    assert off.abs().max() < 1e-3  # uncorrelated ...
    assert ((cov.diagonal() > 0.9) & (cov.diagonal() <= 1)).all()  # ... variance lam/(lam+eps)


def test_airbench_net_shapes_and_frozen_parts():
    net = P.airbench94_net((32, 16, 16))
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert not net[0].weight.requires_grad and net[0].bias.requires_grad
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not b.weight.requires_grad and b.bias.requires_grad for b in bns)
    conv = net[2][0]  # the first block's first conv starts as the identity on its inputs
    x = torch.randn(1, 24, 8, 8)
    assert torch.allclose(conv(x)[:, :24], x, atol=1e-6)


def test_airbench_port_trains_within_a_small_budget():
    torch.set_num_threads(1)
    r = P.train_airbench94(_set(96, 0), _set(40, 1), budget_s=4.0, widths=(8, 16, 16))
    assert r["steps"] >= 1 and 0 <= r["top1"] <= 100
    assert r["epochs"] == pytest.approx(r["steps"] / 1)  # 96 images, batch 96: 1 step an epoch
    assert 0 < r["train_s"] <= r["wall_s"]


def test_course_recipe_trains_within_a_small_budget():
    torch.set_num_threads(1)
    r = P.train_course(_set(64, 0), _set(40, 1), budget_s=3.0, workers=0)
    assert r["steps"] >= 1 and 0 <= r["top1"] <= 100
    assert r["epochs"] == pytest.approx(r["steps"] / 1)  # 64 images, one batch of 64
    assert "ResNet-20" in r["name"] and 0 < r["train_s"] <= r["wall_s"]


def test_airbench_port_in_bf16_trains_and_says_so():
    r = P.train_airbench94(_set(96, 0), _set(40, 1), budget_s=4.0, widths=(8, 16, 16), amp=True)
    assert r["name"].endswith(", bf16)") and r["steps"] >= 1 and 0.0 <= r["top1"] <= 100.0
