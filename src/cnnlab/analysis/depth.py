"""Depth as the papers count it: weight layers (convolutions and fully connected layers) on the
longest path from input to output. "AlexNet: 8 layers", "GoogLeNet: 22 layers" (an Inception
module is two deep, its branches side by side), "ResNet-152" (shortcut projections sit beside
the path, not on it).

The model runs once on meta tensors under a dispatch mode that gives every tensor the depth of
its deepest input, plus one after a weight op; branches meeting in ``cat`` or ``+`` take the
maximum, as the receptive field does (``receptive.py``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

# ATen ops of a layer with weights (a linear layer lowers to addmm/mm/matmul)
_WEIGHT_OPS = ("aten.convolution.", "aten._convolution.", "aten.addmm.", "aten.mm.", "aten.bmm.")


class _DepthMode(TorchDispatchMode):
    def __init__(self, weights: set[int]):
        super().__init__()
        self.depth: dict[int, int] = {}
        self.weights = weights  # ids of parameter tensors: a product with one is a layer
        self._alive: list[torch.Tensor] = []  # keeps ids unique while the trace runs

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        d = max((self.depth.get(id(t), 0) for t in inputs), default=0)
        name = str(func)
        from_weights = [id(t) in self.weights for t in inputs]
        if name.startswith(_WEIGHT_OPS) and any(from_weights):
            d += 1
        elif from_weights and all(from_weights):  # t(W), W.view(...): still the weight
            self.weights.update(id(t) for t in tree_flatten(out)[0])
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.depth[id(t)] = max(d, self.depth.get(id(t), 0))
                self._alive.append(t)
        return out


def weight_depth(model: nn.Module, input_size) -> int:
    """Convolution and fully connected layers on the longest input-to-output path of ``model``
    in eval mode (auxiliary heads off), for one input of ``input_size`` (C, H, W)."""
    from cnnlab.analysis.trace import _meta_state

    params = {n for n, _ in model.named_parameters()}
    state = _meta_state(model, torch.float32, "meta")  # the user's model stays untouched
    mode = _DepthMode({id(t) for n, t in state.items() if n in params})
    x = torch.empty(1, *input_size, device="meta")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), mode:
            out = torch.func.functional_call(model, state, (x,))
    finally:
        model.train(was_training)
    outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    return max(mode.depth.get(id(t), 0) for t in outs)
