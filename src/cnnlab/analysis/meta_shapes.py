"""Output shapes of common ATen ops on meta tensors, computed here instead of by PyTorch.

PyTorch's meta kernels for many ops (``add``, ``mul``, ``cat``, ``mean``, the pools, ``relu``)
are Python decompositions wrapped in ``torch._dynamo.disable``; the first call of one in a
process imports ``torch._dynamo``, 1.5-4 s on a 2-core CPU, which was half of a
``cnnlab summary`` command. A trace needs only each output's shape and dtype, so for these
ops it builds an empty meta tensor of the right shape directly. Every function returns
``None`` when its case is not a plain one (an ``out=`` argument, an unusual layout); the trace
then runs PyTorch's own kernel, which also raises PyTorch's own error for bad shapes.
``tests/analysis/test_meta_shapes.py`` checks each against PyTorch's kernel.
"""

from __future__ import annotations

import math

import torch

aten = torch.ops.aten


def _empty(shape, dtype) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device="meta")


def _broadcast(shapes) -> list[int] | None:
    """NumPy's broadcasting rule (torch.broadcast_shapes imports torch.fx's symbolic shapes,
    0.5 s, on first use)."""
    n = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (n - len(s)) + tuple(s) for s in shapes]):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return out


def _binary(func, args, kwargs):
    """Broadcasting element-wise ops: shape from broadcasting, dtype from type promotion."""
    a, b = args[0], args[1]
    shape = _broadcast([t.shape for t in (a, b) if isinstance(t, torch.Tensor)])
    if shape is None:
        return None  # PyTorch raises its own message
    dtype = torch.result_type(a, b)
    if func is aten.div.Tensor and not (dtype.is_floating_point or dtype.is_complex):
        dtype = torch.get_default_dtype()  # div.Tensor is true division: integers give floats
    return _empty(shape, dtype)


def _unary(func, args, kwargs):
    """Element-wise ops of one tensor (activations): same shape and dtype."""
    return _empty(args[0].shape, args[0].dtype)


def _unary_inplace(func, args, kwargs):
    return args[0]


def _matmul(func, args, kwargs):
    """``mm`` [n, k] @ [k, m] and ``addmm`` bias + [n, k] @ [k, m] (a Linear layer's op)."""
    if len(args) != (3 if func is aten.addmm.default else 2):
        return None  # beta or alpha given
    a, b = args[-2:]
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        return None
    return _empty((a.shape[0], b.shape[1]), a.dtype)


def _cat(func, args, kwargs):
    tensors = [t for t in args[0] if not (t.dim() == 1 and t.shape[0] == 0)]  # legacy empties
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if not tensors or len({t.dim() for t in tensors}) != 1:
        return None
    dim = dim % tensors[0].dim()
    rest = {tuple(s for i, s in enumerate(t.shape) if i != dim) for t in tensors}
    if len(rest) != 1:
        return None
    shape = list(tensors[0].shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return _empty(shape, dtype)


def _mean_dim(func, args, kwargs):
    x = args[0]
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if kwargs.get("dtype") is not None or len(args) > 3 or not x.dtype.is_floating_point:
        return None
    dims = range(x.dim()) if dims is None or len(dims) == 0 else dims
    dims = {d % x.dim() for d in dims}
    shape = [1 if i in dims else s for i, s in enumerate(x.shape) if keepdim or i not in dims]
    return _empty(shape, x.dtype)


def _adaptive_avg_pool2d(func, args, kwargs):
    x, size = args[0], args[1]
    if x.dim() not in (3, 4) or len(size) != 2:
        return None
    return _empty((*x.shape[:-2], *size), x.dtype)


def _pool_size(size, k, s, p, ceil_mode, d=1) -> int | None:
    """PyTorch's pooling output size, with its ceil-mode rule that the last window must start
    inside the input or left padding."""
    top = size + 2 * p - d * (k - 1) - 1
    if top < 0:
        return None
    o = (math.ceil(top / s) if ceil_mode else top // s) + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1
    return o


def _pool_args(args, n: int):
    """(kernel, stride, padding, dilation) as n-lists and ceil_mode from a pooling call;
    None when malformed (PyTorch then says why)."""
    x = args[0]
    k = list(args[1])
    stride = list(args[2]) if len(args) > 2 and args[2] else k
    pad = list(args[3]) if len(args) > 3 else [0]
    k, stride, pad = (v * n if len(v) == 1 else v for v in (k, stride, pad))
    if x.dim() not in (n + 1, n + 2) or not (len(k) == len(stride) == len(pad) == n):
        return None
    return k, stride, pad


def _out_sizes(x, n, k, stride, pad, ceil_mode, dil=None):
    dil = dil or [1] * n
    out = [_pool_size(*v, ceil_mode, d) for v, d in
           zip(zip(x.shape[-n:], k, stride, pad), dil)]  # fmt: skip
    if any(o is None or o < 1 or 2 * p > kk for o, p, kk in zip(out, pad, k)):
        return None
    return out


def _avg_pool(n: int):
    def shapes(func, args, kwargs):
        parsed = _pool_args(args, n)
        ceil_mode = args[4] if len(args) > 4 else False
        out = parsed and _out_sizes(args[0], n, *parsed, ceil_mode)
        return out and _empty((*args[0].shape[:-n], *out), args[0].dtype)

    return shapes


def _max_pool2d_with_indices(func, args, kwargs):
    """``(values, int64 indices)``: the one pool whose PyTorch meta kernel imports
    ``torch.fx.experimental.symbolic_shapes`` (0.5 s) on first use."""
    parsed = _pool_args(args, 2)
    dil = list(args[4]) if len(args) > 4 else [1]
    dil = dil * 2 if len(dil) == 1 else dil
    ceil_mode = args[5] if len(args) > 5 else False
    out = parsed and len(dil) == 2 and _out_sizes(args[0], 2, *parsed, ceil_mode, dil)
    if not out:
        return None
    shape = (*args[0].shape[:-2], *out)
    return _empty(shape, args[0].dtype), _empty(shape, torch.int64)


def _constant_pad_nd(func, args, kwargs):
    x, pad = args[0], list(args[1])
    if len(pad) % 2 or len(pad) // 2 > x.dim():
        return None
    shape = list(x.shape)
    for i in range(len(pad) // 2):  # pad runs from the last dimension backwards
        shape[-1 - i] += pad[2 * i] + pad[2 * i + 1]
    if any(s < 0 for s in shape):
        return None
    return _empty(shape, x.dtype)


FAST_SHAPES = {
    **{op: _binary for op in (aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor,
                              aten.div.Tensor, aten.pow.Tensor_Scalar)},
    **{op: _unary for op in (aten.relu.default, aten.gelu.default, aten.tanh.default,
                             aten.sigmoid.default, aten.hardtanh.default, aten.silu.default,
                             aten.leaky_relu.default, aten.elu.default)},
    **{op: _unary_inplace for op in (aten.relu_.default, aten.hardtanh_.default,
                                     aten.leaky_relu_.default, aten.silu_.default)},
    aten.addmm.default: _matmul,
    aten.mm.default: _matmul,
    aten.cat.default: _cat,
    aten.mean.dim: _mean_dim,
    aten._adaptive_avg_pool2d.default: _adaptive_avg_pool2d,
    aten.avg_pool2d.default: _avg_pool(2),
    aten.avg_pool3d.default: _avg_pool(3),
    aten.max_pool2d_with_indices.default: _max_pool2d_with_indices,
    aten.constant_pad_nd.default: _constant_pad_nd,
}  # fmt: skip
