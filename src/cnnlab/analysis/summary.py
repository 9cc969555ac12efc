"""``summary(model, input_size)``: the lectures' per-layer table for any PyTorch model.

One :class:`Summary` holds the rows and totals; every output (rich table, markdown, CSV,
JSON, LaTeX, HTML, pandas) is rendered from it by render.py. The model is traced once on
meta tensors (trace.py), so a ResNet-152 at 224x224 or a 4K input allocates nothing; the
counting convention can be switched afterwards without tracing again
(:meth:`Summary.with_convention`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from cnnlab._util import parse_input
from cnnlab.analysis import render
from cnnlab.analysis.conventions import get_convention
from cnnlab.analysis.ops import ADAPTIVE_POOL_OPS, CONV_OPS, MATMUL_OPS, POOL_OPS
from cnnlab.analysis.trace import MODES, Trace, TraceError, trace
from cnnlab.arithmetic import activation_bytes, dtype_bits
from cnnlab.errors import ConfigError, ShapeError, suggest


@dataclass
class LayerRow:
    """One row: a layer call (or a functional op), with the lectures' columns."""

    name: str
    type: str
    call: int
    input_shape: list | None  # without the batch dimension, e.g. [3, 227, 227]
    output_shape: list | None
    filters: int | None = None  # conv out_channels / linear out_features
    kernel: list | None = None  # per spatial dim, e.g. [11, 11]
    stride: list | None = None
    padding: list | None = None
    dilation: list | None = None
    groups: int | None = None
    weights: int = 0
    bias: int = 0
    params: int = 0
    macs: int = 0
    flops: int = 0
    activation_bytes: int = 0
    receptive_field: list | None = None
    jump: list | None = None
    not_counted: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["receptive_field"] = _plain(d["receptive_field"])
        d["jump"] = _plain(d["jump"])
        return d


def _plain(v):
    """JSON-friendly numbers: ints stay ints, fractional jumps (after upsampling) become floats."""
    if v is None:
        return None
    return [int(x) if float(x).is_integer() else float(x) for x in v]


def _ints(v, n):
    if v is None:
        return None
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    if len(v) == 0:
        return None
    return [int(x) for x in (v * n if len(v) == 1 else v)]


def _layer_geometry(row: LayerRow, call) -> None:
    """Fill filters/kernel/stride/padding from the row's main op (conv, pool or matmul)."""
    for op in call.ops:
        if op.name in CONV_OPS:
            w = op.args[1]
            n = w.dim() - 2
            out = op.out
            row.filters = int(out.shape[1])
            row.kernel = [int(k) for k in w.shape[2:]]
            row.stride, row.padding = _ints(op.args[3], n), _ints(op.args[4], n)
            dil, groups = _ints(op.args[5], n), int(op.args[8])
            row.dilation = dil if any(d != 1 for d in dil) else None
            row.groups = groups if groups != 1 else None
            return
        if op.name in POOL_OPS:
            n = (op.out[0] if isinstance(op.out, tuple) else op.out).dim() - 2
            row.kernel = _ints(op.args[1], n)
            row.stride = _ints(op.args[2] if len(op.args) > 2 else None, n) or row.kernel
            row.padding = _ints(op.args[3] if len(op.args) > 3 else 0, n)
            if "max" in op.name and len(op.args) > 4:
                dil = _ints(op.args[4], n)
                row.dilation = dil if any(d != 1 for d in dil) else None
            return
        if op.name in ADAPTIVE_POOL_OPS or (op.name == "aten.mean" and op.args[0].dim() >= 3):
            x = op.args[0]
            out = op.out[0] if isinstance(op.out, tuple) else op.out
            n = x.dim() - 2
            if out.dim() == x.dim() and all(
                a % max(b, 1) == 0 for a, b in zip(x.shape[2:], out.shape[2:])
            ):
                row.kernel = [a // b for a, b in zip(x.shape[2:], out.shape[2:])]
                row.stride = [k if b > 1 else 1 for k, b in zip(row.kernel, out.shape[2:])]
            elif op.name == "aten.mean":  # global average pooling: one window per channel
                row.kernel, row.stride = [int(a) for a in x.shape[2:]], [1] * n
            row.padding = [0] * n if row.kernel else None
            return
        if op.name in MATMUL_OPS:
            row.filters = int(op.out.shape[-1])
            return


def _materialize_lazy(model: nn.Module, dims) -> nn.Module:
    """Give lazy layers (``nn.LazyLinear`` ...) their sizes with one forward pass of one zero
    image (on the model's own device: lazy parameters cannot be moved to meta unsized)."""
    if not any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in model.modules()):
        return model
    device = next((p.device for p in model.parameters() if not p.is_meta), None) or "cpu"
    try:
        with torch.no_grad():
            model(torch.zeros(1, *dims, device=device))
    except Exception as e:
        raise ShapeError(
            f"the model's lazy layers cannot be sized from the input {'x'.join(map(str, dims))}: "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
            "check --input (C x H x W) against the model",
        ) from None
    return model


def _torch_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    name, _ = dtype_bits(dtype)
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype) or not dt.is_floating_point:
        raise ConfigError(
            f"dtype {dtype!r} is not a floating-point type a model can run in",
            "use float32, float16, bfloat16 or float64",
        )
    return dt


class Summary:
    """The per-layer table of one model at one input size, under one counting convention."""

    def __init__(
        self,
        model_name,
        input_size,
        convention,
        batch_size,
        dtype,
        rows,
        totals,
        not_counted,
        coverage,
        notes,
        source,
    ):
        self.model_name = model_name
        self.input_size = list(input_size)
        self.convention = convention
        self.batch_size = batch_size
        self.dtype = dtype
        self.layers: list[LayerRow] = rows
        self.totals: dict = totals
        self.not_counted: Counter = not_counted
        self.coverage: float = coverage
        self.notes: list[str] = notes
        self._source = source  # (trace, model, parameter sizes, trace notes): to re-count

    @property
    def mode(self) -> str:
        """``"eval"`` or ``"train"``: the mode the model was traced in."""
        return self._source[0].mode

    # -- re-counting ------------------------------------------------------------------------
    def with_convention(self, convention) -> Summary:
        """The same trace counted under another convention (no second forward pass)."""
        tr, model, params, trace_notes = self._source
        return _build(
            tr,
            model,
            params,
            self.model_name,
            self.input_size,
            convention,
            self.batch_size,
            trace_notes,
        )

    # -- data ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The JSON contract: model, input, convention, layers, totals, not_counted."""
        return {
            "model": self.model_name,
            "input": list(self.input_size),
            "batch_size": self.batch_size,
            "dtype": str(self.dtype).removeprefix("torch."),
            "convention": self.convention,
            "mode": self.mode,
            "layers": [r.to_dict() for r in self.layers],
            "totals": dict(self.totals),
            "not_counted": [{"op": k, "count": v} for k, v in self.not_counted.most_common()],
            "coverage": self.coverage,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent)

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.layers])

    def layer(self, name: str, call: int = 1) -> LayerRow:
        """The row of layer ``name`` (its ``call``-th call)."""
        for r in self.layers:
            if r.name == name and r.call == call:
                return r
        raise KeyError(name)

    # -- renderings ---------------------------------------------------------------------------
    def to_rich_table(self):
        return render.rich_table(self)

    def print(self, console=None, compact: bool | None = None) -> None:
        """The table on a terminal; ``compact=True`` (or a terminal narrower than the table)
        prints the 80-column form: layer, type, output, K/S/P, params, MACs, RF."""
        render.print_summary(self, console, compact)

    def to_markdown(self) -> str:
        return render.markdown(self)

    def to_csv(self) -> str:
        return render.csv_text(self)

    def to_latex(self) -> str:
        return render.latex(self)

    def to_html(self) -> str:
        return render.html(self)

    def to_text(self, compact: bool = False) -> str:
        """The table as plain text (what ``cnnlab summary`` prints, without colours)."""
        return render.plain_text(self, compact=compact)

    def render(self, fmt: str = "table") -> str:
        return render.render(self, fmt)

    def __repr__(self) -> str:
        t = self.totals
        return (
            f"Summary({self.model_name}, input={'x'.join(map(str, self.input_size))}, "
            f"{len(self.layers)} rows, params={t['params']:,}, macs={t['macs']:,}, "
            f"convention={self.convention!r})"
        )


def _check_mode(conv, mode: str) -> None:
    if mode == "train" and conv.eval_only:
        raise ConfigError(
            f"{conv.title} always runs the model in eval mode (it calls model.eval()), so "
            f"--mode train has no {conv.name} count",
            "drop --mode train (eval is the default), or use --convention fvcore, torchinfo, "
            "pytorch or lecture, which count a model in training mode",
        )


def _build(tr: Trace, model, model_params, model_name, input_size, convention, batch_size, notes):
    conv = get_convention(convention)
    _check_mode(conv, tr.mode)
    rows, not_counted = [], Counter()
    ops = counted = 0
    calls = tr.calls + ([tr.root] if conv.leaf_root and tr.root is not None else [])
    for call in calls:
        c = conv.count(call, batch_size)
        ops += c.ops
        counted += c.counted
        not_counted.update(c.not_counted)
        is_bias = [n.endswith("bias") or n in call.bias_params for n in call.params_used]
        weights = sum(model_params[n] for n, b in zip(call.params_used, is_bias) if not b)
        bias = sum(model_params[n] for n, b in zip(call.params_used, is_bias) if b)
        dt = call.output_dtype or tr.dtype
        row = LayerRow(
            name=call.name,
            type=call.type,
            call=call.call_index,
            input_shape=list(call.input_shape[1:]) if call.input_shape else None,
            output_shape=list(call.output_shape[1:]) if call.output_shape else None,
            weights=weights,
            bias=bias,
            params=weights + bias,
            macs=c.macs,
            flops=c.flops,
            activation_bytes=activation_bytes(call.output_numel, str(dt).removeprefix("torch.")),
            receptive_field=list(call.rf) if call.rf else None,
            jump=list(call.jump) if call.jump else None,
            not_counted=dict(c.not_counted),
        )
        _layer_geometry(row, call)
        rows.append(row)
    raw = sum(model_params.values())
    try:
        params, why = conv.count_params(model, tr)
    except ValueError as e:  # e.g. a pruning mask on the meta device: its ones are unknown
        params, why = raw, None
        not_counted[f"{conv.name} parameter count ({e})"] += 1
    totals = {
        "params": params,
        "params_raw": raw,
        "macs": sum(r.macs for r in rows),
        "flops": sum(r.flops for r in rows),
        "activation_bytes": sum(r.activation_bytes for r in rows),
    }
    trace_notes, notes = list(notes), list(notes)
    if params != raw:
        notes = notes + [
            f"params {params:,} as {conv.name} counts them ({why}); "
            f"the model holds {raw:,} parameter elements"
        ]
    if tr.mode == "train":
        notes = notes + ["traced in training mode (batch statistics, dropout)"]
    unused = raw - sum(r.params for r in rows)
    if unused:
        notes = notes + [
            f"{unused:,} parameters are not used by this forward pass "
            "(counted in the total, in no row)"
        ]
    coverage = counted / ops if ops else 1.0
    s = Summary(
        model_name,
        input_size,
        conv.name,
        batch_size,
        tr.dtype,
        rows,
        totals,
        not_counted,
        coverage,
        notes,
        (tr, model, model_params, trace_notes),
    )
    return s


def _describe(module) -> str:
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}->{module.out_features}"
    if isinstance(module, nn.modules.conv._ConvNd):
        k = "x".join(map(str, module.kernel_size))
        return f"{type(module).__name__} {module.in_channels}->{module.out_channels}, {k}"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return f"{type(module).__name__} {module.kernel_size}/{module.stride}"
    return type(module).__name__


def _fmt_shape(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def _find_fitting_input(model, dims, dtype, budget_s: float = 3.0):
    """The nearest input size (same C, square when H = W) that runs, for the error's hint."""
    if len(dims) != 3:
        return None
    c, h, w = dims
    m = max(h, w)
    start = time.perf_counter()
    for delta in range(0 if h != w else 1, 4 * m):
        for sign in (-1, 1):
            tries = [(h + sign * delta, w + sign * delta)] if delta else []
            if h != w:
                tries.append((m + sign * delta, m + sign * delta))
            for hh, ww in tries:
                if hh < 1 or ww < 1:
                    continue
                try:
                    trace(model, (1, c, hh, ww), dtype)
                    return (c, hh, ww)
                except TraceError:
                    pass
        if time.perf_counter() - start > budget_s:
            return None
    return None


def _shape_error(e: TraceError, model, dims, dtype) -> ShapeError:
    got = _fmt_shape(e.input_shapes[0][1:]) if e.input_shapes else "?"
    what = _describe(e.module)
    where = f"layer {e.module_name} ({what})" if e.module_name else f"the model ({what})"
    text = str(e.error).strip()
    reason = text.splitlines()[0] if text else type(e.error).__name__
    size = _fmt_shape(dims)
    msg = f"{where} got input {got}: {reason}"
    if isinstance(e.module, nn.Linear) and e.input_shapes:
        have, want = e.input_shapes[0][-1], e.module.in_features
        msg = (
            f"{where} got input {got}: the input {size} is too "
            f"{'large' if have > want else 'small'} for this head "
            f"({have:,} features arrive, {want:,} expected)"
        )
    if (
        isinstance(e.module, nn.modules.conv._ConvNd)
        and e.input_shapes
        and len(e.input_shapes[0]) > 1
        and e.input_shapes[0][1] != e.module.in_channels
    ):
        return ShapeError(
            f"{where} got input {got}: it expects {e.module.in_channels} input channels, "
            f"not {e.input_shapes[0][1]}",
            "the previous layer's output channels must match this layer's in_channels"
            if e.module_name
            else f"use --input {e.module.in_channels}x...",
        )
    conv_nd = {nn.Conv1d: 2, nn.Conv2d: 3, nn.Conv3d: 4}.get(type(e.module))
    if conv_nd and len(dims) != conv_nd:
        return ShapeError(
            f"{where} takes a {conv_nd}-dimensional input (C x H x W without the batch), "
            f"got {size}",
            "give C x H x W, e.g. --input 3x224x224",
        )
    fit = _find_fitting_input(model, dims, dtype)
    hint = (
        f"use --input {_fmt_shape(fit)} (input_size={tuple(fit)} in Python)"
        if fit
        else "check the model's expected input size (cnnlab models lists the defaults)"
    )
    return ShapeError(msg, hint)


def summary(
    model: nn.Module,
    input_size,
    *,
    convention: str = "lecture",
    dtype=torch.float32,
    batch_size: int = 1,
    model_name: str | None = None,
    mode: str = "eval",
    device: str = "meta",
) -> Summary:
    """Trace ``model`` on a meta input of ``input_size`` = (C, H, W) and tabulate every layer.

    ``mode`` is the mode the model runs in, ``"eval"`` (the default, as thop, ptflops and
    torchinfo run it) or ``"train"`` (batch norm on batch statistics, as fvcore and
    flop_counter count a model left in training mode). The model's own mode is kept.

    ``device`` is where the trace runs: ``"meta"`` (the default: shapes only, no memory or
    arithmetic, any size) or ``"cpu"`` (the model runs for real on a zero input). The counts
    are the same. The first meta trace in a process imports ``torch._dynamo`` (1.5-4 s on a
    2-core CPU; PyTorch's Python meta kernels are wrapped in it), so a command that traces one
    model at a picture's size is faster on ``"cpu"``.

    >>> import torchvision
    >>> s = summary(torchvision.models.alexnet(), (3, 227, 227))
    >>> s.layer("features.0").output_shape, s.layer("features.0").macs
    ([64, 56, 56], 72855552)
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"summary() needs a torch.nn.Module, got {type(model).__name__}")
    dims = parse_input(input_size, flag="input_size")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    conv = get_convention(convention)  # fail fast on a bad name
    if mode not in MODES:
        hint = suggest(str(mode), MODES) or f"use one of: {', '.join(MODES)}"
        raise ConfigError(f"unknown mode {mode!r}", hint)
    _check_mode(conv, mode)
    dt = _torch_dtype(dtype)
    model = _materialize_lazy(model, dims)
    notes = []
    if device not in ("meta", "cpu"):
        raise ConfigError(f"unknown device {device!r} for summary()", "use 'meta' or 'cpu'")
    try:
        tr = trace(model, (batch_size, *dims), dt, device=device, mode=mode)
    except TraceError as e:
        if device == "cpu" or "meta" not in str(e.error).lower():
            raise _shape_error(e, model, dims, dt) from None
        # The model does something meta tensors cannot (e.g. .item()): run it for real.
        try:
            tr = trace(model, (batch_size, *dims), dt, device="cpu", mode=mode)
        except TraceError as e2:
            raise _shape_error(e2, model, dims, dt) from None
        notes.append("traced on the CPU: this model does not run on meta tensors")
    params = {n: p.numel() for n, p in model.named_parameters()}
    return _build(
        tr, model, params, model_name or type(model).__name__, dims, conv.name, batch_size, notes
    )


__all__ = ["LayerRow", "Summary", "summary"]
