"""GoogLeNet: shapes, torchvision parity (params, state dicts, outputs), aux heads, paper form."""

import pytest
import torch
import torchvision
from torch import nn
from zoo_helpers import n_params, randomize_bn

from cnnlab.errors import ConfigError
from cnnlab.models import create, get_info
from cnnlab.models.googlenet import (
    AUX_LOSS_WEIGHT,
    GoogLeNet,
    GoogLeNetOutputs,
    NaiveInception,
    googlenet_loss,
)

NAMES = ["googlenet", "googlenet_paper", "googlenet_cifar"]


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_default_input(name):
    info = get_info(name)
    with torch.device("meta"):  # shape propagation only: no compute, no init cost
        y = create(name).eval()(torch.empty(2, *info.input_size))
    assert y.shape == (2, info.num_classes)


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_forward_shape_cifar_input(name):
    y = create(name, num_classes=10).eval()(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 10)


def test_cifar_form_metadata_and_stem():
    info = get_info("googlenet_cifar")
    assert (info.variant, info.input_size, info.num_classes) == ("cifar", (3, 32, 32), 10)
    with torch.device("meta"):
        m, tv_form = create("googlenet_cifar"), create("googlenet", num_classes=10)
    assert m.conv1.conv.kernel_size == (3, 3) and m.conv1.conv.stride == (1, 1)
    assert m.maxpool1 is None and m.maxpool2 is None
    # Same parameters as the ImageNet form except conv1's 3x3 (instead of 7x7) kernel.
    assert n_params(tv_form) - n_params(m) == 64 * 3 * (49 - 9)


def test_params_equal_torchvision():
    with torch.device("meta"):
        ours, ours_aux = create("googlenet", aux_logits=False), create("googlenet")
        tv = torchvision.models.googlenet(aux_logits=False, init_weights=True)
        tv_aux = torchvision.models.googlenet(aux_logits=True, init_weights=True)
    assert n_params(ours) == n_params(tv) == 6_624_904  # torchvision's documented count
    assert n_params(ours_aux) == n_params(tv_aux)
    for a, b in ((ours, tv), (ours_aux, tv_aux)):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb)
        assert all(sa[k].shape == sb[k].shape for k in sa)


def test_torchvision_state_dict_equivalence_no_aux(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.googlenet(aux_logits=False, init_weights=True, transform_input=True)
    randomize_bn(tv)
    torch.save(tv.state_dict(), tmp_path / "g.pth")
    ours = create("googlenet", aux_logits=False, transform_input=True, weights=tmp_path / "g.pth")
    x = torch.randn(2, 3, 80, 80)  # 4a sees 5x5 maps: the aux heads' 4x4 pooling is not trivial
    with torch.no_grad():
        assert_same(ours.eval()(x), tv.eval()(x))


def test_torchvision_state_dict_equivalence_with_aux_in_train_mode(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.googlenet(aux_logits=True, init_weights=True)
    randomize_bn(tv)
    torch.save(tv.state_dict(), tmp_path / "g.pth")
    ours = create("googlenet", weights=tmp_path / "g.pth")
    for m in (tv, ours):  # dropout off (torchvision's p is 0.2, the paper's and ours 0.4)
        for d in m.modules():
            if isinstance(d, nn.Dropout):
                d.p = 0.0
    x = torch.randn(2, 3, 80, 80)  # 4a sees 5x5 maps: the aux heads' 4x4 pooling is not trivial
    with torch.no_grad():
        assert_same(ours.eval()(x), tv.eval()(x))
        # A file with auxiliary heads loads into a model without them (the heads are dropped).
        plain = create("googlenet", aux_logits=False, weights=tmp_path / "g.pth").eval()
        assert_same(plain(x), tv(x))
        out, ref = ours.train()(x), tv.train()(x)  # BN uses batch statistics here
    assert isinstance(out, GoogLeNetOutputs)
    assert_same(out.logits, ref.logits)
    assert_same(out.aux1, ref.aux_logits1)  # torchvision orders them (logits, aux2, aux1)
    assert_same(out.aux2, ref.aux_logits2)


def test_aux_outputs_in_training_mode_only():
    m = create("googlenet_cifar")
    x = torch.randn(2, 3, 16, 16)  # small input keeps this cheap; the heads pool adaptively
    out = m.train()(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert [t.shape for t in out] == [(2, 10)] * 3
    with torch.no_grad():
        y = m.eval()(x)
    assert isinstance(y, torch.Tensor) and not isinstance(y, tuple) and y.shape == (2, 10)
    no_aux = create("googlenet_cifar", aux_logits=False).train()
    y = no_aux(x)
    assert isinstance(y, torch.Tensor) and not isinstance(y, tuple)
    assert no_aux.aux1 is None and no_aux.aux2 is None


def test_loss_weights_aux_heads_by_0_3():
    assert AUX_LOSS_WEIGHT == 0.3  # paper section 5
    g = torch.Generator().manual_seed(0)
    logits, a1, a2 = (torch.randn(4, 10, generator=g) for _ in range(3))
    t = torch.tensor([1, 2, 3, 4])
    ce = nn.functional.cross_entropy
    got = googlenet_loss(GoogLeNetOutputs(logits, a1, a2), t)
    assert torch.allclose(got, ce(logits, t) + 0.3 * ce(a1, t) + 0.3 * ce(a2, t))
    assert torch.allclose(googlenet_loss(logits, t), ce(logits, t))


def test_naive_module_matches_seed_000_table():
    # Seed 000: 28x28x256 in; 1x1 128, 3x3 192, 5x5 96 and a 3x3 max-pool -> 28x28x672.
    m = NaiveInception(256, 128, 192, 96, k5=5, batch_norm=False)
    y = m(torch.randn(1, 256, 28, 28))
    assert y.shape == (1, 128 + 192 + 96 + 256, 28, 28) == (1, 672, 28, 28)
    weights = [b.conv.weight.numel() for b in (m.branch1, m.branch2, m.branch3)]
    assert weights == [1 * 1 * 256 * 128, 3 * 3 * 256 * 192, 5 * 5 * 256 * 96]
    # The pool branch passes the input through unchanged in channel count and has no weights.
    assert not any(True for _ in m.branch4.parameters())


# Paper Table 1: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) and input depth.
TABLE1 = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


def test_naive_network_grows():
    with torch.device("meta"):
        m = create("googlenet", naive=True, aux_logits=False, num_classes=10).eval()
        ref = create("googlenet", aux_logits=False, num_classes=10)
    assert isinstance(m.inception3a, NaiveInception)
    # Every naive module adds its conv outputs to its full input width (Table 1's #1x1, #3x3,
    # #5x5): 192 + 224 + 416 + ... = 4944 channels reach the classifier, not 1024.
    assert m.fc.in_features == 192 + sum(t[1] + t[3] + t[5] for t in TABLE1.values()) == 4944
    assert n_params(m) > 10 * n_params(ref)
    assert m(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 10)


def test_paper_form_layers_follow_table_1():
    m = create("googlenet_paper", aux_logits=False)
    assert not any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    assert sum(isinstance(x, nn.LocalResponseNorm) for x in m.modules()) == 2
    assert all(c.bias is not None for c in m.modules() if isinstance(c, nn.Conv2d))
    for name, (cin, c1, c3r, c3, c5r, c5, pp) in TABLE1.items():
        mod = getattr(m, f"inception{name}")
        assert mod.branch3[1].conv.kernel_size == (5, 5)
        w = cin * c1 + cin * c3r + 9 * c3r * c3 + cin * c5r + 25 * c5r * c5 + cin * pp
        b = c1 + c3r + c3 + c5r + c5 + pp
        assert n_params(mod) == w + b, name
    # Table 1's params column (in K = 1024 weights, biases not counted) where its own arithmetic
    # holds: conv 3x3 incl. its 1x1 reduce 112K, inception (3a) 159K, linear 1000K. (Its conv1
    # "2.7K" should be 7*7*3*64 = 9,408 and 4c "463K" 497.5K; docs list these slips.)
    assert round((m.conv2.conv.weight.numel() + m.conv3.conv.weight.numel()) / 1024) == 112
    assert int(sum(p.numel() for k, p in m.inception3a.named_parameters() if "weight" in k)
               / 1024) == 159  # fmt: skip
    assert m.fc.weight.numel() / 1024 == 1000
    assert n_params(m) == 6_998_552  # pinned: Table 1 widths, with biases, no aux heads


def test_paper_aux_head_pools_5x5_stride_3():
    with torch.device("meta"):
        m = create("googlenet_paper")
    assert isinstance(m.aux1.pool, nn.AvgPool2d) and m.aux1.pool.kernel_size == 5
    out = m.train()(
        torch.empty(2, 3, 224, 224, device="meta")
    )  # 4a's 14x14 maps -> 4x4 -> fc1's 2048 inputs
    assert [t.shape for t in out] == [(2, 1000)] * 3


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="form="):
        GoogLeNet(form="caffe")
    with pytest.raises(ConfigError, match="transform_input"):
        GoogLeNet(in_channels=1, transform_input=True)
    with pytest.raises(ConfigError, match="aux_logits"):
        create("googlenet", aux_logit=False)
