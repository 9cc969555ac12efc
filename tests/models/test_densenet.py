"""DenseNet: shapes, torchvision parity (incl. old checkpoint keys), DenseNet-BC of the paper."""

import re

import pytest
import torch
import torchvision
from torch import nn
from zoo_helpers import n_params, randomize_bn

from cnnlab.models import create, get_info, list_models
from cnnlab.models.densenet import DenseBlock, DenseNet

NAMES = list_models("DenseNet")
BIG = {"densenet_bc250", "densenet_bc190"}  # 15-26M params at CIFAR size: one small forward

# torchvision's documented parameter counts (torchvision.models docs, weights tables).
TORCHVISION = {
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet161": 28_681_000,
}
# Huang et al. 2017, Table 2 "Params" of DenseNet-BC: (depth L, growth k) -> exact (ours), paper.
BC = {
    "densenet_bc100": (100, 12, 769_162, "0.8M"),
    "densenet_bc250": (250, 24, 15_324_406, "15.3M"),
    "densenet_bc190": (190, 40, 25_624_430, "25.6M"),
}


def test_all_models_registered():
    assert set(NAMES) == {*TORCHVISION, *BC}
    for name in BC:
        info = get_info(name)
        assert (info.variant, info.input_size, info.num_classes) == ("cifar", (3, 32, 32), 10)


@pytest.mark.parametrize("name", list(TORCHVISION))  # the CIFAR forms: the next test
def test_forward_shape_default_input(name):
    info = get_info(name)
    with torch.device("meta"):  # shape propagation only: no compute, no init cost
        y = create(name).eval()(torch.empty(2, *info.input_size))
    assert y.shape == (2, info.num_classes)


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_forward_shape_cifar_input(name):
    m = create(name, num_classes=10).eval()
    y = m(torch.randn(1, 3, 16, 16) if name in BIG else torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 10) and torch.isfinite(y).all()


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_params_and_names_equal_torchvision(name):
    with torch.device("meta"):
        ours, tv = create(name), getattr(torchvision.models, name)()
    assert n_params(ours) == n_params(tv) == TORCHVISION[name]
    a, b = ours.state_dict(), tv.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)


def test_torchvision_state_dict_equivalence_new_and_old_keys(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.densenet121().eval()
    randomize_bn(tv)
    sd = tv.state_dict()
    torch.save(sd, tmp_path / "new.pth")
    # Checkpoints from torchvision < 0.3 spell "denselayer1.norm.1.weight" for "norm1.weight".
    old = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
        for k, v in sd.items()
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    torch.save(old, tmp_path / "old.pth")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = tv(x)
        for f in ("new.pth", "old.pth"):
            out = create("densenet121", weights=tmp_path / f).eval()(x)
            torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_old_key_map():
    m = DenseNet.torchvision_key_map
    assert m("features.denseblock2.denselayer11.conv.2.weight") == (
        "features.denseblock2.denselayer11.conv2.weight"
    )
    assert m("features.transition1.norm.weight") == "features.transition1.norm.weight"


@pytest.mark.parametrize("name", list(BC))
def test_densenet_bc_matches_paper_table_2(name):
    depth, k, exact, paper = BC[name]
    with torch.device("meta"):
        m = create(name)
    got = n_params(m)
    assert got == exact
    assert f"{got / 1e6:.1f}M" == paper
    # Depth L counts weighted layers: the stem conv, 2 convs per dense layer, 2 transitions, fc.
    assert sum(isinstance(x, (nn.Conv2d, nn.Linear)) for x in m.modules()) == depth
    # Stem of 2k maps; each block adds n*k; transitions keep half (compression 0.5).
    n = (depth - 4) // 6
    blocks = [b for b in m.modules() if isinstance(b, DenseBlock)]
    assert [len(b) for b in blocks] == [n] * 3
    width, expected = 2 * k, []
    for i in range(3):
        width += n * k
        expected.append(width)
        width = width // 2 if i < 2 else width
    assert [b.out_channels for b in blocks] == expected
    assert m.classifier.in_features == expected[-1]


@torch.no_grad()
def test_dense_connectivity():
    # Each layer sees every earlier map of its block: layer i's input width is in + i*k, and the
    # block's output begins with its input unchanged (concatenation, not addition).
    block = DenseBlock(4, in_ch=8, growth_rate=3).eval()
    assert [layer.conv1.in_channels for layer in block.values()] == [8, 11, 14, 17]
    x = torch.randn(1, 8, 5, 5)
    y = block(x)
    assert y.shape == (1, 8 + 4 * 3, 5, 5)
    assert torch.equal(y[:, :8], x)
