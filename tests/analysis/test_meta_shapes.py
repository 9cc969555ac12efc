"""The trace's own meta shapes equal PyTorch's kernels, and spare a summary torch._dynamo."""

from __future__ import annotations

import json

import pytest
import torch

import cnnlab
from cnnlab.analysis import trace as T
from cnnlab.analysis.meta_shapes import FAST_SHAPES
from cnnlab.analysis.resolve import build_meta
from cnnlab.models import create, get_info

aten = torch.ops.aten
f32, i64 = torch.float32, torch.int64


def _t(shape, dtype=f32):
    return torch.ones(shape, dtype=dtype)


CASES = [  # (op, args on the CPU, kwargs)
    (aten.add.Tensor, (_t((2, 3, 4, 4)), _t((1, 3, 1, 1))), {}),
    (aten.add.Tensor, (_t((3, 1)), _t((1, 5), i64)), {"alpha": 2}),
    (aten.sub.Tensor, (_t((4,), i64), _t((2, 4), i64)), {}),
    (aten.mul.Tensor, (_t((2, 8, 5, 5)), _t((2, 8, 1, 1))), {}),
    (aten.mul.Tensor, (_t((2, 3), torch.float16), _t((), f32)), {}),  # 0-dim: no promotion
    (aten.div.Tensor, (_t((2, 3), i64), _t((3,), i64)), {}),  # true division: floats
    (aten.pow.Tensor_Scalar, (_t((1, 4, 6, 6)), 0.75), {}),
    (aten.relu.default, (_t((2, 5)),), {}),
    (aten.gelu.default, (_t((2, 5)),), {"approximate": "tanh"}),
    (aten.tanh.default, (_t((3,)),), {}),
    (aten.sigmoid.default, (_t((3, 2)),), {}),
    (aten.hardtanh.default, (_t((3, 2)), 0.0, 6.0), {}),
    (aten.leaky_relu.default, (_t((3, 2)), 0.1), {}),
    (aten.addmm.default, (_t((7,)), _t((3, 5)), _t((5, 7))), {}),
    (aten.mm.default, (_t((3, 5)), _t((5, 2))), {}),
    (aten.cat.default, ([_t((1, 2, 4, 4)), _t((1, 3, 4, 4))], 1), {}),
    (aten.cat.default, ([_t((2, 3)), _t((1, 3), torch.float64)],), {}),
    (aten.mean.dim, (_t((2, 6, 5, 5)), [2, 3]), {}),
    (aten.mean.dim, (_t((2, 6, 5, 5)), [-1, -2], True), {}),
    (aten._adaptive_avg_pool2d.default, (_t((2, 6, 9, 7)), [1, 1]), {}),
    (aten._adaptive_avg_pool2d.default, (_t((6, 9, 7)), [4, 3]), {}),
    (aten.avg_pool2d.default, (_t((1, 2, 7, 7)), [2, 2], [2, 2]), {}),
    (aten.avg_pool2d.default, (_t((1, 2, 7, 7)), [3, 3], [2, 2], [1, 1], True), {}),
    (aten.avg_pool2d.default, (_t((1, 2, 6, 6)), [3, 3], [2, 2], [1, 1], True), {}),  # ceil rule
    (aten.avg_pool2d.default, (_t((1, 2, 5, 8)), [3, 3], [], [0, 0], True), {}),
    (aten.avg_pool3d.default, (_t((1, 1, 96, 55, 55)), [5, 1, 1], [1, 1, 1], [2, 0, 0]), {}),
    (aten.max_pool2d_with_indices.default, (_t((1, 64, 112, 112)), [3, 3], [2, 2], [1, 1]), {}),
    (
        aten.max_pool2d_with_indices.default,
        (_t((2, 8, 28, 28)), [3, 3], [2, 2], [0, 0], [1, 1], True),
        {},
    ),  # fmt: skip
    (aten.max_pool2d_with_indices.default, (_t((8, 13, 13)), [2], [], [0], [2]), {}),  # dilated
    (aten.constant_pad_nd.default, (_t((1, 3, 4, 5)), [1, 2, 0, 3]), {}),
    (aten.constant_pad_nd.default, (_t((1, 3, 4, 5)), [-1, 0, 2, 2, 1, 1]), {}),
]


@pytest.mark.parametrize("op,args,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_fast_shape_equals_pytorchs_kernel(op, args, kwargs):
    real = op(*args, **kwargs)

    def meta(a):
        if isinstance(a, torch.Tensor):
            return torch.empty(a.shape, dtype=a.dtype, device="meta")
        if isinstance(a, list) and a and isinstance(a[0], torch.Tensor):
            return [meta(t) for t in a]
        return a

    ours = FAST_SHAPES[op](op, tuple(meta(a) for a in args), kwargs)
    assert ours is not None
    ours, real = (ours, real) if isinstance(real, tuple) else ((ours,), (real,))
    assert len(ours) == len(real) and all(t.is_meta for t in ours)
    assert [(tuple(t.shape), t.dtype) for t in ours] == [(tuple(t.shape), t.dtype) for t in real]


def test_in_place_ops_return_their_input_and_bad_cases_defer_to_pytorch():
    x = torch.empty(2, 3, device="meta")
    assert FAST_SHAPES[aten.relu_.default](aten.relu_.default, (x,), {}) is x
    cat = FAST_SHAPES[aten.cat.default]
    bad = ([torch.empty(2, 3, device="meta"), torch.empty(2, 4, device="meta")], 0)
    assert cat(aten.cat.default, bad, {}) is None  # PyTorch raises its own message
    add = FAST_SHAPES[aten.add.Tensor]
    assert add(aten.add.Tensor, (torch.empty(2, 3, device="meta"), x.new_empty(4)), {}) is None
    pool, tiny = FAST_SHAPES[aten.avg_pool2d.default], torch.empty(1, 1, 2, 2, device="meta")
    assert pool(aten.avg_pool2d.default, (tiny, [3, 3]), {}) is None


@pytest.mark.parametrize(
    "name", ["alexnet2012", "densenet121", "googlenet", "fcn8s_small", "lenet5_1998", "nin"]
)
def test_summary_is_the_same_with_and_without_the_fast_shapes(name, monkeypatch):
    model = build_meta(lambda: create(name))
    size = get_info(name).input_size
    fast = cnnlab.summary(model, size).to_dict()
    for op in FAST_SHAPES:
        monkeypatch.delitem(T._FAST_META, op)
    slow = cnnlab.summary(model, size).to_dict()
    assert json.dumps(fast, sort_keys=True, default=str) == json.dumps(
        slow, sort_keys=True, default=str
    )


def test_a_summary_of_the_classic_nets_does_not_import_dynamo(fresh_python):
    # its import was 1.5-4 s of every `cnnlab summary` on a 2-core CPU
    code = (
        "import sys, io, contextlib; from cnnlab.cli import main\n"
        "for m in ('resnet50', 'alexnet2012', 'densenet121', 'fcn8s'):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(['summary', m, '--format', 'json']) == 0\n"
        "assert 'torch._dynamo' not in sys.modules, 'imported torch._dynamo'\n"
        "assert 'torch.fx.experimental.symbolic_shapes' not in sys.modules, 'symbolic_shapes'\n"
    )
    fresh_python(code)


@pytest.mark.parametrize(
    "cin,cout,k,stride,pad,out_pad,dil,groups",
    [(4, 6, 4, 2, 1, 0, 1, 1), (4, 6, 3, 2, 1, 1, 1, 2), (3, 3, 16, 8, 4, 0, 1, 1),
     (2, 4, 3, 1, 0, 0, 2, 1), (4, 8, 5, 3, 2, 2, 1, 4)],
)  # fmt: skip
def test_transposed_conv_shape_equals_pytorchs(cin, cout, k, stride, pad, out_pad, dil, groups):
    x = torch.ones(2, cin, 7, 9)
    w = torch.ones(cin, cout // groups, k, k)
    args = (x, w, None, [stride] * 2, [pad] * 2, [dil] * 2, True, [out_pad] * 2, groups)
    real = aten.convolution.default(*args)
    meta = tuple(a.to("meta") if isinstance(a, torch.Tensor) else a for a in args)
    ours = T._conv_shapes(aten.convolution.default, meta, {})
    assert tuple(ours.shape) == tuple(real.shape)


def test_a_real_device_trace_runs_on_fixed_or_own_values_never_uninitialised_memory():
    # a detector traced on the CPU counts its proposals from these values: the same every run
    with torch.device("meta"):
        meta_built = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    a, b = T._meta_state(meta_built, f32, "cpu"), T._meta_state(meta_built, f32, "cpu")
    assert all(torch.equal(a[k], b[k]) for k in a) and a["1.num_batches_tracked"].item() == 0
    assert float(a["0.weight"].min()) >= 0 and float(a["0.weight"].max()) < 0.01
    real = torch.nn.Conv2d(3, 4, 3)
    assert torch.equal(T._meta_state(real, f32, "cpu")["weight"], real.weight)
