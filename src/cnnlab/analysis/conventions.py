"""Counting rules: what an op costs, under the lectures' convention or another tool's.

"FLOPs" is not one number. The lectures (seed 001) count a multiply-add as one operation and
name it "flop"; torch.utils.flop_counter counts it as two; fvcore, ptflops, thop and torchinfo
each skip or add different things. Each :class:`Convention` here is a small table of rules
over one traced graph, so the same trace gives every tool's number and shows why they differ.

Every rule returns ``(macs, flops)`` for one unit of work:

- ``macs``: multiply-accumulates of convolutions and matrix products, as that convention
  counts them (``lecture``/``pytorch``/``fvcore``/``thop``: bias excluded; ``ptflops`` and
  ``torchinfo``: bias included);
- ``flops``: the convention's headline total. For ``lecture`` a multiply-add is one op and
  everything else is added by the rules listed in docs/summary.md (bias adds, batch norm,
  activations, pooling K*K per output, residual adds...); for a tool preset it is exactly the
  number that tool reports (flop_counter's FLOPs, fvcore's "flops", ptflops' "MACs", thop's
  "ops", torchinfo's "mult-adds").

An op with no rule is *not counted* and reported, never silently taken as zero. Ops that move
or reshape data without arithmetic (views, ``cat``, copies) are free under every convention.

Each convention also owns its parameter total (:meth:`Convention.count_params`): torchinfo
counts the unmasked entries of a pruned weight, ptflops only parameters with
``requires_grad``, thop only the parameters of the root's children it has a rule for and
that ran; the others count every element. The tools differ in the mode they run a model in
too: thop and ptflops always call ``model.eval()``, torchinfo uses eval unless told
``mode="train"``, fvcore and ``FlopCountAnalysis`` count whatever mode the model is in.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.analysis.ops import (  # the aten op tables, shared with summary and receptive
    ACTIVATION_OPS,
    ADAPTIVE_POOL_OPS,
    BATCH_NORM_OPS,
    BINARY_OPS,
    CONV_OPS,
    FREE_OPS,
    POOL_OPS,
)
from cnnlab.arithmetic import conv_macs, conv_transpose_macs, linear_macs, pool_flops
from cnnlab.errors import ConfigError, suggest

# Module types priced as convolutions by the module-hook presets (ptflops, thop).
_CONV_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d,
                 nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)  # fmt: skip


def _numel(t) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else 0


def _arithmetic(op) -> bool:
    """An op that computes on the model's numbers: not data movement, and not an integer
    counter (batch norm's ``num_batches_tracked += 1`` in training mode)."""
    if op.name in FREE_OPS:
        return False
    out = _out(op)
    return not (isinstance(out, torch.Tensor) and not out.is_floating_point() and out.numel() <= 1)


def _bn_training(op) -> bool:
    """Whether an ATen batch norm normalises with the batch's statistics (training mode, or
    a BatchNorm without running statistics, which PyTorch runs that way even in eval)."""
    if op.name.endswith("_no_training"):
        return False
    return next((a for a in op.args[3:] if isinstance(a, bool)), False)


def _all_params(model, trace) -> tuple[int, str | None]:
    return sum(p.numel() for p in model.parameters()), None  # tied weights once


def _out(op) -> torch.Tensor:
    return op.out[0] if isinstance(op.out, (tuple, list)) else op.out


# ----------------------------------------------------------------------------- shared formulas


def conv_op_macs(op) -> int:
    """MACs of one ``aten.convolution``, bias excluded, via cnnlab.arithmetic."""
    x, w = op.args[0], op.args[1]
    transposed, groups = bool(op.args[6]), int(op.args[8])
    out = _out(op)
    n = x.shape[0]
    if w.dim() == 4:  # the 2-D case, through the lectures' formulas
        if transposed:  # weight C_in x C_out/g x K x K; every input element meets it
            cin, cout = w.shape[0], w.shape[1] * groups
            return n * conv_transpose_macs(
                cin, cout, x.shape[2], x.shape[3], list(w.shape[2:]), groups
            )
        cout, cin = w.shape[0], w.shape[1] * groups
        return n * conv_macs(cin, cout, out.shape[2], out.shape[3], list(w.shape[2:]), groups)
    spatial = x.shape[2:] if transposed else out.shape[2:]  # 1-D and 3-D: same formula
    return n * math.prod(spatial) * math.prod(w.shape)


def matmul_op_macs(op) -> int:
    """MACs of mm / addmm / bmm / baddbmm: (M x K) @ (K x N) is M*K*N."""
    a, b = (op.args[1], op.args[2]) if op.name in ("aten.addmm", "aten.baddbmm") else op.args[:2]
    batch = a.shape[0] if a.dim() == 3 else 1
    return batch * a.shape[-2] * linear_macs(a.shape[-1], b.shape[-1])


def _pool_window_ops(op) -> int:
    """Seed 001's pooling rule: (C*H'*W') * (K*K), one op per element of each window."""
    out = _out(op)
    kernel = op.args[1]
    n = out.dim() - 2
    kernel = list(kernel) * n if len(kernel) == 1 else list(kernel)
    if n == 2:
        c = out.shape[0] * out.shape[1]
        return pool_flops(c, out.shape[2], out.shape[3], kernel)
    return out.numel() * math.prod(kernel)


def _adaptive_window_ops(op) -> int:
    """Adaptive pooling reads exactly the windows PyTorch uses; count every element read."""
    from cnnlab.analysis.receptive import adaptive_windows

    x, out = op.args[0], _out(op)
    n = out.dim() - 2
    total = out.shape[0] * out.shape[1]
    for a, b in zip(x.shape[-n:], out.shape[-n:]):
        total *= sum(e - s for s, e in adaptive_windows(a, b))
    return total


# ----------------------------------------------------------------------------- the conventions


@dataclass
class Count:
    macs: int = 0
    flops: int = 0
    ops: int = 0  # ATen ops with arithmetic seen
    counted: int = 0  # of which covered by a rule
    not_counted: Counter = field(default_factory=Counter)

    def add(self, macs, flops):
        self.macs += int(macs)
        self.flops += int(flops)


def _apply(rule, arg, c: Count, label: str):
    """``rule(arg)``; a rule that cannot price this call (a shape the tool itself would
    reject, an attribute a custom layer lacks) leaves it *not counted*, named, never a crash."""
    try:
        return rule(arg)
    except (AttributeError, TypeError, ValueError, IndexError, KeyError, AssertionError) as e:
        why = str(e) if isinstance(e, ValueError) and str(e) else type(e).__name__
        c.not_counted[f"{label} (cannot count: {why})"] += 1
        return None


@dataclass
class Convention:
    """A named set of counting rules. ``count(call)`` returns a :class:`Count` for one row."""

    name: str
    title: str
    description: str
    aten: dict = field(default_factory=dict)  # "aten.x" -> op -> (macs, flops)
    functions: dict = field(default_factory=dict)  # Python function -> group -> (macs, flops)
    modules: dict | None = None  # module type -> call -> (macs, flops); None: op-based
    module_rule: object = None  # fallback call -> (macs, flops) | None (torchinfo)
    macs_per_sample: bool = False  # ptflops divides its module counts by the batch size
    params_rule: object = _all_params  # (model, trace) -> (total, reason it differs | None)
    eval_only: bool = False  # the tool always calls model.eval() (thop, ptflops)
    leaf_root: bool = False  # a childless custom root is one layer (torchinfo)
    opaque: dict = field(default_factory=dict)  # fused call -> the op name the tool sees
    # honour a module's ``lecture_count(output_shape) -> (macs, flops)``: the connections it
    # really has where its computation is an implementation detail (a masked dense conv)
    declared: bool = False

    def count_params(self, model, trace) -> tuple[int, str | None]:
        """The tool's own parameter total and, where it is not the element count, why."""
        return self.params_rule(model, trace)

    def count(self, call, batch_size: int = 1) -> Count:
        c = Count()
        arith = [op for g in call.groups for op in g.ops if _arithmetic(op)]
        c.ops = len(arith)
        declared = getattr(call.module, "lecture_count", None) if self.declared else None
        if declared is not None and call.output_shape:
            c.add(*declared(tuple(call.output_shape)))
            c.counted = c.ops
            return c
        if self.modules is None:  # op-based: functions first (fvcore's view), then ATen ops
            fused = set()
            for g in call.groups:
                rule = self.functions.get(g.fn)
                ops = [op for op in g.ops if _arithmetic(op)]
                opaque = [op for op in ops if op.within and op.within[0] in self.opaque]
                for op in opaque:  # one op the tool cannot price, per fused call
                    if op.within not in fused:
                        fused.add(op.within)
                        c.not_counted[self.opaque[op.within[0]]] += 1
                ops = [op for op in ops if not (op.within and op.within[0] in self.opaque)]
                if rule is not None:
                    result = _apply(rule, g, c, g.fn_label or str(g.fn_name))
                    if result is not None:
                        c.add(*result)
                        c.counted += len(ops)
                    continue
                for op in ops:
                    rule = self.aten.get(op.name)
                    result = None if rule is None else _apply(rule, op, c, op.name)
                    if rule is None:
                        c.not_counted[op.name] += 1
                    elif result is not None:
                        c.add(*result)
                        c.counted += 1
            return c
        # module-based tools: a rule per layer type, plus (ptflops) patched functionals
        covered = failed = False
        label = f"{call.type} (module)" if call.module is not None else call.type
        if call.module is not None:
            rule = self.modules.get(type(call.module))
            result = _apply(rule, call, c, label) if rule is not None else None
            failed = rule is not None and result is None
            if result is None and self.module_rule is not None and not failed:
                result = _apply(self.module_rule, call, c, label)
            if result is not None:
                m, f = result
                if self.macs_per_sample:
                    m, f = m // batch_size, f // batch_size
                c.add(m, f)
                covered = True
        fn_ops = 0
        for g in call.groups:
            rule = self.functions.get(g.fn)
            result = None if rule is None else _apply(rule, g, c, g.fn_label or str(g.fn_name))
            if result is not None:
                c.add(*result)
                fn_ops += len([op for op in g.ops if _arithmetic(op)])
        if covered:
            c.counted = c.ops
        else:
            c.counted = 0 if failed else fn_ops
            if c.ops > fn_ops and not c.not_counted:
                c.not_counted[label] += 1
        return c


def _lecture() -> Convention:
    def conv(op):
        m = conv_op_macs(op)
        return m, m + (_numel(_out(op)) if op.args[2] is not None else 0)

    def addmm(op):
        m = matmul_op_macs(op)
        beta = op.kwargs.get("beta", 1)
        return m, m + (_numel(_out(op)) if beta != 0 else 0)

    def mm(op):
        m = matmul_op_macs(op)
        return m, m

    def per_out(k):
        return lambda op: (0, k * _numel(_out(op)))

    def per_in(k):
        return lambda op: (0, k * _numel(op.args[0]))

    def norm(op):  # layer/group norm: statistics (4/elem) + affine multiply-add (2/elem)
        weight = op.args[2] if op.name == "aten.native_layer_norm" else op.args[1]
        return 0, _numel(op.args[0]) * (6 if weight is not None else 4)

    rules = {
        **dict.fromkeys(CONV_OPS, conv),
        "aten.addmm": addmm,
        "aten.mm": mm,
        "aten.bmm": mm,
        "aten.baddbmm": addmm,
        "aten.native_layer_norm": norm,
        "aten.native_group_norm": norm,
        "aten.mean": per_in(1),
        "aten.sum": per_in(1),
        "aten.amax": per_in(1),
        "aten.max": per_in(1),
        "aten.min": per_in(1),
        "aten.amin": per_in(1),
        "aten.var": per_in(3),
        "aten.std": per_in(3),
        "aten._softmax": per_out(3),
        "aten._safe_softmax": per_out(3),
        "aten._log_softmax": per_out(3),
        "aten.upsample_nearest2d": per_out(0),
        "aten._upsample_nearest_exact2d": per_out(0),
        "aten.upsample_bilinear2d": per_out(4),
        "aten.upsample_bicubic2d": per_out(16),
    }
    rules.update(dict.fromkeys(ACTIVATION_OPS + BINARY_OPS, per_out(1)))

    def batch_norm(op):  # inference: folded to x*a + b; training: statistics as layer norm
        if _bn_training(op):
            return 0, _numel(op.args[0]) * (6 if op.args[1] is not None else 4)
        return 0, 2 * _numel(op.args[0])

    rules.update(dict.fromkeys(BATCH_NORM_OPS, batch_norm))
    rules.update(dict.fromkeys(POOL_OPS, lambda op: (0, _pool_window_ops(op))))
    rules.update(dict.fromkeys(ADAPTIVE_POOL_OPS, lambda op: (0, _adaptive_window_ops(op))))
    return Convention(
        "lecture",
        "cnnlab / the lectures",
        "MACs: conv and linear multiply-accumulates without bias (seed 001's 'flop', "
        "torch.utils.flop_counter's FLOPs / 2). FLOPs: a multiply-add is one op; plus one op "
        "per bias add, 2 per element for batch norm (training: 4, + 2 with affine), 1 per "
        "element for activations and element-wise ops (residual adds), K*K per output for "
        "pooling, 0 for concatenation. A layer that declares its connections (LeNet-5's C3 "
        "table) is counted by them.",
        aten=rules,
        declared=True,
    )


def _pytorch() -> Convention:
    def two(op):
        m = conv_op_macs(op) if "conv" in op.name else matmul_op_macs(op)
        return m, 2 * m

    names = ["convolution", "_convolution", "mm", "addmm", "bmm", "baddbmm"]
    return Convention(
        "pytorch",
        "torch.utils.flop_counter",
        "FlopCounterMode: 2 FLOPs per multiply-add of conv and matrix products (bias "
        "excluded); everything else is zero.",
        aten={f"aten.{n}": two for n in names},
    )


def _fvcore() -> Convention:
    def macs(op):
        m = conv_op_macs(op) if "conv" in op.name else matmul_op_macs(op)
        return m, m

    def batch_norm(op):
        affine = op.args[1] is not None
        if _bn_training(op):  # batch statistics: fvcore prices it as a layer norm
            return 0, _numel(op.args[0]) * (5 if affine else 4)
        return 0, _numel(op.args[0]) * (2 if affine else 1)  # (x - mean)/std * w + b

    def layer_norm(op):
        weight = op.args[2] if op.name == "aten.native_layer_norm" else op.args[1]
        return 0, _numel(op.args[0]) * (5 if weight is not None else 4)

    def adaptive_avg(g):  # fvcore: one flop per input element, whatever the output size
        return 0, _numel(g.args[0])

    def instance_norm(g):
        weight = g.kwargs.get("weight", g.args[3] if len(g.args) > 3 else None)
        return 0, _numel(g.args[0]) * (5 if weight is not None else 4)

    def per_out(k):
        return lambda op: (0, k * _numel(_out(op)))

    rules = {f"aten.{n}": macs for n in ["convolution", "_convolution", "mm", "addmm", "bmm"]}
    rules.update(dict.fromkeys(BATCH_NORM_OPS, batch_norm))
    rules.update(
        {
            "aten.native_layer_norm": layer_norm,
            "aten.native_group_norm": layer_norm,
            "aten.upsample_nearest2d": per_out(1),
            "aten.upsample_bilinear2d": per_out(4),
            "aten._adaptive_avg_pool2d": lambda op: (0, _numel(op.args[0])),
        }
    )
    return Convention(
        "fvcore",
        "fvcore FlopCountAnalysis",
        "One 'flop' per multiply-add of conv/linear/matmul (bias excluded); batch norm 2 per "
        "element (eval, affine; 1 without), in training mode 5 (4 without affine), as is a "
        "BatchNorm without running statistics even in eval; layer/group norm 5, adaptive "
        "average pooling 1 per input element, upsampling 1 (nearest) or 4 (bilinear) per "
        "output. Skips activations, max pooling, element-wise adds (residuals), "
        "scaled_dot_product_attention (one op to its tracer) and everything else.",
        aten=rules,
        functions={F.adaptive_avg_pool2d: adaptive_avg, F.instance_norm: instance_norm},
        # its TorchScript trace keeps attention as one aten::scaled_dot_product_attention
        opaque={"scaled_dot_product_attention": "aten.scaled_dot_product_attention"},
    )


def _in(call):
    return call.input_numel


def _out_numel(call):
    return call.output_numel


def _ptflops() -> Convention:
    def conv(call):
        m = call.module
        n = call.input_shape[0]
        spatial = (
            call.input_shape[2:]
            if isinstance(m, nn.modules.conv._ConvTransposeNd)
            else (call.output_shape[2:])
        )
        per_pos = math.prod(m.kernel_size) * m.in_channels * (m.out_channels // m.groups)
        macs = per_pos * n * math.prod(spatial)
        bias = n * math.prod(call.output_shape[1:]) if m.bias is not None else 0
        return macs + bias, macs + bias

    def linear(call):
        m = call.module
        rows = math.prod(call.input_shape[:-1])
        v = (m.in_features * m.out_features + (m.out_features if m.bias is not None else 0)) * rows
        return v, v

    def numel_out(call):
        return 0, _out_numel(call)

    def numel_in(call):
        return 0, _in(call)

    def bn(call):
        return 0, _in(call) * (2 if getattr(call.module, "affine", False) else 1)

    def fn_numel(g):
        return 0, _numel(g.args[0] if g.args else next(iter(g.kwargs.values())))

    def attention(call):
        """ptflops' nn.MultiheadAttention hook: Q scaling, Q/K/V projections and their
        biases, Q K^T, softmax and A V per head, output projection (bias always counted)."""
        m = call.module
        q, k, v = call.input_shapes[:3]
        if len(q) != 3:  # ptflops' hook itself fails on unbatched (L, E) inputs
            raise ValueError("ptflops prices attention on batched 3-D inputs only")
        batch, seq = (0, 1) if m.batch_first else (1, 0)
        (qlen, qdim), (klen, kdim), (vlen, vdim) = ((t[seq], t[2]) for t in (q, k, v))
        assert qdim == m.embed_dim
        flops = qlen * qdim + qlen * qdim * qdim + klen * kdim * kdim + vlen * vdim * vdim
        if m.in_proj_bias is not None:
            flops += (qlen + klen + vlen) * qdim
        heads = m.num_heads
        flops += heads * (
            qlen * klen * (qdim // heads) + qlen * klen + qlen * klen * (vdim // heads)
        )
        flops += qlen * vdim * (vdim + 1)
        flops *= q[batch]
        return flops, flops

    def attention_weights(g):
        """Inside the attention call, with need_weights (the default), PyTorch calls
        torch.bmm / torch.baddbmm and F.softmax, which ptflops has patched: counted again."""
        if not g.kwargs.get("need_weights", True):
            return 0, 0
        total = 0
        for op in g.ops:
            if op.name == "aten.bmm":
                total += _numel(op.args[0]) * op.args[1].shape[-1]
            elif op.name == "aten.baddbmm":
                total += _numel(op.args[1]) * op.args[2].shape[-1] + _numel(op.args[0])
            elif op.name in ("aten._softmax", "aten._safe_softmax"):
                total += _numel(op.args[0])
        return 0, total

    def fn_matmul(g):
        a, b = g.args[0], g.args[1]
        v = _numel(a) * b.shape[-1]
        return v, v

    def fn_addmm(g):
        inp, a, b = g.args[:3]
        v = _numel(a) * b.shape[-1]
        return v, v + (_numel(inp) if g.kwargs.get("beta", 1) != 0 else 0)

    def fn_elementwise(g):
        a, b = (list(g.args) + [None, None])[:2]
        if not isinstance(a, torch.Tensor):
            return 0, _numel(b) if isinstance(b, torch.Tensor) else 1
        if not isinstance(b, torch.Tensor):
            return 0, _numel(a)
        return 0, math.prod(torch.broadcast_shapes(a.shape, b.shape))

    def fn_interpolate(g):
        x = g.args[0] if g.args else g.kwargs["input"]
        size = g.kwargs.get("size", g.args[1] if len(g.args) > 1 else None)
        lead = x.shape[0] * x.shape[1]
        if size is not None:
            size = list(size) if isinstance(size, (list, tuple)) else [size] * (x.dim() - 2)
            return 0, math.prod(size) * lead
        scale = g.kwargs.get("scale_factor", g.args[2] if len(g.args) > 2 else None)
        if isinstance(scale, (list, tuple)):
            return 0, int(_numel(x) * math.prod(scale))
        return 0, int(_numel(x) * scale ** (x.dim() - 2))

    modules = dict.fromkeys(_CONV_MODULES, conv)
    modules.update(
        {
            t: numel_out
            for t in (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6, nn.GELU, nn.Upsample)
        }
    )
    modules.update(
        {
            t: numel_in
            for t in (
                nn.MaxPool1d,
                nn.MaxPool2d,
                nn.MaxPool3d,
                nn.AvgPool1d,
                nn.AvgPool2d,
                nn.AvgPool3d,
                nn.AdaptiveMaxPool1d,
                nn.AdaptiveMaxPool2d,
                nn.AdaptiveMaxPool3d,
                nn.AdaptiveAvgPool1d,
                nn.AdaptiveAvgPool2d,
                nn.AdaptiveAvgPool3d,
            )
        }
    )
    modules.update(
        {
            t: bn
            for t in (
                nn.BatchNorm1d,
                nn.BatchNorm2d,
                nn.BatchNorm3d,
                nn.InstanceNorm1d,
                nn.InstanceNorm2d,
                nn.InstanceNorm3d,
                nn.GroupNorm,
                nn.LayerNorm,
            )
        }
    )
    modules[nn.Linear] = linear
    modules[nn.MultiheadAttention] = attention
    functions = {
        f: fn_numel
        for f in (
            F.relu,
            F.prelu,
            F.elu,
            F.relu6,
            F.gelu,
            F.silu,
            F.avg_pool1d,
            F.avg_pool2d,
            F.avg_pool3d,
            F.max_pool1d,
            F.max_pool2d,
            F.max_pool3d,
            F.adaptive_avg_pool1d,
            F.adaptive_avg_pool2d,
            F.adaptive_avg_pool3d,
            F.adaptive_max_pool1d,
            F.adaptive_max_pool2d,
            F.adaptive_max_pool3d,
            F.softmax,
        )
    }
    functions.update({F.interpolate: fn_interpolate, F.upsample: fn_interpolate})
    functions[F.multi_head_attention_forward] = attention_weights
    functions.update(
        {
            f: fn_matmul
            for f in (
                torch.matmul,
                torch.Tensor.matmul,
                torch.mm,
                torch.Tensor.mm,
                torch.bmm,
                torch.Tensor.bmm,
            )
        }
    )
    functions.update({torch.addmm: fn_addmm, torch.Tensor.addmm: fn_addmm, torch.baddbmm: fn_addmm})
    # torch.add/torch.mul are patched; `x + y` (reported as Tensor.add) never is.
    functions.update({torch.add: fn_elementwise, torch.mul: fn_elementwise})
    return Convention(
        "ptflops",
        "ptflops (pytorch backend)",
        "Per-layer hooks: conv and linear MACs including bias, 1 per output element for "
        "activations, 1 per input element for pooling, 2 per element for batch norm; plus "
        "patched functionals (F.relu, F.max_pool2d, ...) counted again when a layer calls "
        "them, so ReLU and pooling count twice. Residual `+` is not counted. "
        "nn.MultiheadAttention: projections, Q scaling, QK^T, softmax, AV per head. Params: "
        "only those with requires_grad.",
        modules=modules,
        functions=functions,
        macs_per_sample=True,
        params_rule=_ptflops_params,
        eval_only=True,
    )


def _thop() -> Convention:
    def conv(call):
        m = call.module
        v = call.output_numel * (call.input_shape[1] // m.groups) * math.prod(m.kernel_size)
        return v, v

    def norm(call):
        affine = getattr(call.module, "affine", False) or getattr(
            call.module, "elementwise_affine", False
        )
        return 0, 2 * _in(call) * (2 if affine else 1)

    def zero(call):
        return 0, 0

    def linear(call):
        v = call.module.in_features * call.output_numel
        return v, v

    def avgpool(call):
        return 0, call.output_numel

    def adaptive_avg(call):
        k = math.prod(a / b for a, b in zip(call.input_shape[2:], call.output_shape[2:]))
        return 0, int((k + 1) * call.output_numel)

    def prelu(call):
        return 0, _in(call)

    def softmax(call):
        n = call.input_shape[call.module.dim]
        return 0, (_in(call) // n) * (3 * n - 1)

    def upsample(call):
        factor = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 259}.get(
            call.module.mode, 0
        )
        return 0, factor * call.output_numel

    modules = dict.fromkeys(_CONV_MODULES, conv)
    modules.update(
        {
            t: norm
            for t in (
                nn.BatchNorm1d,
                nn.BatchNorm2d,
                nn.BatchNorm3d,
                nn.LayerNorm,
                nn.InstanceNorm1d,
                nn.InstanceNorm2d,
                nn.InstanceNorm3d,
                nn.SyncBatchNorm,
            )
        }
    )
    modules.update(
        {
            t: zero
            for t in (
                nn.ZeroPad2d,
                nn.ReLU,
                nn.ReLU6,
                nn.LeakyReLU,
                nn.MaxPool1d,
                nn.MaxPool2d,
                nn.MaxPool3d,
                nn.AdaptiveMaxPool1d,
                nn.AdaptiveMaxPool2d,
                nn.AdaptiveMaxPool3d,
                nn.Dropout,
                nn.Sequential,
                nn.PixelShuffle,
            )
        }
    )
    modules.update({t: avgpool for t in (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)})
    modules.update(
        {
            t: adaptive_avg
            for t in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
        }
    )
    modules.update(
        {
            nn.Linear: linear,
            nn.PReLU: prelu,
            nn.Softmax: softmax,
            nn.Upsample: upsample,
            nn.UpsamplingBilinear2d: upsample,
            nn.UpsamplingNearest2d: upsample,
        }
    )
    return Convention(
        "thop",
        "thop profile",
        "Per-layer hooks on exact layer types: conv and linear MACs without bias, 4 per "
        "element for affine batch norm, output size for average pooling, 0 for ReLU and max "
        "pooling. Layers of other types (Sigmoid, GELU, Flatten...) and every functional op "
        "(residual `+`, torch.cat, F.relu) count nothing. Params: only those of layers with "
        "a rule that ran (a bare layer: 0).",
        modules=modules,
        params_rule=_thop_params,
        eval_only=True,
    )


def _torchinfo_param_count(module, name, p) -> tuple[int, str]:
    """torchinfo's count of one parameter: a weight pruned by torch.nn.utils.prune lives as
    ``weight_orig`` beside a ``weight_mask`` buffer; it counts the mask's ones, as ``weight``."""
    if name.endswith("_orig"):
        owner, _, attr = name[:-5].rpartition(".")
        mask = getattr(module.get_submodule(owner) if owner else module, f"{attr}_mask", None)
        if isinstance(mask, torch.Tensor):
            if mask.is_meta:
                raise ValueError(f"the pruning mask of {name[:-5]} is on the meta device")
            return int(mask.sum()), name[:-5]
    return p.numel(), name


def _torchinfo_params(model, trace) -> tuple[int, str | None]:
    total = pruned = 0
    for name, p in model.named_parameters():
        n, _ = _torchinfo_param_count(model, name, p)
        total += n
        pruned += name.endswith("_orig")
    return total, "pruned weights count their unmasked entries" if pruned else None


def _ptflops_params(model, trace) -> tuple[int, str | None]:
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, f"ptflops leaves out {frozen:,} without requires_grad" if frozen else None


# thop's hook table also has the recurrent layers (it prices them; cnnlab does not).
_THOP_RNN = (nn.RNNCell, nn.GRUCell, nn.LSTMCell, nn.RNN, nn.GRU, nn.LSTM)


def _thop_params(model, trace) -> tuple[int, str | None]:
    """thop's total walks the root's children: a child whose exact type has a rule gives the
    parameters it holds if it ran (0 if not); any other child is walked into. Parameters
    owned directly by a module (the root included) are never counted."""
    known = set(CONVENTIONS["thop"].modules) | set(_THOP_RNN)

    def walk(module) -> int:
        total = 0
        for child in module.children():
            if type(child) in known and not isinstance(child, (nn.Sequential, nn.ModuleList)):
                total += sum(p.numel() for p in child.parameters()) if id(child) in trace.ran else 0
            else:
                total += walk(child)
        return total

    total = walk(model)
    return total, (
        None
        if total == sum(p.numel() for p in model.parameters())
        else "thop sums only the layers it has a rule for that ran, not the root's own"
    )


def _torchinfo() -> Convention:
    def params_rule(call):
        """torchinfo: each weight/bias element once per output position (conv) or sample."""
        m = call.module
        out = call.output_shape
        total = 0
        for name, p in m.named_parameters():
            n, name = _torchinfo_param_count(m, name, p)
            if name in ("weight", "bias"):
                if "Conv" in type(m).__name__:
                    total += n * math.prod((out[0], *out[2:]))
                else:
                    total += out[0] * n
            elif "weight" in name or "bias" in name:  # recurrent layers: weight_ih_l0...
                total += math.prod(out[:2]) * n
        return total, total

    def rule(call):
        if call.output_shape is None or next(call.module.parameters(), None) is None:
            return None  # torchinfo gives layers without parameters no mult-adds at all
        if call.module._modules:  # only layers without children add to torchinfo's total
            return None
        return params_rule(call)

    return Convention(
        "torchinfo",
        "torchinfo summary",
        "'Mult-adds' from parameters: every weight and bias element once per output "
        "position (conv) or per sample (linear, batch norm). Layers without parameters and "
        "functional ops count nothing. A pruned weight counts its unmasked entries; a model "
        "without children that owns parameters is one layer.",
        modules={},
        module_rule=rule,
        params_rule=_torchinfo_params,
        leaf_root=True,
    )


CONVENTIONS: dict[str, Convention] = {
    c.name: c for c in (_lecture(), _pytorch(), _fvcore(), _ptflops(), _thop(), _torchinfo())
}


def get_convention(name) -> Convention:
    if isinstance(name, Convention):
        return name
    try:
        return CONVENTIONS[name]
    except KeyError:
        hint = suggest(str(name), CONVENTIONS) or f"use one of: {', '.join(CONVENTIONS)}"
        raise ConfigError(f"unknown convention {name!r}", hint) from None
