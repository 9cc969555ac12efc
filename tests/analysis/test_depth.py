"""Depth in weight layers on the longest path, as the papers count it."""

import pytest
import torch
from torch import nn

from cnnlab.analysis.depth import weight_depth
from cnnlab.models.registry import get_info


@pytest.mark.parametrize(
    "name,depth",
    [("alexnet", 8), ("zfnet", 8), ("vgg16", 16), ("vgg19", 19), ("googlenet", 22)]
    + [("resnet34", 34), ("resnet56", 56)],
)
def test_zoo_depths_are_the_papers(name, depth):
    info = get_info(name)
    with torch.device("meta"):
        model = info.builder()
    assert weight_depth(model, info.input_size) == depth


class Branchy(nn.Module):
    """Two branches of depth 1 and 3 meeting in a cat, a residual add, a bias-free head."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 1))
        self.c = nn.Conv2d(3, 4, 1)
        self.head = nn.Linear(8 * 5 * 5, 2, bias=False)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(self.c(x))], 1)
        y = y + y.relu()
        return self.head(y.flatten(1))


def test_branches_take_the_longest_path_and_bias_free_linear_counts():
    assert weight_depth(Branchy(), (3, 5, 5)) == 4  # c, b.0, b.2, head
