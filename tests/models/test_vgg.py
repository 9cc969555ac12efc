"""VGG: Table 1's configurations, torchvision's parameter counts and names, CIFAR forms."""

import pytest
import torch
import torchvision

from cnnlab.models import create, list_models
from cnnlab.models.vgg import CONFIGS

IMAGENET = ["vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19"]
IMAGENET += ["vgg11_bn", "vgg13_bn", "vgg16_c_bn", "vgg16_bn", "vgg19_bn"]
CIFAR = [n for n in list_models("VGG") if n.endswith("_cifar")]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("vgg11", 132_863_336), ("vgg13", 133_047_848), ("vgg16", 138_357_544),
        ("vgg19", 143_667_240), ("vgg11_bn", None), ("vgg13_bn", None), ("vgg16_bn", None),
        ("vgg19_bn", None),
    ],
)  # fmt: skip
def test_params_and_state_dict_layout_equal_torchvision(name, expected, n_params):
    with torch.device("meta"):
        ours, tv = create(name), getattr(torchvision.models, name)()
    if expected is not None:  # issue 3's numbers (torchvision's model cards)
        assert n_params(ours) == expected
    assert n_params(ours) == n_params(tv)
    layout = lambda m: [(k, tuple(v.shape)) for k, v in m.state_dict().items()]  # noqa: E731
    assert layout(ours) == layout(tv)


def test_params_rounded_as_the_papers_table2(n_params, meta_model):
    # Simonyan & Zisserman 2014, Table 2 ("Number of parameters (in millions)"):
    # A 133, A-LRN 133, B 133, C 134, D 138, E 144.
    got = {n: round(n_params(meta_model(n)) / 1e6) for n in IMAGENET[:6]}
    assert got == {"vgg11": 133, "vgg11_lrn": 133, "vgg13": 133, "vgg16_c": 134,
                   "vgg16": 138, "vgg19": 144}  # fmt: skip
    assert n_params(meta_model("vgg16_c")) == 133_638_952  # D minus three 3x3 -> 1x1 swaps


def _layers(name):
    """(kind, channels or None) for each weight layer / pool / LRN, as Table 1 lists them."""
    out = []
    with torch.device("meta"):
        features = create(name).features
    for m in features:
        if isinstance(m, torch.nn.Conv2d):
            out.append((f"conv{m.kernel_size[0]}", m.out_channels))
        elif isinstance(m, torch.nn.MaxPool2d):
            out.append(("maxpool", None))
        elif isinstance(m, torch.nn.LocalResponseNorm):
            out.append(("LRN", None))
    return out


def test_configurations_as_table1():
    # Table 1 (and seed 002): weight layers 11, 11, 13, 16, 16, 19 (with the 3 FC layers).
    for name, depth in zip(IMAGENET[:6], [11, 11, 13, 16, 16, 19]):
        convs = [x for x in _layers(name) if x[0].startswith("conv")]
        assert len(convs) + 3 == depth, name
        assert [x for x in _layers(name) if x[0] == "maxpool"] == [("maxpool", None)] * 5
    # A-LRN: LRN right after the first conv; nowhere else.
    assert _layers("vgg11_lrn")[:3] == [("conv3", 64), ("LRN", None), ("maxpool", None)]
    assert [x for x in _layers("vgg11") if x[0] == "LRN"] == []
    # C: the last conv of blocks 3, 4 and 5 is a 1x1 ("conv1-256", "conv1-512", "conv1-512").
    c = _layers("vgg16_c")
    ones = [i for i, x in enumerate(c) if x[0] == "conv1"]
    assert [c[i] for i in ones] == [("conv1", 256), ("conv1", 512), ("conv1", 512)]
    assert all(c[i + 1] == ("maxpool", None) for i in ones)
    # D and E differ only in the conv count per block.
    assert [x for x in CONFIGS["E"] if x != "M"].count(512) == 8


def test_batch_norm_after_every_conv(meta_model):
    f = meta_model("vgg16_bn").features
    for i, m in enumerate(f):
        if isinstance(m, torch.nn.Conv2d):
            assert (
                isinstance(f[i + 1], torch.nn.BatchNorm2d)
                and f[i + 1].num_features == m.out_channels
            )


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_forward_shapes(name, meta_shape):
    assert meta_shape(name, (3, 224, 224)) == (2, 1000)
    assert meta_shape(name, (3, 224, 224), num_classes=10) == (2, 10)


@pytest.mark.parametrize("name", CIFAR)
def test_cifar_forward_shapes(name, meta_model, meta_shape):
    assert meta_shape(name, (3, 32, 32)) == (2, 10)
    assert meta_shape(name, (3, 32, 32), num_classes=100) == (2, 100)
    head = meta_model(name).classifier
    assert [type(m) for m in head] == [torch.nn.Linear] and head[0].in_features == 512


def test_cifar_params_and_real_forward(n_params, meta_model):
    # VGG-16's 13 convs (14,714,688) + 512*10 + 10 = 14,719,818; BN adds 2 per channel.
    assert n_params(meta_model("vgg16_cifar")) == 14_719_818
    assert n_params(meta_model("vgg16_bn_cifar")) == 14_719_818 + 2 * 4224
    m = create("vgg16_bn_cifar").eval()
    with torch.no_grad():
        out = m(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
