"""Helpers shared by the zoo tests (imported by name: pytest puts this folder on sys.path)."""

import torch
from torch import nn


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine params, so loading them is actually checked."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
