"""LeNet-5: shapes, the paper's parameter counts and its C3 connection table."""

import pytest
import torch
from torch.nn import functional as F

from cnnlab.errors import ConfigError
from cnnlab.models import create
from cnnlab.models.lenet import C3_TABLE, C3Table, ScaledTanh, Subsampling


def n_params(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", ["lenet5", "lenet5_1998"])
@torch.no_grad()
def test_forward_shapes_mnist_and_cifar(name):
    m = create(name).eval()
    assert m(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    m3 = create(name, in_channels=3, num_classes=100).eval()
    assert m3(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_layer_params_as_paper_section_2b():
    # LeCun et al. 1998, section II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164.
    f = create("lenet5_1998").features
    c = create("lenet5_1998").classifier
    assert [n_params(f[i]) for i in (0, 2, 4, 6, 8)] == [156, 12, 1516, 32, 48120]
    assert n_params(c[0]) == 10164
    # 60,000 trainable up to F6 + 850 for the linear 84->10 output.
    assert n_params(create("lenet5_1998")) == 60850
    # The RBF output's centres are fixed, as in the paper: no trainable parameters added.
    assert n_params(create("lenet5_1998", output="rbf")) == 60000
    # Without the table C3 connects all 6 maps: 16*6*25 + 16.
    assert n_params(create("lenet5_1998", c3_table=False).features[4]) == 2416


def test_modern_lenet5_params():
    # 156 + 2,416 + 48,120 + 10,164 + 850
    assert n_params(create("lenet5")) == 61706


@pytest.mark.parametrize("channels_last", [False, True])
def test_relu_after_pool_is_the_same_network(channels_last):
    # max-pool commutes with ReLU: same weights -> same outputs and the same gradients
    torch.manual_seed(0)
    a = create("lenet5")
    b = create("lenet5", relu_after_pool=True)
    assert [type(m).__name__ for m in b.features] == [
        "Conv2d", "MaxPool2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU"
    ]  # fmt: skip
    b.load_state_dict(a.state_dict())  # the same keys
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    a, b = a.to(memory_format=fmt), b.to(memory_format=fmt)
    x = torch.randn(8, 1, 32, 32).contiguous(memory_format=fmt)
    x[:, :, :6] = 0.0  # a flat band: ties inside pooling windows
    outs = [m(x) for m in (a, b)]
    torch.testing.assert_close(outs[0], outs[1], atol=0, rtol=0)
    for out in outs:
        (out * torch.arange(10.0)).sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)


def test_c3_table_is_table_1_and_both_paths_agree():
    torch.manual_seed(0)
    dense, grouped = C3Table(), C3Table(grouped=True)
    grouped.load_state_dict(dense.state_dict())
    assert n_params(dense) == 60 * 25 + 16 == 1516
    # The non-zero pattern of the equivalent dense weight is exactly Table I.
    mask = dense.dense_weight().abs().sum((2, 3)) > 0
    expected = torch.zeros(16, 6, dtype=torch.bool)
    for out, ins in enumerate(C3_TABLE):
        expected[out, list(ins)] = True
    assert torch.equal(mask, expected)
    # Map 15 reads all six S2 maps; map 0 reads maps 0, 1, 2 only (Table I).
    x = torch.randn(2, 6, 14, 14)
    ref = F.conv2d(x, dense.dense_weight().detach(), dense.bias.detach())
    with torch.no_grad():
        assert torch.allclose(dense(x), ref, atol=1e-5)
        assert torch.allclose(grouped(x), ref, atol=1e-5)
        y = x.clone()
        y[:, 3:] = torch.randn(2, 3, 14, 14)  # maps 0-2 unchanged: C3 map 0 must not move
        assert torch.allclose(dense(y)[:, 0], dense(x)[:, 0], atol=1e-6)
        assert not torch.allclose(dense(y)[:, 15], dense(x)[:, 15])
    # 151,600 connections (paper): every weight and bias used at each of 10x10 positions.
    assert n_params(dense) * 100 == 151600
    # Gradients reach only the 60 kernels (the dense weight is rebuilt from them each call).
    dense(x).sum().backward()
    assert dense.weight.grad.shape == (60, 5, 5) and dense.weight.grad.abs().sum() > 0


def test_grouped_c3_model_gives_the_same_outputs():
    torch.manual_seed(0)
    a = create("lenet5_1998").eval()
    b = create("lenet5_1998", c3_grouped=True).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-5)


def test_paper_init_bounds():
    # Appendix A: uniform in +-2.4 / fan-in; C3 kernels of a map reading 3 S2 maps: 2.4 / 75.
    c3 = create("lenet5_1998").features[4]
    first_run = c3.weight[:18]  # maps 0-5 read three S2 maps each
    assert first_run.abs().max() <= 2.4 / 75 and first_run.abs().max() > 2.4 / 75 * 0.8
    assert c3.weight[-6:].abs().max() <= 2.4 / 150  # map 15 reads all six


def test_subsampling_and_scaled_tanh():
    s = Subsampling(2)
    with torch.no_grad():
        s.weight.copy_(torch.tensor([0.5, -1.0]))
        s.bias.copy_(torch.tensor([1.0, 0.0]))
    x = torch.arange(32.0).view(1, 2, 4, 4)
    out = s(x)
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 0, 0, 0] == 0.5 * (0 + 1 + 4 + 5) + 1.0
    assert out[0, 1, 1, 1] == -(26 + 27 + 30 + 31)
    t = ScaledTanh()
    assert torch.allclose(t(torch.tensor([1.0, -1.0])), torch.tensor([1.0, -1.0]), atol=1e-3)


def test_rbf_output_is_negative_squared_distance():
    m = create("lenet5_1998", output="rbf").eval()
    head = m.classifier[2]
    x = head.centres[3:4].clone()
    out = head(x)
    assert out.argmax(1).item() == 3 and out[0, 3].abs() < 1e-4


def test_bad_output_option():
    with pytest.raises(ConfigError, match="linear"):
        create("lenet5_1998", output="softmax")


@pytest.mark.parametrize("grouped", [False, True])
def test_summary_counts_the_papers_connections(grouped):
    """LeCun et al. 1998, section II.B: C1 122,304 connections, C3 151,600 (1,516 params),
    C5 48,120, F6 10,164. A connection is one multiply-add or one bias add: the lecture
    convention's FLOPs of a conv/FC row."""
    from cnnlab.analysis import summary

    with torch.device("meta"):
        model = create("lenet5_1998", c3_grouped=grouped)
    s = summary(model, (1, 32, 32))
    flops = {r.name: r.flops for r in s.layers}
    c3 = s.layer("features.4")
    assert (c3.params, c3.macs, c3.flops) == (1_516, 150_000, 151_600)
    assert flops["features.0"] == 122_304 and flops["features.8"] == 48_120
    assert flops["classifier.0"] == 10_164
    assert s.totals["macs"] == 326_520 and s.coverage == 1.0
    if not grouped:  # the ATen-op tools see the dense product that really runs
        assert s.with_convention("fvcore").layer("features.4").macs == 240_000
