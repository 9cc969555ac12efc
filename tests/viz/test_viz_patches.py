"""ZFNet's top patches: the receptive-field crop is the unit's gradient support."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.viz.patches import geometry, top_patches
from cnnlab.viz.source import Source, _imagenet_pipeline


def _support_box(model, layer, unit_pos, hw, channel=0):
    """Bounding box of the input pixels the unit's value depends on (its gradient support)."""
    x = torch.ones(1, model[0].in_channels, *hw, requires_grad=True)
    out = model[: layer + 1](x)
    out[0, channel, unit_pos[0], unit_pos[1]].backward()
    nz = x.grad[0].abs().sum(0).nonzero()
    return (int(nz[:, 0].min()), int(nz[:, 1].min()), int(nz[:, 0].max()), int(nz[:, 1].max()))


def _positive_net():
    """Average pooling and positive weights: no zero gradients inside the field, so the
    support is the whole field (max pooling would route the gradient to one pixel)."""
    net = nn.Sequential(
        nn.Conv2d(1, 2, 5, padding=2),  # same size, centre unmoved
        nn.AvgPool2d(2),  # moves the centre by half a pixel
        nn.Conv2d(2, 2, 3, stride=2),  # no padding: moves it by a whole step
        nn.Conv2d(2, 2, 3, padding=1, dilation=1),
        nn.AvgPool2d(3, stride=2, padding=1),
    )
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Conv2d):
                m.weight.uniform_(0.1, 1.0)
    return net


@pytest.mark.parametrize("layer", [0, 1, 2, 3, 4])
def test_crop_equals_gradient_support(layer):
    net = _positive_net().eval()
    hw = (40, 36)
    s = cnnlab.summary(net, (1, *hw))
    geo = geometry(s, str(layer))
    out_hw = net[: layer + 1](torch.zeros(1, 1, *hw)).shape[-2:]
    for pos in [(0, 0), (out_hw[0] // 2, out_hw[1] // 3), (out_hw[0] - 1, out_hw[1] - 1)]:
        assert geo.box(*pos, hw) == _support_box(net, layer, pos, hw), (layer, pos)


def test_geometry_follows_the_main_path_of_a_residual_net():
    from torchvision.models import resnet18

    model = resnet18().eval()
    s = cnnlab.summary(model, (3, 64, 64))
    g = geometry(s, "layer2")
    # torchvision's ResNet: 7x7/2 pad 3, 3x3/2 pad 1 pool, 3x3 convs pad 1: all centred
    assert g.centre == (0.0, 0.0)
    assert g.rf == tuple(s.layer("layer2.1.relu", 2).receptive_field)
    assert g.jump == (8, 8)


def test_top_patches_finds_the_images_that_excite_a_unit():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 1, 3, bias=False), nn.ReLU())
    with torch.no_grad():
        net[0].weight.fill_(1.0)  # unit 0 answers to bright 3x3 squares
    images = torch.zeros(6, 1, 12, 12, dtype=torch.uint8)
    for k in range(6):
        images[k, 0, 4:7, 2 + k : 5 + k] = 40 * (k + 1)  # brighter and further right with k
    pre = _imagenet_pipeline(1, (12, 12))
    src = Source(net.eval(), "t", (1, 12, 12), pre, (12, 12))
    got = top_patches(src, "1", 0, images, torch.arange(6), top=3)
    assert [p.index for p in got] == [5, 4, 3]
    best = got[0]
    assert best.position == (4, 7)  # the square's top-left in the 10x10 map
    assert best.box == (4, 7, 6, 9)
    assert best.image.shape == (3, 3, 1)
    assert (best.image == 240).all()  # the crop is exactly the bright square
    assert best.projection.shape == (3, 3, 1)
    assert np.isfinite(best.projection).all()
