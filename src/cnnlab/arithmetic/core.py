"""Layer arithmetic as pure functions: sizes, parameters, MACs, memory, receptive field.

The lectures' formulas (seed 000/001), made exact:

- output size   N' = (N - K_eff + P_before + P_after)/S + 1, with K_eff = D*(K - 1) + 1
  (the lecture writes (N - K + 2P)/S + 1). A size that is not an integer raises ``ShapeError``
  showing the numbers; ``strict=False`` floors like PyTorch and warns ``FlooredSizeWarning``.
- transposed    N' = (N - 1)*S - 2P + D*(K - 1) + output_padding + 1
- weights       C_out * (C_in/groups) * K_h * K_w, bias C_out
- MACs          (C_out * H' * W') * (C_in/groups * K_h * K_w); one multiply+add = 1
- memory        elements * bytes per element of the dtype
- receptive field  r_out = r_in + (K_eff - 1) * j_in, j_out = j_in * S
  (j is the jump: the product of the strides *before* the layer; seed 000 uses the layer's own
  stride, which is wrong, see docs/errata.md)

Every size argument may be an int or a per-dimension tuple such as ``(h, w)``; when any is a
tuple the result is a tuple. No torch here: this module is the reference the torch-based
summary is checked against, and it must import in milliseconds.
"""

from __future__ import annotations

import math
import operator
import warnings
from fractions import Fraction

from cnnlab.errors import ConfigError, ShapeError, suggest

__all__ = [
    "FlooredSizeWarning",
    "activation_bytes",
    "conv_macs",
    "conv_output_size",
    "conv_params",
    "conv_transpose_macs",
    "conv_transpose_output_size",
    "dtype_bits",
    "effective_kernel",
    "linear_macs",
    "linear_params",
    "pool_flops",
    "pool_output_size",
    "receptive_field",
    "receptive_field_step",
    "resolve_padding",
]


class FlooredSizeWarning(UserWarning):
    """An output size was not an integer and was floored, as PyTorch does silently."""


# ----------------------------------------------------------------------------- argument checks


def _int(value, name: str, minimum: int) -> int:
    original = value
    # bool is an int subclass; True as a kernel size is a bug, not a 1. NumPy and torch
    # integers (anything with __index__) are welcome, and so is a whole float like 2.0.
    if isinstance(value, bool):
        value = None
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    else:
        try:
            value = operator.index(value)
        except TypeError:
            value = None
    if value is None:
        raise ConfigError(
            f"{name} must be a whole number, got {original!r}",
            f"pass an integer {name} (>= {minimum})",
        )
    if value < minimum:
        raise ConfigError(
            f"{name} must be >= {minimum}, got {value}",
            f"pass a {name} of at least {minimum}",
        )
    return value


def _ndim(*values) -> int | None:
    """Number of spatial dims implied by the tuple arguments (None when all are scalars)."""
    lengths = {len(v) for v in values if isinstance(v, (tuple, list))}
    if len(lengths) > 1:
        raise ConfigError(
            f"per-dimension arguments have different lengths {sorted(lengths)}",
            "give every tuple argument one entry per spatial dimension, e.g. (h, w)",
        )
    return lengths.pop() if lengths else None


def _per_dim(value, ndim: int | None, name: str) -> list:
    if isinstance(value, (tuple, list)):
        return list(value)
    return [value] * (ndim or 1)


def _pad_pair(p, name: str = "padding") -> tuple[int, int]:
    """One dimension's padding: an int (both sides) or a (before, after) pair."""
    if isinstance(p, (tuple, list)):
        if len(p) != 2:
            raise ConfigError(
                f"{name} for one dimension must be an int or a (before, after) pair, got {p!r}"
            )
        return _int(p[0], name, 0), _int(p[1], name, 0)
    p = _int(p, name, 0)
    return p, p


def _result(values: list, ndim: int | None):
    return values[0] if ndim is None else tuple(values)


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: D*(K - 1) + 1 (a 3x3 kernel at dilation 2 spans 5)."""
    return _int(dilation, "dilation", 1) * (_int(kernel, "kernel", 1) - 1) + 1


# ----------------------------------------------------------------------------- padding


def resolve_padding(padding, kernel, dilation=1):
    """Numeric padding for ``"same"``, ``"valid"``, an int or a per-dimension tuple.

    Returns an int when every argument is an int, else a tuple with one entry per dimension.
    Each entry is the padding on each side, or a ``(before, after)`` pair where "same" needs an
    odd total (even effective kernel): like PyTorch, the extra pixel goes after (bottom/right).
    """
    ndim = _ndim(kernel, dilation, padding if not isinstance(padding, str) else 0)
    ks = _per_dim(kernel, ndim, "kernel")
    ds = _per_dim(dilation, ndim, "dilation")
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return _result([0] * len(ks), ndim)
        if mode != "same":
            raise ConfigError(
                f"unknown padding {padding!r}",
                "use 'same', 'valid' or a number of pixels per side",
            )
        out = []
        for k, d in zip(ks, ds):
            total = effective_kernel(k, d) - 1
            before = total // 2
            out.append(before if total % 2 == 0 else (before, total - before))
        return _result(out, ndim)
    ps = _per_dim(padding, ndim, "padding")
    out = []
    for p in ps:
        before, after = _pad_pair(p)
        out.append(before if before == after else (before, after))
    return _result(out, ndim)


# ----------------------------------------------------------------------------- output sizes


def _fmt_num(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    text = f"{float(x):.4f}".rstrip("0").rstrip(".")
    return text if Fraction(text) == x else f"{text}..."


def size_expression(n: int, k_eff: int, stride: int, before: int, after: int) -> str:
    """The lecture's working, e.g. ``(32 - 5 + 2*0)/2 + 1``."""
    pad = f"2*{before}" if before == after else f"{before} + {after}"
    return f"({n} - {k_eff} + {pad})/{stride} + 1"


def _fix_hint(n, k_eff, s, before, after, floored, ceiled, *, pooling, max_pad) -> str:
    """Ways to make (n - k + pad)/s integral: padding, stride, or input size, then flooring."""
    num = n - k_eff + before + after
    fixes = []
    if before == after:
        pads = [p for p in range(0, min(before + s, max_pad) + 1) if (n - k_eff + 2 * p) % s == 0]
        pads.sort(key=lambda p: (abs(p - before), p))
        if pads:
            p = pads[0]
            fixes.append(f"padding {p} (-> {(n - k_eff + 2 * p) // s + 1})")
    strides = [t for t in range(1, min(num, 64) + 1) if num % t == 0 and t != s]
    strides.sort(key=lambda t: (abs(t - s), t))
    if strides:
        fixes.append(f"stride {strides[0]} (-> {num // strides[0] + 1})")
    sizes = [m for m in range(max(1, n - s), n + s + 1) if (m - n) and (m - n + num) % s == 0]
    sizes = [m for m in sizes if m - k_eff + before + after >= 0]
    sizes.sort(key=lambda m: (abs(m - n), m))
    if sizes:
        m = sizes[0]
        fixes.append(f"input size {m} (-> {(m - n + num) // s + 1})")
    hint = "change " + " or ".join(fixes) + "; " if fixes else ""
    hint += (
        f"or pass --floor (CLI) / strict=False (Python) to floor like PyTorch does (-> {floored})"
    )
    if pooling:
        hint += f", or --ceil-mode / ceil_mode=True (-> {ceiled})"
    return hint


def _size_1d(n, k, s, p, d, *, ceil_mode, strict, pooling, what) -> int:
    n = _int(n, "input size", 1)
    k = _int(k, "kernel", 1)
    s = _int(s, "stride", 1)
    d = _int(d, "dilation", 1)
    before, after = _pad_pair(p)
    k_eff = d * (k - 1) + 1
    if pooling and max(before, after) > k // 2:
        raise ConfigError(
            f"{what} padding {max(before, after)} is more than half the kernel {k} "
            f"(at most {k // 2}); PyTorch refuses it too",
            f"use padding <= {k // 2}, or a larger kernel",
        )
    padded = n + before + after
    exact = Fraction(padded - k_eff, s) + 1
    floored = (padded - k_eff) // s + 1
    ceiled = -(-(padded - k_eff) // s) + 1
    # PyTorch's ceil_mode rule: the last window must start inside the input or the left padding
    if ceiled > floored and (ceiled - 1) * s >= n + before:
        ceiled -= 1
    # a window wider than the padded input only fits as a ceil-mode pooling window that hangs
    # off the end (PyTorch allows it: it starts inside the input)
    if k_eff > padded and not (pooling and ceil_mode and ceiled >= 1):
        span = f"effective kernel {d}*({k} - 1) + 1 = {k_eff}" if d > 1 else f"kernel {k}"
        raise ShapeError(
            f"{what}: {span} is larger than the padded input {n} + {before} + {after} = {padded}",
            f"use a kernel of at most {padded}, more padding, or a larger input",
        )
    if exact.denominator == 1:
        return floored
    if ceil_mode:
        return ceiled
    expr = size_expression(n, k_eff, s, before, after)
    if strict:
        raise ShapeError(
            f"{what} output size {expr} = {_fmt_num(exact)} is not an integer",
            _fix_hint(
                n,
                k_eff,
                s,
                before,
                after,
                floored,
                ceiled,
                pooling=pooling,
                max_pad=k // 2 if pooling else before + s,
            ),
        )
    warnings.warn(
        f"{what} output size {expr} = {_fmt_num(exact)} is not an integer; floored to "
        f"{floored} as PyTorch does (the last {(padded - k_eff) % s} row(s)/column(s) of the "
        "padded input are never used)",
        FlooredSizeWarning,
        stacklevel=4,  # the caller of conv/pool_output_size
    )
    return floored


def conv_output_size(
    n, kernel, stride=1, padding=0, dilation=1, *, ceil_mode=False, strict=True
) -> int | tuple[int, ...]:
    """Output size of a convolution: (N - K_eff + 2P)/S + 1.

    ``padding`` may be "same" (stride 1 only, as in PyTorch), "valid", an int, or per dimension
    an int or a (before, after) pair. ``strict=True`` raises ``ShapeError`` when the size is not
    an integer; ``strict=False`` floors like PyTorch and warns ``FlooredSizeWarning``;
    ``ceil_mode=True`` rounds up with PyTorch's pooling rule instead.
    """
    return _output_size(
        n, kernel, stride, padding, dilation, ceil_mode, strict, pooling=False, what="conv"
    )


def pool_output_size(
    n, kernel, stride=None, padding=0, dilation=1, *, ceil_mode=False, strict=True
) -> int | tuple[int, ...]:
    """Output size of max/avg pooling; ``stride=None`` means stride = kernel, as in PyTorch.

    ``ceil_mode=True`` follows PyTorch exactly: round up, but drop a last window that would
    start in the right padding. Padding may be at most half the kernel (PyTorch's limit).
    """
    if stride is None:
        stride = kernel
    if isinstance(padding, str):
        raise ConfigError(
            f"pooling padding must be a number, got {padding!r}",
            "PyTorch pooling has no 'same'/'valid'; pass the pixels per side",
        )
    return _output_size(
        n, kernel, stride, padding, dilation, ceil_mode, strict, pooling=True, what="pool"
    )


def _output_size(n, kernel, stride, padding, dilation, ceil_mode, strict, *, pooling, what):
    is_str = isinstance(padding, str)
    ndim = _ndim(n, kernel, stride, dilation, 0 if is_str else padding)
    ns = _per_dim(n, ndim, "input size")
    ks = _per_dim(kernel, ndim, "kernel")
    ss = _per_dim(stride, ndim, "stride")
    ds = _per_dim(dilation, ndim, "dilation")
    if is_str:
        if padding.lower() == "same" and any(_int(s, "stride", 1) != 1 for s in ss):
            raise ConfigError(
                f"padding='same' needs stride 1, got stride {stride}",
                "PyTorch refuses 'same' for strided convolutions; pass the padding as a number",
            )
        # resolve per dimension: a scalar "same" may come back as a (before, after) pair
        ps = [resolve_padding(padding, k_, d_) for k_, d_ in zip(ks, ds)]
    else:
        ps = _per_dim(padding, ndim, "padding")
    out = []
    for n_, k_, s_, p_, d_ in zip(ns, ks, ss, ps, ds):
        out.append(
            _size_1d(
                n_, k_, s_, p_, d_, ceil_mode=ceil_mode, strict=strict, pooling=pooling, what=what
            )
        )
    return _result(out, ndim)


def conv_transpose_output_size(
    n, kernel, stride=1, padding=0, output_padding=0, dilation=1
) -> int | tuple[int, ...]:
    """Output size of a transposed convolution: (N - 1)*S - 2P + D*(K - 1) + output_padding + 1.

    Always an integer; ``output_padding`` must be smaller than the stride or the dilation
    (PyTorch's rule), and the result must be positive.
    """
    ndim = _ndim(n, kernel, stride, padding, output_padding, dilation)
    cols = [
        _per_dim(v, ndim, name)
        for v, name in [
            (n, "input size"),
            (kernel, "kernel"),
            (stride, "stride"),
            (padding, "padding"),
            (output_padding, "output_padding"),
            (dilation, "dilation"),
        ]
    ]
    out = []
    for n_, k, s, p, op, d in zip(*cols):
        n_, k, s = _int(n_, "input size", 1), _int(k, "kernel", 1), _int(s, "stride", 1)
        p, op, d = _int(p, "padding", 0), _int(op, "output_padding", 0), _int(d, "dilation", 1)
        if op >= s and op >= d:
            raise ConfigError(
                f"output_padding {op} must be smaller than the stride {s} or the dilation {d}",
                f"use output_padding <= {max(s, d) - 1}",
            )
        size = (n_ - 1) * s - 2 * p + d * (k - 1) + op + 1
        if size < 1:
            raise ShapeError(
                f"transposed conv output size ({n_} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {op} + 1"
                f" = {size} is not positive",
                "use less padding or a larger kernel/stride",
            )
        out.append(size)
    return _result(out, ndim)


# ----------------------------------------------------------------------------- parameters, MACs


def _kernel_area(kernel) -> int:
    """K_h * K_w; an int kernel means a square K x K (2-D), a tuple gives every dimension."""
    if isinstance(kernel, (tuple, list)):
        return math.prod(_int(k, "kernel", 1) for k in kernel)
    return _int(kernel, "kernel", 1) ** 2


def _check_groups(in_ch: int, out_ch: int, groups: int) -> None:
    for name, ch in (("in_channels", in_ch), ("out_channels", out_ch)):
        if ch % groups:
            raise ConfigError(
                f"{name} {ch} is not divisible by groups {groups} ({ch}/{groups} = "
                f"{_fmt_num(Fraction(ch, groups))})",
                "use a groups value that divides both channel counts",
            )


def conv_params(in_ch, out_ch, kernel, groups=1, bias=True) -> tuple[int, int]:
    """(weights, bias) of a convolution: C_out * (C_in/groups) * K_h * K_w, and C_out.

    The same counts hold for a transposed convolution (its weight is C_in x C_out/groups x K x K).
    """
    in_ch, out_ch = _int(in_ch, "in_channels", 1), _int(out_ch, "out_channels", 1)
    groups = _int(groups, "groups", 1)
    _check_groups(in_ch, out_ch, groups)
    return out_ch * (in_ch // groups) * _kernel_area(kernel), out_ch if bias else 0


def linear_params(in_f, out_f, bias=True) -> tuple[int, int]:
    """(weights, bias) of a fully connected layer: in*out, and out (the seeds forget the bias)."""
    in_f, out_f = _int(in_f, "in_features", 1), _int(out_f, "out_features", 1)
    return in_f * out_f, out_f if bias else 0


def conv_macs(in_ch, out_ch, out_h, out_w, kernel, groups=1) -> int:
    """Multiply-accumulates of a convolution, bias excluded (the lectures' "flop", seed 001).

    (output elements) * (MACs per output element) = (C_out*H'*W') * (C_in/groups * K_h*K_w).
    """
    weights, _ = conv_params(in_ch, out_ch, kernel, groups, bias=False)
    return weights * _int(out_h, "output height", 1) * _int(out_w, "output width", 1)


def conv_transpose_macs(in_ch, out_ch, in_h, in_w, kernel, groups=1) -> int:
    """MACs of a transposed convolution: every input element meets (C_out/groups)*K_h*K_w weights.

    This is what torch.utils.flop_counter counts (its FLOPs / 2); bias excluded.
    """
    weights, _ = conv_params(in_ch, out_ch, kernel, groups, bias=False)
    return weights * _int(in_h, "input height", 1) * _int(in_w, "input width", 1)


def linear_macs(in_f, out_f) -> int:
    """MACs of a fully connected layer for one input vector: in*out (bias excluded)."""
    return _int(in_f, "in_features", 1) * _int(out_f, "out_features", 1)


def pool_flops(channels, out_h, out_w, kernel) -> int:
    """Pooling work as seed 001 counts it: (C*H'*W') * (K*K), one op per window element."""
    return (
        _int(channels, "channels", 1)
        * _int(out_h, "output height", 1)
        * _int(out_w, "output width", 1)
        * _kernel_area(kernel)
    )


# ----------------------------------------------------------------------------- memory

# bits per element; names as torch/numpy spell them, plus the usual short forms
_DTYPE_BITS = {
    "float64": 64,
    "float32": 32,
    "float16": 16,
    "bfloat16": 16,
    "float8_e4m3fn": 8,
    "float8_e5m2": 8,
    "complex128": 128,
    "complex64": 64,
    "int64": 64,
    "int32": 32,
    "int16": 16,
    "int8": 8,
    "uint64": 64,
    "uint32": 32,
    "uint16": 16,
    "uint8": 8,
    "int4": 4,
    "uint4": 4,
    "bool": 8,  # PyTorch and NumPy store one bool per byte
}
_DTYPE_ALIASES = {
    "double": "float64",
    "fp64": "float64",
    "float": "float32",
    "fp32": "float32",
    "single": "float32",
    "half": "float16",
    "fp16": "float16",
    "bf16": "bfloat16",
    "fp8": "float8_e4m3fn",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "byte": "uint8",
    "char": "int8",
    "cfloat": "complex64",
    "cdouble": "complex128",
    "qint8": "int8",
    "quint8": "uint8",
    "qint32": "int32",
}


def dtype_bits(dtype="float32") -> tuple[str, int]:
    """(canonical name, bits per element) of a dtype given as a name, torch or NumPy dtype."""
    if isinstance(dtype, type):  # numpy.float32 and friends
        name = dtype.__name__
    else:
        name = str(dtype)
    name = name.strip().lower().removeprefix("torch.").removeprefix("numpy.")
    name = _DTYPE_ALIASES.get(name, name)
    if name in _DTYPE_BITS:
        return name, _DTYPE_BITS[name]
    itemsize = getattr(dtype, "itemsize", None)  # torch.dtype and numpy.dtype both have it
    if isinstance(itemsize, int) and itemsize > 0:
        return name, itemsize * 8
    hint = suggest(name, list(_DTYPE_BITS) + list(_DTYPE_ALIASES))
    raise ConfigError(
        f"unknown dtype {dtype!r}",
        hint or f"use one of: {', '.join(_DTYPE_BITS)}",
    )


def activation_bytes(numel, dtype="float32") -> int:
    """Bytes to hold ``numel`` elements of ``dtype`` (sub-byte dtypes rounded up to a byte)."""
    numel = _int(numel, "numel", 0)
    _, bits = dtype_bits(dtype)
    return -(-numel * bits // 8)


# ----------------------------------------------------------------------------- receptive field


def receptive_field_step(rf, jump, kernel, stride=1, dilation=1):
    """One layer of the receptive-field recurrence; returns ``(rf_out, jump_out)``.

    r_out = r_in + (K_eff - 1) * j_in and j_out = j_in * S, where j_in (the jump) is the product
    of the strides of all earlier layers: the distance in input pixels between neighbouring
    units of this layer's input. Padding shifts the field but does not change its size.
    """
    ndim = _ndim(rf, jump, kernel, stride, dilation)
    cols = [
        _per_dim(v, ndim, name)
        for v, name in [
            (rf, "rf"),
            (jump, "jump"),
            (kernel, "kernel"),
            (stride, "stride"),
            (dilation, "dilation"),
        ]
    ]
    rfs, jumps = [], []
    for r, j, k, s, d in zip(*cols):
        r, j = _int(r, "rf (the input's receptive field, --rf-in)", 1), _int(j, "jump", 1)
        rfs.append(r + (effective_kernel(k, d) - 1) * j)
        jumps.append(j * _int(s, "stride", 1))
    return _result(rfs, ndim), _result(jumps, ndim)


def receptive_field(layers, rf=1, jump=1) -> list[tuple]:
    """(rf, jump) after each layer of a chain; ``layers`` holds (kernel, stride[, dilation]).

    >>> receptive_field([(7, 1), (3, 1), (3, 2)])  # seed 000's table, corrected
    [(7, 1), (9, 1), (11, 2)]
    """
    out = []
    for layer in layers:
        rf, jump = receptive_field_step(rf, jump, *layer)
        out.append((rf, jump))
    return out
