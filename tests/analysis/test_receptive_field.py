"""Receptive field through real graphs, checked by the gradient-support method.

Set every conv weight positive (1/fan-in), turn max-pooling into average pooling, feed ones,
back-propagate from the centre output position and measure how far the non-zero input
gradient extends. That extent is the receptive field; the summary must predict it, including
the maximum (not the sum) over Inception branches and residual paths, and dilation.
"""

import copy

import pytest
import torch
from torch import nn

from cnnlab.analysis import summary


def _avg_pools(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.MaxPool2d):
            setattr(
                module,
                name,
                nn.AvgPool2d(
                    child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode
                ),
            )
        else:
            _avg_pools(child)


def measured_rf(net: nn.Module, channels: int, size: int) -> tuple[int, int]:
    net = copy.deepcopy(net).to("cpu", torch.float64).eval()
    _avg_pools(net)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
    x = torch.ones(1, channels, size, size, dtype=torch.float64, requires_grad=True)
    y = net(x)
    y[0, :, y.shape[2] // 2, y.shape[3] // 2].sum().backward()
    support = x.grad[0].abs().sum(0) > 0
    rows, cols = support.any(1).nonzero(), support.any(0).nonzero()
    assert rows.min() > 0 and rows.max() < size - 1, (
        "field clipped by the border: use a bigger input"
    )
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def predicted_rf(net, channels, size):
    return tuple(summary(net, (channels, size, size)).layers[-1].receptive_field)


class Inception(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.b1 = nn.Conv2d(c, c, 1)
        self.b3 = nn.Sequential(nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 5, padding=2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c, c, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


def inception_net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), Inception(4), Inception(16), nn.ReLU()
    )


class Residual(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, 2 * c, 3, stride, 1),
            nn.BatchNorm2d(2 * c),
            nn.ReLU(),
            nn.Conv2d(2 * c, 2 * c, 3, 1, 1),
        )
        self.skip = nn.Conv2d(c, 2 * c, 1, stride)

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def residual_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Residual(4, 2), Residual(8, 1))


def dilated_net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=4, dilation=4),
        nn.ReLU(),
        nn.Conv2d(4, 4, (3, 1), padding=(1, 0)),
    )


@pytest.mark.parametrize(
    "build,expected",
    [
        (inception_net, (20, 20)),  # 3x3, pool (4, jump 2), then 4 + 8 per 5x5 branch: 12, 20
        (residual_net, (17, 17)),  # 3; 5, 9 at jump 2 (the 1x1 skip sees 3); 13, 17
        (dilated_net, (19, 15)),  # 3, 3+2*2, 7+2*4 (jump 2), then the 3x1 conv: 15+2*2
    ],
)
def test_gradient_support_equals_predicted(build, expected):
    net = build()
    predicted = predicted_rf(net, 3, 64)
    assert predicted == expected
    assert measured_rf(net, 3, 64) == predicted


def test_branches_take_the_max_not_the_sum():
    s = summary(inception_net(), (3, 32, 32))
    first_cat = s.layer("2 (cat)")
    # the 5x5 branch decides: 4 + (5-1)*2 = 12; adding up the branches would give far more
    assert first_cat.receptive_field == [12, 12]
    assert s.layer("2.b1").receptive_field == [4, 4]
    assert s.layer("2.b5.1").receptive_field == [12, 12]


def test_torchvision_resnet18_and_googlenet(tv_meta):
    import torchvision

    r = torchvision.models.resnet18()
    stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2)
    assert predicted_rf(stem, 3, 160) == (99, 99) == measured_rf(stem, 3, 160)
    g = torchvision.models.googlenet(aux_logits=False, init_weights=False)
    stem = nn.Sequential(g.conv1, g.maxpool1, g.conv2, g.conv3, g.maxpool2, g.inception3a)
    predicted = predicted_rf(stem, 3, 160)
    assert predicted == measured_rf(stem, 3, 160)
    # whole torchvision ResNet-18: the classic 435 at layer4
    assert summary(tv_meta("resnet18"), (3, 224, 224)).layer("layer4.1 (add)").receptive_field == [
        435,
        435,
    ]
