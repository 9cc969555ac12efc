"""ZFNet: Fig. 3's map sizes and the two conv3-5 width options."""

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.models import create


def _sizes(name, **options):
    with torch.device("meta"):
        m = create(name, **options).eval()
    x = torch.zeros(1, 3, 224, 224, device="meta")
    out = []
    with torch.no_grad():
        for layer in m.features:
            x = layer(x)
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.MaxPool2d)):
                out.append((x.shape[1], x.shape[-1]))
    return out


def test_map_sizes_as_fig3():
    # Zeiler & Fergus 2013, Fig. 3: 224 -> 110 (conv1 7x7/2) -> 55 -> 26 (conv2 5x5/2) -> 13
    # -> 13, 13, 13 -> 6.
    assert _sizes("zfnet_fig3") == [
        (96, 110), (96, 55), (256, 26), (256, 13), (384, 13), (384, 13), (256, 13), (256, 6)
    ]  # fmt: skip
    # Table 2 / seeds 000 and 002: conv3-5 with 512, 1024, 512 filters.
    assert [c for c, _ in _sizes("zfnet")][4:7] == [512, 1024, 512]


def test_params(n_params, meta_model):
    # Fig. 3 widths: conv1 14,208; conv2 614,656; conv3 885,120; conv4 1,327,488;
    # conv5 884,992; FC 37,752,832 + 16,781,312 + 4,097,000 (computed from Fig. 3's shapes).
    assert n_params(meta_model("zfnet_fig3")) == 62_357_608
    # 512-1024-512: conv3 1,180,160; conv4 4,719,616; conv5 4,719,104; fc6 75,501,568.
    assert n_params(meta_model("zfnet")) == 107_627_624
    # The option and the registered name agree.
    assert n_params(meta_model("zfnet", conv345=(384, 384, 256))) == 62_357_608


def test_forward_shapes(meta_shape):
    assert meta_shape("zfnet", (3, 224, 224)) == (2, 1000)
    assert meta_shape("zfnet_fig3", (3, 224, 224), num_classes=10) == (2, 10)


@torch.no_grad()
def test_real_forward():
    m = create("zfnet_fig3", num_classes=10).eval()
    assert m(torch.randn(1, 3, 224, 224)).shape == (1, 10)


def test_bad_widths():
    with pytest.raises(ConfigError, match="conv345"):
        create("zfnet", conv345=(512, 1024))
