"""Receptive field of every tensor, carried through the traced graph op by op.

Each tensor gets a state per spatial dimension: ``rf`` (size of the input window one of its
elements sees), ``jump`` (distance in input pixels between neighbouring elements, the product
of the earlier strides) and ``full`` (the window seen by the whole map, ``rf + (size-1)*jump``,
which a fully connected layer or a global pooling reads). The rules:

- convolution / pooling: ``rf += (K_eff - 1) * jump; jump *= stride`` (the recurrence of
  :func:`cnnlab.arithmetic.receptive_field_step`, dilation-aware);
- where branches meet (``torch.cat`` of Inception branches, the ``+`` of a residual block,
  any op with several inputs) the field is the **maximum** over the inputs, not their sum;
- a reduction over the spatial dims (global average pooling) or a matrix product after a
  flatten sees the whole map: ``rf = full``;
- every other op (activations, normalisation, views) keeps the field of its input.

The tests check these numbers against the gradient-support method on real graphs.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from cnnlab.analysis.ops import (
    ADAPTIVE_POOL_OPS,
    CONV_OPS,
    MATMUL_OPS,
    POOL_OPS,
    REDUCE_OPS,
    UPSAMPLE_OPS,
)
from cnnlab.arithmetic import receptive_field_step


def _tensors(obj, out):
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _tensors(o, out)
    return out


def _per_dim(v, n):
    if isinstance(v, (list, tuple)):
        v = list(v)
        if len(v) == 0:
            return None
        return v * n if len(v) == 1 else v[-n:]
    return [v] * n


def _arg(op, i, name, default):
    if len(op.args) > i:
        return op.args[i]
    return op.kwargs.get(name, default)


def _step(state, kernel, stride, dilation):
    rf, jump, full = state
    n = len(rf)
    kernel, stride, dilation = _per_dim(kernel, n), _per_dim(stride, n), _per_dim(dilation, n)
    rf2, jump2 = [], []
    for r, j, k, s, d in zip(rf, jump, kernel, stride, dilation):
        if isinstance(r, int) and isinstance(j, int):
            r, j = receptive_field_step(r, j, int(k), int(s), int(d))
        else:  # fractional jumps after an upsampling: the same recurrence, by hand
            r, j = r + (d * (k - 1)) * j, j * s
        rf2.append(r)
        jump2.append(j)
    return tuple(rf2), tuple(jump2), full


def _conv(op, state):
    weight, stride, _, dilation, transposed = (
        op.args[1],
        op.args[3],
        op.args[4],
        op.args[5],
        op.args[6],
    )
    kernel = list(weight.shape[2:])
    if not transposed:
        return _step(state, kernel, stride, dilation)
    # A transposed conv: each output sees ceil(K_eff/S) inputs, and the jump shrinks by S.
    rf, jump, full = state
    n = len(rf)
    stride, dilation = _per_dim(stride, n), _per_dim(dilation, n)
    rf2 = tuple(
        r + (math.ceil((d * (k - 1) + 1) / s) - 1) * j
        for r, j, k, s, d in zip(rf, jump, kernel, stride, dilation)
    )
    jump2 = tuple(Fraction(j, s) if j % s else j // s for j, s in zip(jump, stride))
    return rf2, jump2, full


def _max_pool(op, state):
    kernel = _arg(op, 1, "kernel_size", None)
    stride = _arg(op, 2, "stride", ()) or kernel
    dilation = _arg(op, 4, "dilation", 1)
    return _step(state, kernel, stride, dilation)


def _avg_pool(op, state):
    kernel = _arg(op, 1, "kernel_size", None)
    stride = _arg(op, 2, "stride", ()) or kernel
    return _step(state, kernel, stride, 1)


def adaptive_windows(n_in: int, n_out: int) -> list[tuple[int, int]]:
    """The (start, end) input window of each output of PyTorch's adaptive pooling."""
    return [(i * n_in // n_out, -(-(i + 1) * n_in // n_out)) for i in range(n_out)]


def _adaptive(op, state):
    x = op.args[0]
    rf, jump, full = state
    n = len(rf)
    sizes_in = list(x.shape[-n:])
    sizes_out = _per_dim(list(op.args[1]), n)
    kernel, stride = [], []
    for a, b in zip(sizes_in, sizes_out):
        b = a if b is None else b
        windows = adaptive_windows(a, b)
        kernel.append(max(e - s for s, e in windows))
        stride.append(max(1, a // b))  # exact when b divides a; the common step otherwise
    return _step(state, kernel, stride, 1)


def _global(state, dims=None):
    rf, jump, full = state
    dims = range(len(rf)) if dims is None else dims
    rf2, jump2 = list(rf), list(jump)
    for d in dims:
        rf2[d], jump2[d] = full[d], full[d]
    return tuple(rf2), tuple(jump2), full


def _reduce(op, state):
    x = op.args[0]
    dims = _arg(op, 1, "dim", None)
    n = len(state[0])
    if x.dim() < 3:
        return state
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return _global(state)
    dims = [dims] if isinstance(dims, int) else list(dims)
    first_spatial = x.dim() - n
    spatial = sorted({d % x.dim() - first_spatial for d in dims} & set(range(n)))
    return _global(state, spatial) if spatial else state


def _upsample(op, state):
    x, out = op.args[0], op.out
    rf, jump, full = state
    n = len(rf)
    taps = 2 if "linear" in op.name else (4 if "cubic" in op.name else 1)
    jump2 = []
    for a, b, j in zip(x.shape[-n:], out.shape[-n:], jump):
        f = Fraction(j) * Fraction(a, b)
        jump2.append(int(f) if f.denominator == 1 else f)
    rf2 = tuple(r + (taps - 1) * j for r, j in zip(rf, jump))
    return rf2, tuple(jump2), full


_RULES = {
    **dict.fromkeys(CONV_OPS, _conv),
    **{op: _max_pool if "max" in op else _avg_pool for op in POOL_OPS},
    **dict.fromkeys(ADAPTIVE_POOL_OPS, _adaptive),
    **dict.fromkeys(REDUCE_OPS, _reduce),
    **dict.fromkeys(MATMUL_OPS, lambda op, s: _global(s)),
    **dict.fromkeys(UPSAMPLE_OPS, _upsample),
}


def _merge(states):
    """Where branches meet: the element-wise maximum (never the sum) of their fields."""
    n = max(len(s[0]) for s in states)
    states = [s for s in states if len(s[0]) == n]
    if len(states) == 1:
        return states[0]
    return tuple(tuple(max(v) for v in zip(*(s[i] for s in states))) for i in range(3))


class Tracker:
    """Receptive-field state of every tensor seen in a trace, keyed by tensor identity."""

    def __init__(self):
        self.state: dict[int, tuple] = {}
        self._alive: list[torch.Tensor] = []  # keeps ids unique for the trace's lifetime

    def _set(self, t: torch.Tensor, state):
        rf, jump, full = state
        n = len(rf)
        if t.dim() >= n + 2 and n:  # the tensor still has its spatial dims: refresh `full`
            full = tuple(r + (size - 1) * j for r, j, size in zip(rf, jump, t.shape[-n:]))
        self.state[id(t)] = (rf, jump, full)
        self._alive.append(t)

    def start(self, x: torch.Tensor):
        n = max(x.dim() - 2, 1)
        self._set(x, ((1,) * n, (1,) * n, tuple(x.shape[-n:])))

    def get(self, t: torch.Tensor):
        s = self.state.get(id(t))
        return (s[0], s[1]) if s else (None, None)

    def on_op(self, op):
        outs = _tensors(op.out, [])
        if not outs:
            return
        ins = [self.state[id(t)] for t in _tensors(list(op.args), []) if id(t) in self.state]
        if not ins:  # ops on parameters or constants only
            return
        state = _merge(ins)
        rule = _RULES.get(op.name)
        if rule is not None:
            state = rule(op, state)
        for t in outs:
            self._set(t, state)
