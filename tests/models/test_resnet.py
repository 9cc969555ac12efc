"""ResNet: shapes, torchvision parity, shortcuts A/B/C, the paper's CIFAR nets, plain nets."""

import pytest
import torch
import torchvision
from torch import nn
from zoo_helpers import n_params, randomize_bn

from cnnlab.errors import ConfigError
from cnnlab.models import create, get_info, list_models
from cnnlab.models.resnet import BasicBlock, PadShortcut, PlainBlock

NAMES = list_models("ResNet")

# torchvision's documented parameter counts (torchvision.models docs, weights tables).
TORCHVISION = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}
# He et al. 2015, Table 6 (CIFAR-10), "# params" column; exact counts are ours, pinned.
CIFAR = {
    20: (269_722, "0.27M"),
    32: (464_154, "0.46M"),
    44: (658_586, "0.66M"),
    56: (853_018, "0.85M"),
    110: (1_727_962, "1.7M"),
    1202: (19_421_274, "19.4M"),
}


@pytest.fixture(scope="module")
def resnet1202():
    # Built once: 1202 layers take seconds to build (longer still on the meta device).
    return create("resnet1202").eval()


def test_all_families_registered():
    expected = {*TORCHVISION, "plain18", "plain34", "resnet18_cifar"}
    expected |= {f"resnet{d}" for d in CIFAR} | {f"plain{d}" for d in (20, 32, 44, 56, 110)}
    assert set(NAMES) == expected


@pytest.mark.parametrize("name", [n for n in NAMES if get_info(n).variant == "imagenet"])
def test_forward_shape_default_input(name):
    info = get_info(name)
    with torch.device("meta"):  # shape propagation only: no compute, no init cost
        y = create(name).eval()(torch.empty(2, *info.input_size))
    assert y.shape == (2, info.num_classes)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "resnet1202"])
@torch.no_grad()
def test_forward_shape_cifar_input(name):
    # For the CIFAR forms this is their default input.
    info = get_info(name)
    if info.variant == "cifar":
        assert info.input_size == (3, 32, 32) and info.num_classes == 10
    y = create(name, num_classes=10).eval()(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 10) and torch.isfinite(y).all()


@torch.no_grad()
def test_resnet1202_forward(resnet1202):
    assert resnet1202(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_params_and_names_equal_torchvision(name):
    with torch.device("meta"):
        ours, tv = create(name), getattr(torchvision.models, name)()
    assert n_params(ours) == n_params(tv) == TORCHVISION[name]
    a, b = ours.state_dict(), tv.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_state_dict_equivalence(name, tmp_path):
    torch.manual_seed(0)
    tv = getattr(torchvision.models, name)()
    randomize_bn(tv)
    torch.save(tv.state_dict(), tmp_path / "w.pth")
    ours = create(name, weights=tmp_path / "w.pth").eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        a, b = ours(x), tv.eval()(x)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


def test_wrong_depth_file_is_refused(tmp_path):
    with torch.device("meta"):
        sd = create("resnet18").state_dict()
    torch.save({k: torch.zeros(v.shape, dtype=v.dtype) for k, v in sd.items()}, tmp_path / "w")
    with pytest.raises(ConfigError, match="layer1.2"):  # resnet34 has 3 blocks in layer1
        create("resnet34", weights=tmp_path / "w")


def projection_params(in_ch: int, out_ch: int) -> int:
    return in_ch * out_ch + 2 * out_ch  # 1x1 conv without bias + BN gamma and beta


def test_shortcut_options_change_params_as_the_paper_says():
    with torch.device("meta"):
        a, b, c = (n_params(create("resnet18", shortcut=s)) for s in "ABC")
    # B projects where the shape changes: the first block of layer2, layer3, layer4.
    changing = (
        projection_params(64, 128) + projection_params(128, 256) + projection_params(256, 512)
    )
    # C also projects the 5 shape-keeping blocks: layer1.0, layer1.1, layer2.1, layer3.1, layer4.1.
    keeping = (2 * projection_params(64, 64) + projection_params(128, 128)
               + projection_params(256, 256) + projection_params(512, 512))  # fmt: skip
    assert a == b - changing  # A: zero padding adds no parameters
    assert c == b + keeping
    assert a < b < c
    with torch.device("meta"):
        m = create("resnet50", shortcut="A")
    assert all(isinstance(blk.downsample, PadShortcut) for blk in (m.layer1[0], m.layer2[0]))
    assert m.layer1[1].downsample is None


def test_pad_shortcut_is_subsampled_identity_plus_zero_channels():
    x = torch.randn(2, 16, 8, 8)
    y = PadShortcut(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert not y[:, 16:].any()


def test_cifar_params_match_paper_table_6(resnet1202):
    for depth, (exact, paper) in CIFAR.items():
        m = resnet1202 if depth == 1202 else create(f"resnet{depth}")
        got = n_params(m)
        assert got == exact, depth
        rounded = f"{got / 1e6:.2f}M" if got < 1e6 else f"{got / 1e6:.1f}M"
        assert rounded == paper, depth
        # 6n+2 weighted layers: the 3x3 stem, 6n convs in n blocks x 3 stages, the fc.
        weighted = sum(isinstance(x, (nn.Conv2d, nn.Linear)) for x in m.modules())
        assert weighted == depth
        widths = [m.layer1[0].conv1.out_channels, m.layer2[0].conv1.out_channels]
        assert widths + [m.layer3[0].conv1.out_channels] == [16, 32, 64]


def test_plain_nets_have_the_same_layers_but_no_shortcuts():
    for depth in (20, 32, 44, 56, 110):
        plain, res = create(f"plain{depth}"), create(f"resnet{depth}")  # small: real is quick
        assert n_params(plain) == n_params(res) == CIFAR[depth][0]  # option A adds no params
        assert list(plain.state_dict()) == list(res.state_dict())
        blocks = [b for b in plain.modules() if isinstance(b, BasicBlock)]
        assert len(blocks) == (depth - 2) // 2 and all(isinstance(b, PlainBlock) for b in blocks)
        assert all(b.downsample is None for b in blocks)


@torch.no_grad()
def test_plain_net_has_no_path_around_a_block():
    # Silence one block's residual branch (its last BN outputs 0). In the ResNet the signal still
    # flows through that block's shortcut, so the output depends on the input; in the plain net
    # the block outputs ReLU(0) = 0 and everything after it is constant.
    torch.manual_seed(0)
    res = create("resnet20").eval()
    plain = create("plain20").eval()
    plain.load_state_dict(res.state_dict())
    for m in (res, plain):
        nn.init.zeros_(m.layer2[1].bn2.weight)
        nn.init.zeros_(m.layer2[1].bn2.bias)
    x1, x2 = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    assert not torch.allclose(res(x1), res(x2))
    assert torch.equal(plain(x1), plain(x2))
    # And with the branch intact, the two nets (same weights) compute different functions.
    res, plain = create("resnet20").eval(), create("plain20").eval()
    plain.load_state_dict(res.state_dict())
    assert not torch.allclose(plain(x1), res(x1))


@torch.no_grad()
def test_zero_init_residual_makes_blocks_start_as_identity():
    m = create("resnet20", zero_init_residual=True).eval()
    x = torch.relu(torch.randn(1, 16, 8, 8))  # a block's input is a ReLU output
    assert torch.equal(m.layer1[0](x), x)
    assert m.layer1[0].bn2.weight.abs().sum() == 0


def test_stride_in_1x1_moves_the_stride_not_the_params():
    with torch.device("meta"):
        paper, tv = create("resnet50", stride_in_1x1=True), create("resnet50")
    assert paper.layer2[0].conv1.stride == (2, 2) and paper.layer2[0].conv2.stride == (1, 1)
    assert tv.layer2[0].conv1.stride == (1, 1) and tv.layer2[0].conv2.stride == (2, 2)
    assert n_params(paper) == n_params(tv)


def test_bad_shortcut_option():
    with pytest.raises(ConfigError, match="shortcut='D'"):
        create("resnet18", shortcut="D")
    with pytest.raises(ConfigError, match="shortcut"):
        create("plain20", shortcut="A")  # a plain net has no shortcut option
