"""Recipes resolve to valid configs and buildable models; cifar-fast-net's whitening layer."""

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.models import create
from cnnlab.models.cifar_fast import cifar_fast_net, fashion_vgg
from cnnlab.training.config import TrainConfig
from cnnlab.training.recipes import RECIPES, get_recipe


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_is_a_valid_config(name):
    r = get_recipe(name)
    cfg = TrainConfig().replace(**r.config).validate()
    channels = 1 if cfg.data in ("digits", "mnist", "fashion-mnist") else 3
    classes = 100 if cfg.data == "cifar100" else 10
    m = create(cfg.model, num_classes=classes, in_channels=channels, **cfg.model_options)
    assert sum(p.numel() for p in m.parameters()) > 0


def test_unknown_recipe_suggests():
    with pytest.raises(ConfigError, match="lenet5-mnist"):
        get_recipe("lenet5-mnst")


def test_whitening_layer_decorrelates_patches():
    torch.manual_seed(0)
    # correlated "images": smooth noise, so neighbouring pixels and channels covary strongly
    x = torch.nn.functional.avg_pool2d(torch.randn(400, 3, 36, 36), 5, 1)[:, :, :32, :32]
    x = x + 0.5 * x.mean(1, keepdim=True)
    net = cifar_fast_net(widths=(8, 8, 8))
    assert not net.whitened
    net.data_init(x)
    assert net.whitened and not net.whiten.weight.requires_grad
    out = net.whiten(x)[:, :12]  # the 12 "+v" filters (the other 12 are their negatives)
    feats = out.permute(1, 0, 2, 3).reshape(12, -1)
    cov = torch.cov(feats).detach()
    off = cov - torch.diag(cov.diag())
    assert off.abs().max() < 1e-3  # decorrelated
    # variance lambda / (lambda + eps) along each eigen-direction: ~1 for the strong ones,
    # damped by eps (5e-4) for the faintest instead of blowing up their noise
    patches = torch.nn.functional.unfold(x, 2).transpose(1, 2).reshape(-1, 12)
    lam = torch.linalg.eigvalsh(torch.cov(patches.T.double())).flip(0).float()
    assert torch.allclose(cov.diag(), lam / (lam + 5e-4), atol=2e-3)
    assert cov.diag()[0] > 0.99
    assert torch.equal(net.whiten.weight[12:], -net.whiten.weight[:12])
    assert net(x[:4]).shape == (4, 10)


def test_fashion_vgg_shape():
    assert fashion_vgg()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
