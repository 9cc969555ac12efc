"""AlexNet: torchvision's one-GPU form and the 2012 paper's two-GPU network."""

import pytest
import torch
import torchvision

from cnnlab.errors import ConfigError, ShapeError
from cnnlab.models import create
from cnnlab.models.alexnet import SplitLRN, paper_lrn


def test_alexnet_matches_torchvision_params_and_names(n_params):
    with torch.device("meta"):
        ours, tv = create("alexnet"), torchvision.models.alexnet()
    assert n_params(ours) == n_params(tv) == 61_100_840  # issue 3 / torchvision docs
    shapes = lambda m: [(k, tuple(v.shape)) for k, v in m.state_dict().items()]  # noqa: E731
    assert shapes(ours) == shapes(tv)


def test_alexnet2012_params_per_layer(n_params):
    # Krizhevsky et al. 2012, section 3.5 / Fig. 2: conv2, conv4, conv5 see only their GPU's
    # half of the maps. Computed: conv1 34,944; conv2 307,456; conv3 885,120; conv4 663,936;
    # conv5 442,624; fc6 37,752,832; fc7 16,781,312; fc8 4,097,000.
    with torch.device("meta"):
        m = create("alexnet2012")
    convs = [l for l in m.features if isinstance(l, torch.nn.Conv2d)]
    fcs = [l for l in m.classifier if isinstance(l, torch.nn.Linear)]
    assert [n_params(c) for c in convs] == [34_944, 307_456, 885_120, 663_936, 442_624]
    assert [n_params(f) for f in fcs] == [37_752_832, 16_781_312, 4_097_000]
    total = n_params(m)
    assert total == 60_965_224
    assert round(total / 1e6) == 61 and abs(total - 60e6) / 60e6 < 0.02  # the paper's "60 million"
    with torch.device("meta"):
        assert n_params(create("alexnet2012", groups=1)) == 60_965_224 + 307_200 + 663_552 + 442_368


@torch.no_grad()
def test_alexnet2012_sizes_as_the_paper(meta_model):
    # 227 -> 55 (conv1) -> 27 -> 13 -> 6, the paper's map sizes (section 3.5).
    m = meta_model("alexnet2012")
    x = torch.zeros(1, 3, 227, 227, device="meta")
    sizes = []
    for layer in m.features:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.MaxPool2d)):
            sizes.append(x.shape[-1])
    assert sizes == [55, 27, 27, 13, 13, 13, 13, 6]


def test_alexnet2012_refuses_224_with_a_shape_error(meta_shape):
    with pytest.raises(ShapeError, match="227"):
        meta_shape("alexnet2012", (3, 224, 224))


def test_forward_shapes_default_and_ten_classes(meta_shape):
    assert meta_shape("alexnet", (3, 224, 224)) == (2, 1000)
    assert meta_shape("alexnet", (3, 227, 227), num_classes=10) == (2, 10)
    assert meta_shape("alexnet2012", (3, 227, 227), num_classes=10) == (2, 10)
    assert meta_shape("alexnet2012", (3, 227, 227), groups=1) == (2, 1000)


def test_paper_init_and_a_real_forward():
    m = create("alexnet2012", num_classes=10).eval()
    layers = [l for l in m.modules() if isinstance(l, (torch.nn.Conv2d, torch.nn.Linear))]
    ones = [bool((l.bias == 1).all()) for l in layers]
    assert ones == [False, True, False, True, True, True, True, False]  # section 5
    assert abs(layers[5].weight.std().item() - 0.01) < 1e-3
    with torch.no_grad():  # a real CPU forward through the grouped convs and split LRN
        out = m(torch.randn(2, 3, 227, 227))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_lrn_is_the_papers_formula():
    # b = a / (k + alpha * sum_{|j-i|<=n/2} a_j^2)^beta, n=5, k=2, alpha=1e-4, beta=0.75 (sec 3.3)
    torch.manual_seed(0)
    a = torch.randn(1, 8, 3, 3) * 30
    b = torch.empty_like(a)
    for i in range(8):
        lo, hi = max(0, i - 2), min(7, i + 2)
        s = (a[:, lo : hi + 1] ** 2).sum(1)
        b[:, i] = a[:, i] / (2 + 1e-4 * s) ** 0.75
    assert torch.allclose(paper_lrn()(a), b, rtol=1e-5, atol=1e-6)
    # Split per GPU: the two halves never see each other.
    split = SplitLRN(2)(a)
    assert torch.allclose(split[:, :4], paper_lrn()(a[:, :4]), rtol=1e-5)
    assert torch.allclose(split[:, 4:], paper_lrn()(a[:, 4:]), rtol=1e-5)
    assert not torch.allclose(split, paper_lrn()(a))


def test_bad_options():
    with pytest.raises(ConfigError, match="groups"):
        create("alexnet2012", groups=4)
    with pytest.raises(ConfigError, match="init"):
        create("alexnet2012", init="xavier")
