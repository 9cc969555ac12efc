"""One row of the lectures' layer table, with the working shown the way seed 001 shows it.

``LayerSpec`` describes a layer (conv, max/avg pool, fc, transposed conv) and its input;
``compute_layer(spec)`` returns a ``LayerRow``: output shape, activation memory, weights, bias,
MACs, the lecture's "flop" column, receptive field, and the lines of working, e.g.::

    output H = (227 - 11 + 2*2)/4 + 1 = 56
    memory: 64 * 56 * 56 = 200,704 elements * 4 B / 1024 = 784 KB
    params: 64*3*11*11 + 64 = 23,296
    MACs: (64*56*56) * (3*11*11) = 200,704 * 363 = 72,855,552

This is what ``cnnlab shape`` prints. Pure Python, no torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction

from cnnlab.arithmetic import core
from cnnlab.errors import ConfigError, suggest

LAYER_TYPES = ("conv", "maxpool", "avgpool", "fc", "convtranspose")
_TYPE_ALIASES = {
    "conv2d": "conv",
    "convolution": "conv",
    "pool": "maxpool",
    "max-pool": "maxpool",
    "max_pool": "maxpool",
    "maxpool2d": "maxpool",
    "avg-pool": "avgpool",
    "avg_pool": "avgpool",
    "avgpool2d": "avgpool",
    "linear": "fc",
    "dense": "fc",
    "deconv": "convtranspose",
    "conv-transpose": "convtranspose",
    "conv_transpose": "convtranspose",
    "convtranspose2d": "convtranspose",
    "transposed": "convtranspose",
}


def layer_type(name: str) -> str:
    """Canonical layer type of a user-given name (``linear`` -> ``fc``, ``pool`` -> ``maxpool``)."""
    key = name.strip().lower()
    key = _TYPE_ALIASES.get(key, key)
    if key not in LAYER_TYPES:
        raise ConfigError(
            f"unknown layer type {name!r}",
            suggest(key, list(LAYER_TYPES) + list(_TYPE_ALIASES))
            or f"use one of: {', '.join(LAYER_TYPES)}",
        )
    return key


@dataclass(frozen=True)
class LayerSpec:
    """A layer and its input. ``input_shape`` is (C, H, W), or (F,) / (C, H, W) for fc.

    ``filters`` is the number of output channels (conv, convtranspose) or output features (fc).
    ``stride=None`` means 1 for convolutions and the kernel size for pooling (PyTorch's default).
    Kernel, stride, padding, dilation and output_padding take an int or an (h, w) pair.
    """

    type: str
    input_shape: tuple[int, ...]
    filters: int | None = None
    kernel: int | tuple[int, int] | None = None
    stride: int | tuple[int, int] | None = None
    padding: int | str | tuple = 0
    dilation: int | tuple[int, int] = 1
    groups: int = 1
    output_padding: int | tuple[int, int] = 0
    bias: bool = True
    ceil_mode: bool = False
    dtype: str = "float32"
    name: str = ""


@dataclass
class LayerRow:
    """The computed row. Field names match the summary JSON's layer records."""

    name: str
    type: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    filters: int | None
    kernel: tuple[int, int] | None
    stride: tuple[int, int] | None
    padding: tuple | None
    dilation: tuple[int, int] | None
    groups: int
    weights: int
    bias: int
    params: int
    macs: int  # multiply-accumulates of conv/fc, bias excluded (multiply+add = 1)
    flops: int  # the lecture's "flop" column: MACs for conv/fc, out elements * K*K for pooling
    activation_elements: int
    activation_bytes: int
    dtype: str
    receptive_field: tuple[int, int] | None
    jump: tuple[int, int] | None
    working: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def activation_kib(self) -> float:
        return self.activation_bytes / 1024

    def to_dict(self) -> dict:
        d = asdict(self)
        d["activation_kib"] = self.activation_kib
        for key, value in d.items():
            if isinstance(value, tuple):
                d[key] = list(value)
        return d


# ----------------------------------------------------------------------------- formatting


def n(x: int) -> str:
    """An integer with thousands separators, as the seeds print them."""
    return f"{x:,}"


def kb(num_bytes: int) -> str:
    """Bytes as the lectures' KB (= 1024 bytes): exact up to 4 decimals, else ~ 2 decimals."""
    value = Fraction(num_bytes, 1024)
    if (value * 10_000).denominator == 1:
        return f"{float(value):,.4f}".rstrip("0").rstrip(".")
    return f"~{float(value):,.2f}"


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ConfigError(f"{name} must be one number or an (h, w) pair, got {value!r}")
        return tuple(value)
    return (value, value)


def _dims(values: tuple) -> str:
    """(3, 3) -> '3', (3, 5) -> '3x5'."""
    return str(values[0]) if values[0] == values[1] else f"{values[0]}x{values[1]}"


def _size_line(axis, n_in, k, s, p, d, size, *, ceil_mode) -> str:
    """``output H = (227 - 11 + 2*2)/4 + 1 = 56``, with the rounding said out loud."""
    before, after = p if isinstance(p, tuple) else (p, p)
    k_eff = d * (k - 1) + 1
    expr = core.size_expression(n_in, k_eff, s, before, after)
    exact = Fraction(n_in + before + after - k_eff, s) + 1
    if exact.denominator == 1:
        return f"output {axis} = {expr} = {size}"
    shown = f"{float(exact):g}"
    if not ceil_mode:
        return f"output {axis} = {expr} = {shown} -> floor {size} (as PyTorch)"
    up = math.ceil(exact)
    if up == size:
        return f"output {axis} = {expr} = {shown} -> ceil {size} (ceil_mode)"
    return (
        f"output {axis} = {expr} = {shown} -> ceil {up}, but that last window would start in "
        f"the right padding, so {size} (PyTorch's ceil_mode rule)"
    )


def _effective_kernel_line(k, d) -> str:
    parts = [f"{d_}*({k_} - 1) + 1 = {d_ * (k_ - 1) + 1}" for k_, d_ in zip(k, d)]
    if parts[0] == parts[1]:
        return f"effective kernel = D*(K - 1) + 1 = {parts[0]}"
    return f"effective kernel = D*(K - 1) + 1: H {parts[0]}, W {parts[1]}"


def _same_line(resolved, k, d) -> str:
    parts = []
    for p, k_, d_ in zip(resolved, k, d):
        k_eff = d_ * (k_ - 1) + 1
        if isinstance(p, tuple):
            parts.append(f"({k_eff} - 1) = {k_eff - 1} split {p[0]} before + {p[1]} after")
        else:
            parts.append(f"({k_eff} - 1)/2 = {p} per side")
    text = parts[0] if parts[0] == parts[1] else f"H {parts[0]}, W {parts[1]}"
    return f"padding 'same' (output size = input size at stride 1): {text}"


def _rf_lines(rf_in, jump_in, k, s, d) -> tuple[tuple, tuple, list[str]]:
    rf, jump = core.receptive_field_step(rf_in, jump_in, k, s, d)
    lines = []
    for axis, r0, j0, k_, s_, d_, r1, j1 in zip("HW", rf_in, jump_in, k, s, d, rf, jump):
        k_eff = d_ * (k_ - 1) + 1
        lines.append(
            f"receptive field {axis} = r_in + (K_eff - 1)*jump_in = {r0} + ({k_eff} - 1)*{j0}"
            f" = {r1}; jump = {j0}*{s_} = {j1}"
        )
    if lines[0].split("=", 1)[1] == lines[1].split("=", 1)[1]:
        lines = [lines[0].replace("receptive field H", "receptive field")]
    return rf, jump, lines


# ----------------------------------------------------------------------------- the row


def compute_layer(spec: LayerSpec, *, strict: bool = True, rf=1, jump=1) -> LayerRow:
    """Every column of the layer table for ``spec``, plus the working.

    ``strict=False`` floors a non-integer output size like PyTorch (with a
    ``FlooredSizeWarning``); ``rf``/``jump`` are the receptive field and jump of the input
    (1, 1 for the image), so rows can be chained.
    """
    kind = layer_type(spec.type)
    shape = tuple(spec.input_shape)
    if not shape or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape):
        raise ConfigError(
            f"input shape must be positive whole numbers, got {shape}",
            "expected CxHxW like 3x227x227, or a single number for fc",
        )
    if kind == "fc":
        return _fc(spec, shape)
    if len(shape) != 3:
        raise ConfigError(
            f"a {kind} layer needs a C x H x W input, got {'x'.join(map(str, shape))}",
            "expected CxHxW like 3x227x227 (a single number is for --type fc)",
        )
    if spec.kernel is None:
        raise ConfigError(f"a {kind} layer needs a kernel size", "pass --kernel K, e.g. --kernel 3")
    k = _pair(spec.kernel, "kernel")
    default_stride = k if kind in ("maxpool", "avgpool") else 1
    s = _pair(spec.stride if spec.stride is not None else default_stride, "stride")
    d = _pair(spec.dilation, "dilation")
    rf_in, jump_in = _pair(rf, "rf"), _pair(jump, "jump")
    if kind == "convtranspose":
        return _conv_transpose(spec, shape, k, s, d)
    if kind == "conv":
        return _conv(spec, shape, k, s, d, strict, rf_in, jump_in)
    return _pool(spec, kind, shape, k, s, d, strict, rf_in, jump_in)


def _output_hw(spec, shape, k, s, pad, d, strict, *, pooling) -> tuple[int, int]:
    fn = core.pool_output_size if pooling else core.conv_output_size
    return fn(shape[1:], k, s, pad, d, ceil_mode=spec.ceil_mode, strict=strict)


def _memory_line(out_shape, dtype) -> tuple[int, int, str]:
    numel = math.prod(out_shape)
    name, bits = core.dtype_bits(dtype)
    nbytes = core.activation_bytes(numel, dtype)
    per = f"{bits // 8} B" if bits % 8 == 0 else f"{bits}/8 B"
    dims = " * ".join(map(str, out_shape))
    elems = f"{dims} = {n(numel)} elements" if len(out_shape) > 1 else f"{n(numel)} elements"
    return numel, nbytes, f"memory: {elems} * {per} ({name}) / 1024 = {kb(nbytes)} KB"


def _conv(spec, shape, k, s, d, strict, rf_in, jump_in) -> LayerRow:
    c_in, h, w = shape
    if spec.filters is None:
        raise ConfigError("a conv layer needs a number of filters", "pass --filters N")
    if spec.ceil_mode:
        raise ConfigError("ceil_mode is for pooling; PyTorch convolutions always floor", "drop it")
    c_out, g = spec.filters, spec.groups
    working = []
    if d != (1, 1):
        working.append(_effective_kernel_line(k, d))
    pad = spec.padding
    if isinstance(pad, str):
        resolved = core.resolve_padding(pad, k, d)
        working.append(
            _same_line(resolved, k, d) if pad.lower() == "same" else "padding 'valid' = 0"
        )
        if pad.lower() == "same" and s != (1, 1):
            core.conv_output_size(h, k, s, pad, d)  # raises the 'same needs stride 1' error
        pad = resolved
    p = _pair(pad, "padding")
    weights, bias = core.conv_params(c_in, c_out, k, g, spec.bias)
    oh, ow = _output_hw(spec, shape, k, s, p, d, strict, pooling=False)
    working.insert(0, f"output C = filters = {c_out}")
    working.append(_size_line("H", h, k[0], s[0], p[0], d[0], oh, ceil_mode=spec.ceil_mode))
    working.append(_size_line("W", w, k[1], s[1], p[1], d[1], ow, ceil_mode=spec.ceil_mode))
    out_shape = (c_out, oh, ow)
    numel, nbytes, mem = _memory_line(out_shape, spec.dtype)
    working.append(mem)
    per_out = (c_in // g) * k[0] * k[1]
    cin_g = str(c_in) if g == 1 else f"({c_in}/{g})"
    wexpr = f"{c_out}*{cin_g}*{k[0]}*{k[1]}"
    working.append(f"weights: C_out x C_in/groups x K x K = {wexpr} = {n(weights)}")
    working.append(f"bias: {n(bias)}" + ("" if spec.bias else " (--no-bias)"))
    working.append(
        f"params: {wexpr} + {bias} = {n(weights + bias)}" if bias else f"params: {n(weights)}"
    )
    macs = core.conv_macs(c_in, c_out, oh, ow, k, g)
    working.append(
        f"MACs: (C_out*H'*W') * (C_in/groups*K*K) = ({c_out}*{oh}*{ow}) * ({cin_g}*{k[0]}*{k[1]})"
        f" = {n(numel)} * {n(per_out)} = {n(macs)}"
    )
    rf, jump, rf_lines = _rf_lines(rf_in, jump_in, k, s, d)
    working += rf_lines
    return LayerRow(
        name=spec.name or "conv",
        type="conv",
        input_shape=shape,
        output_shape=out_shape,
        filters=c_out,
        kernel=k,
        stride=s,
        padding=p,
        dilation=d,
        groups=g,
        weights=weights,
        bias=bias,
        params=weights + bias,
        macs=macs,
        flops=macs,
        activation_elements=numel,
        activation_bytes=nbytes,
        dtype=core.dtype_bits(spec.dtype)[0],
        receptive_field=rf,
        jump=jump,
        working=working,
        notes=["MACs count one multiply+add as 1 (the lectures' 'flop'); bias adds not counted"],
    )


def _pool(spec, kind, shape, k, s, d, strict, rf_in, jump_in) -> LayerRow:
    c, h, w = shape
    if spec.filters is not None and spec.filters != c:
        raise ConfigError(
            f"pooling keeps the {c} input channels; --filters {spec.filters} does not apply",
            "drop --filters for a pooling layer",
        )
    if isinstance(spec.padding, str):
        core.pool_output_size(h, k, s, spec.padding)  # raises the 'no same/valid' error
    if kind == "avgpool" and d != (1, 1):
        raise ConfigError("average pooling has no dilation in PyTorch", "drop --dilation")
    if spec.groups != 1:
        raise ConfigError("pooling has no groups", "drop --groups")
    p = _pair(spec.padding, "padding")
    oh, ow = _output_hw(spec, shape, k, s, p, d, strict, pooling=True)
    out_shape = (c, oh, ow)
    working = [f"output C = input C = {c} (pooling works on each channel separately)"]
    if d != (1, 1):
        working.append(_effective_kernel_line(k, d))
    working.append(_size_line("H", h, k[0], s[0], p[0], d[0], oh, ceil_mode=spec.ceil_mode))
    working.append(_size_line("W", w, k[1], s[1], p[1], d[1], ow, ceil_mode=spec.ceil_mode))
    numel, nbytes, mem = _memory_line(out_shape, spec.dtype)
    working.append(mem)
    working.append("params: 0 (pooling has no weights)")
    flops = core.pool_flops(c, oh, ow, k)
    working.append(
        f"FLOPs: (C*H'*W') * (K*K) = ({c}*{oh}*{ow}) * ({k[0]}*{k[1]}) = {n(numel)} * "
        f"{k[0] * k[1]} = {n(flops)}" + (f" = {flops / 1e6:.1f} MFLOP" if flops >= 50_000 else "")
    )
    rf, jump, rf_lines = _rf_lines(rf_in, jump_in, k, s, d)
    working += rf_lines
    return LayerRow(
        name=spec.name or kind,
        type=kind,
        input_shape=shape,
        output_shape=out_shape,
        filters=None,
        kernel=k,
        stride=s,
        padding=p,
        dilation=d,
        groups=1,
        weights=0,
        bias=0,
        params=0,
        macs=0,
        flops=flops,
        activation_elements=numel,
        activation_bytes=nbytes,
        dtype=core.dtype_bits(spec.dtype)[0],
        receptive_field=rf,
        jump=jump,
        working=working,
        notes=["pooling FLOPs count one op per window element, as seed 001 does"],
    )


def _fc(spec, shape) -> LayerRow:
    for flag, value, default in [
        ("kernel", spec.kernel, None),
        ("stride", spec.stride, None),
        ("padding", spec.padding, 0),
        ("dilation", spec.dilation, 1),
        ("groups", spec.groups, 1),
    ]:
        if value != default:
            raise ConfigError(f"--{flag} does not apply to an fc layer", f"drop --{flag}")
    if spec.filters is None:
        raise ConfigError("an fc layer needs a number of outputs", "pass --filters N")
    out_f = spec.filters
    in_f = math.prod(shape)
    working = []
    if len(shape) > 1:
        working.append(f"in features = flatten {'*'.join(map(str, shape))} = {n(in_f)}")
    working.append(f"output = {n(out_f)} features")
    weights, bias = core.linear_params(in_f, out_f, spec.bias)
    numel, nbytes, mem = _memory_line((out_f,), spec.dtype)
    working.append(mem)
    working.append(f"weights: in x out = {in_f}*{out_f} = {n(weights)}")
    working.append(f"bias: {n(bias)}" + ("" if spec.bias else " (--no-bias)"))
    working.append(
        f"params: {in_f}*{out_f} + {bias} = {n(weights + bias)}"
        if bias
        else f"params: {n(weights)}"
    )
    macs = core.linear_macs(in_f, out_f)
    working.append(f"MACs: {in_f} * {out_f} = {n(macs)}")
    return LayerRow(
        name=spec.name or "fc",
        type="fc",
        input_shape=shape,
        output_shape=(out_f,),
        filters=out_f,
        kernel=None,
        stride=None,
        padding=None,
        dilation=None,
        groups=1,
        weights=weights,
        bias=bias,
        params=weights + bias,
        macs=macs,
        flops=macs,
        activation_elements=numel,
        activation_bytes=nbytes,
        dtype=core.dtype_bits(spec.dtype)[0],
        receptive_field=None,
        jump=None,
        working=working,
        notes=["an fc unit sees the whole input: its receptive field is the full image"],
    )


def _conv_transpose(spec, shape, k, s, d) -> LayerRow:
    c_in, h, w = shape
    if spec.filters is None:
        raise ConfigError("a transposed conv layer needs a number of filters", "pass --filters N")
    if isinstance(spec.padding, str):
        raise ConfigError(
            f"transposed conv padding must be a number, got {spec.padding!r}",
            "PyTorch's ConvTranspose2d has no 'same'/'valid'",
        )
    c_out, g = spec.filters, spec.groups
    p = _pair(spec.padding, "padding")
    op = _pair(spec.output_padding, "output_padding")
    weights, bias = core.conv_params(c_in, c_out, k, g, spec.bias)
    oh, ow = core.conv_transpose_output_size((h, w), k, s, p, op, d)
    out_shape = (c_out, oh, ow)
    working = [f"output C = filters = {c_out}"]
    for axis, n_in, k_, s_, p_, op_, d_, size in zip("HW", (h, w), k, s, p, op, d, (oh, ow)):
        working.append(
            f"output {axis} = (N - 1)*S - 2P + D*(K - 1) + output_padding + 1 = "
            f"({n_in} - 1)*{s_} - 2*{p_} + {d_}*({k_} - 1) + {op_} + 1 = {size}"
        )
    numel, nbytes, mem = _memory_line(out_shape, spec.dtype)
    working.append(mem)
    cout_g = str(c_out) if g == 1 else f"({c_out}/{g})"
    wexpr = f"{c_in}*{cout_g}*{k[0]}*{k[1]}"
    working.append(f"weights: C_in x C_out/groups x K x K = {wexpr} = {n(weights)}")
    working.append(f"bias: {n(bias)}" + ("" if spec.bias else " (--no-bias)"))
    working.append(
        f"params: {wexpr} + {bias} = {n(weights + bias)}" if bias else f"params: {n(weights)}"
    )
    macs = core.conv_transpose_macs(c_in, c_out, h, w, k, g)
    in_numel = c_in * h * w
    working.append(
        f"MACs: (C_in*H*W) * (C_out/groups*K*K) = ({c_in}*{h}*{w}) * ({cout_g}*{k[0]}*{k[1]})"
        f" = {n(in_numel)} * {n(weights // c_in)} = {n(macs)}"
    )
    return LayerRow(
        name=spec.name or "convtranspose",
        type="convtranspose",
        input_shape=shape,
        output_shape=out_shape,
        filters=c_out,
        kernel=k,
        stride=s,
        padding=p,
        dilation=d,
        groups=g,
        weights=weights,
        bias=bias,
        params=weights + bias,
        macs=macs,
        flops=macs,
        activation_elements=numel,
        activation_bytes=nbytes,
        dtype=core.dtype_bits(spec.dtype)[0],
        receptive_field=None,
        jump=None,
        working=working,
        notes=[
            "transposed conv MACs: every input element meets C_out/groups*K*K weights "
            "(torch.utils.flop_counter's count); its receptive field is not a simple recurrence"
        ],
    )
