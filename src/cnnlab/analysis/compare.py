"""Two designs side by side: totals, a per-layer diff, and the lectures' built-in comparisons.

Each built-in comparison is built as two small ``nn.Module``s, summarised by the same engine
as any model, and printed with its symbolic formula (seed 001: "Params: 25C^2 vs 18C^2")
evaluated next to the measured number, so a disagreement would show.

Layer specs (``"conv(64,3,p=1),relu,conv(64,3,p=1)"``) describe a chain of layers for quick
what-ifs; the input channels come from the input size.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from torch import nn

from cnnlab.analysis.summary import Summary, summary
from cnnlab.errors import ConfigError, suggest


@dataclass
class Formula:
    """A symbolic claim ("params: 25C^2") evaluated for A and B, checked against the measure."""

    quantity: str
    expr_a: str
    expr_b: str
    expected_a: int
    expected_b: int
    measured_a: int
    measured_b: int

    @property
    def ok(self) -> bool:
        return self.expected_a == self.measured_a and self.expected_b == self.measured_b


@dataclass
class Comparison:
    title: str
    a: Summary
    b: Summary
    label_a: str
    label_b: str
    formulas: list[Formula] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    middle: Summary | None = None  # a design between A and B, measured for the notes

    def totals(self) -> list[tuple[str, int, int]]:
        qa, qb = self.a.totals, self.b.totals
        rows = [(k, qa[k], qb[k]) for k in ("params", "macs", "flops", "activation_bytes")]
        rows.append(("output elements", _out_numel(self.a), _out_numel(self.b)))
        rows.append(("receptive field", _final_rf(self.a), _final_rf(self.b)))
        return rows

    def layer_diff(self) -> list[dict]:
        """Rows aligned by layer name (A's order, then B-only rows)."""
        a = {(r.name, r.call): r for r in self.a.layers}
        b = {(r.name, r.call): r for r in self.b.layers}
        keys = list(a) + [k for k in b if k not in a]
        out = []
        for k in keys:
            ra, rb = a.get(k), b.get(k)
            out.append(
                {
                    "name": k[0] if k[1] == 1 else f"{k[0]} [{k[1]}]",
                    "key": k,
                    "a": None if ra is None else _brief(ra),
                    "b": None if rb is None else _brief(rb),
                    "status": "only A"
                    if rb is None
                    else "only B"
                    if ra is None
                    else ("same" if _brief(ra) == _brief(rb) else "changed"),
                }
            )
        return out

    def to_dict(self) -> dict:
        middle = {} if self.middle is None else {"middle": self.middle.to_dict()}
        return {
            "title": self.title,
            "a": {"label": self.label_a, **self.a.to_dict()},
            "b": {"label": self.label_b, **self.b.to_dict()},
            "totals": [{"quantity": q, "a": x, "b": y} for q, x, y in self.totals()],
            "formulas": [{**f.__dict__, "ok": f.ok} for f in self.formulas],
            "layers": self.layer_diff(),
            "notes": list(self.notes),
            **middle,
        }

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            f"| | {self.label_a} | {self.label_b} | B/A |",
            "|---|---:|---:|---:|",
        ]
        for q, x, y in self.totals():
            lines.append(f"| {q} | {x:,} | {y:,} | {_ratio(x, y)} |")
        if self.formulas:
            lines += [
                "",
                "| quantity | A formula | A | B formula | B | check |",
                "|---|---|---:|---|---:|---|",
            ]
            for f in self.formulas:
                lines.append(
                    f"| {f.quantity} | {f.expr_a} | {f.measured_a:,} | {f.expr_b} | "
                    f"{f.measured_b:,} | {'ok' if f.ok else 'MISMATCH'} |"
                )
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def print(self, console=None) -> None:
        from rich import box
        from rich.table import Table

        from cnnlab._util import fmt_count
        from cnnlab.analysis.render import wide_console

        t = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD)
        t.add_column("")
        t.add_column(f"A: {self.label_a}", justify="right")
        t.add_column(f"B: {self.label_b}", justify="right")
        t.add_column("B/A", justify="right")
        for q, x, y in self.totals():
            t.add_row(_LABELS.get(q, q), f"{x:,}", f"{y:,}", _ratio(x, y))
        if self.formulas:
            f_t = Table(title="formulas vs measured", title_justify="left", box=box.SIMPLE_HEAD)
            for h in ("", "A formula", "A", "B formula", "B", "check"):
                f_t.add_column(h, justify="right" if h in ("A", "B") else "left")
            for f in self.formulas:
                check = (
                    "[green]ok[/]"
                    if f.ok
                    else f"[red]expected {f.expected_a:,} / {f.expected_b:,}[/]"
                )
                f_t.add_row(
                    f.quantity, f.expr_a, f"{f.measured_a:,}", f.expr_b, f"{f.measured_b:,}", check
                )
        d = Table(title="per layer (aligned by name)", title_justify="left", box=box.SIMPLE_HEAD)
        for h in ("layer", "A output", "A params", "A MACs", "B output", "B params", "B MACs", ""):
            d.add_column(h, justify="left" if h in ("layer", "") else "right", no_wrap=bool(h))
        a = {(r.name, r.call): r for r in self.a.layers}
        b = {(r.name, r.call): r for r in self.b.layers}
        for row in self.layer_diff():
            cells = [row["name"]]
            for side in (a, b):
                r = side.get(row["key"])
                cells += (
                    ["-", "", ""]
                    if r is None
                    else [
                        "x".join(map(str, r.output_shape or [])),
                        f"{r.params:,}" if r.params else "",
                        fmt_count(r.macs),
                    ]
                )
            cells.append("" if row["status"] == "same" else row["status"])
            d.add_row(*cells)
        console = wide_console(console, t, d)
        console.print(t)
        if self.formulas:
            console.print(f_t)
        console.print(d)
        for n in self.notes:
            console.print(f"note: {n}", highlight=False)


_LABELS = {"macs": "MACs", "flops": "FLOPs", "activation_bytes": "activation bytes"}


def _brief(r) -> str:
    out = "x".join(map(str, r.output_shape or []))
    return f"{r.type} -> {out}, {r.params:,} params, {r.macs:,} MACs"


def _ratio(x, y) -> str:
    if not x:
        return "-"
    return f"{y / x:.3g}"


def _out_numel(s: Summary) -> int:
    import math

    last = s.layers[-1].output_shape if s.layers else None
    return math.prod(last) if last else 0


def _final_rf(s: Summary) -> int:
    rfs = [r.receptive_field for r in s.layers if r.receptive_field]
    return int(max(rfs[-1])) if rfs else 0


def compare(
    model_a,
    model_b,
    input_a,
    input_b=None,
    *,
    convention="lecture",
    label_a="A",
    label_b="B",
    title=None,
    dtype=None,
) -> Comparison:
    """Summarise two models (each at its own input size) and line them up."""
    kw = {"convention": convention}
    if dtype is not None:
        kw["dtype"] = dtype
    sa = summary(model_a, input_a, model_name=label_a, **kw)
    sb = summary(model_b, input_b or input_a, model_name=label_b, **kw)
    return Comparison(title or f"{label_a} vs {label_b}", sa, sb, label_a, label_b)


# ----------------------------------------------------------------------------- layer specs

_SPEC_LAYERS = ("conv", "pool", "maxpool", "avgpool", "gap", "relu", "bn", "fc", "flatten")


def parse_spec(spec: str, in_channels: int, input_size=None) -> nn.Sequential:
    """``"conv(64,3,p=1),relu,pool(2)"`` -> an ``nn.Sequential`` (conv(out, k, s=, p=, d=, g=,
    bias=); pool/maxpool(k, s=, p=); avgpool(k, s=, p=); gap; relu; bn; flatten; fc(out)).

    With ``input_size`` (C, H, W) the layers are built on the meta device (no memory, whatever
    the sizes) and each ``fc`` gets its input features from the shapes; without it an ``fc`` is
    a ``LazyLinear``, sized when :func:`cnnlab.analysis.summary` first runs it."""
    if input_size is not None:
        import torch

        with torch.device("meta"):
            return _parse_spec(spec, in_channels, tuple(input_size))
    return _parse_spec(spec, in_channels, None)


def _fc_in(layers, input_size, spec) -> int:
    import torch

    try:
        with torch.no_grad():
            x = nn.Sequential(*layers)(torch.empty(1, *input_size, device="meta"))
    except (RuntimeError, ValueError) as e:
        raise ConfigError(
            f"layer spec {spec!r} does not fit the input {'x'.join(map(str, input_size))}: "
            f"{str(e).splitlines()[0]}",
            "check the kernel sizes and strides against --input",
        ) from None
    return int(x.flatten(1).shape[1])


def _parse_spec(spec: str, in_channels: int, input_size) -> nn.Sequential:
    try:
        tree = ast.parse(f"[{spec}]", mode="eval").body
    except SyntaxError:
        raise ConfigError(
            f"cannot read layer spec {spec!r}", 'write layers like "conv(64,3,p=1),relu,pool(2)"'
        ) from None
    layers, c, flat = [], in_channels, None
    for node in tree.elts:
        if isinstance(node, ast.Name):
            name, args, kw = node.id, [], {}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            try:
                args = [ast.literal_eval(a) for a in node.args]
                kw = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            except ValueError:
                raise ConfigError(
                    f"layer {ast.unparse(node)!r} must have literal arguments",
                    "e.g. conv(64,3,p=1)",
                ) from None
        else:
            raise ConfigError(
                f"cannot read {ast.unparse(node)!r} in the layer spec",
                f"layers are: {', '.join(_SPEC_LAYERS)}",
            )
        _check_numbers(ast.unparse(node), name, args, kw)
        try:
            if name == "conv":
                out, k = args[0], args[1]
                layers.append(
                    nn.Conv2d(
                        c,
                        out,
                        k,
                        stride=kw.get("s", 1),
                        padding=kw.get("p", 0),
                        dilation=kw.get("d", 1),
                        groups=kw.get("g", 1),
                        bias=kw.get("bias", True),
                    )
                )
                c = out
            elif name in ("pool", "maxpool"):
                layers.append(nn.MaxPool2d(args[0], kw.get("s", args[0]), kw.get("p", 0)))
            elif name == "avgpool":
                layers.append(nn.AvgPool2d(args[0], kw.get("s", args[0]), kw.get("p", 0)))
            elif name == "gap":
                layers.append(nn.AdaptiveAvgPool2d(1))
            elif name == "relu":
                layers.append(nn.ReLU())
            elif name == "bn":
                layers.append(nn.BatchNorm2d(c))
            elif name == "flatten":
                layers.append(nn.Flatten())
                flat = True
            elif name == "fc":
                if not flat:
                    layers.append(nn.Flatten())
                    flat = True
                if input_size is None:
                    layers.append(nn.LazyLinear(args[0], bias=kw.get("bias", True)))
                else:
                    n_in = _fc_in(layers, input_size, spec)
                    layers.append(nn.Linear(n_in, args[0], bias=kw.get("bias", True)))
            else:
                raise ConfigError(
                    f"unknown layer {name!r} in the layer spec",
                    suggest(name, _SPEC_LAYERS) or f"layers are: {', '.join(_SPEC_LAYERS)}",
                )
        except (IndexError, TypeError, ValueError, RuntimeError) as e:
            raise ConfigError(
                f"bad arguments in {name}{tuple(args)}: {str(e).splitlines()[0]}",
                "conv(out_channels, kernel, s=1, p=0), pool(kernel), fc(out), with sizes >= 1",
            ) from None
    return nn.Sequential(*layers)


# the least each number of a layer may be: (positional minima, keyword minima); PyTorch takes a
# negative padding or a zero stride silently or fails deep inside, so they are checked here
_MINIMA = {
    "conv": ((("out_channels", 1), ("kernel", 1)), {"s": 1, "p": 0, "d": 1, "g": 1}),
    "pool": ((("kernel", 1),), {"s": 1, "p": 0}),
    "avgpool": ((("kernel", 1),), {"s": 1, "p": 0}),
    "fc": ((("out", 1),), {}),
}
_MINIMA["maxpool"] = _MINIMA["pool"]
_WHAT = {"s": "stride", "p": "padding", "d": "dilation", "g": "groups"}


def _check_numbers(text: str, name: str, args: list, kw: dict) -> None:
    if name not in _MINIMA:
        return
    least, named = _MINIMA[name]
    given = [(label, v, m) for v, (label, m) in zip(args, least)]
    given += [(f"{k}= ({_WHAT[k]})", kw[k], m) for k, m in named.items() if k in kw]
    for what, v, m in given:
        if isinstance(v, bool) or not isinstance(v, int) or v < m:
            raise ConfigError(
                f"layer {text!r}: {what} must be a whole number >= {m}, got {v!r}",
                "conv(out_channels, kernel, s=1, p=0, d=1, g=1), pool(kernel, s=, p=), fc(out)",
            )


def is_spec(text: str) -> bool:
    return "(" in text or text in _SPEC_LAYERS


# ----------------------------------------------------------------------------- built-ins


def _conv_stack(c, k, n, pad, relu=True):
    layers = []
    for _ in range(n):
        layers.append(nn.Conv2d(c, c, k, padding=pad, bias=False))
        if relu:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _f(quantity, ea, eb, va, vb, sa, sb, key):
    get = {
        "params": lambda s: s.totals["params"],
        "macs": lambda s: s.totals["macs"],
        "rf": _final_rf,
        "memory": _out_numel,
    }[key]
    return Formula(quantity, ea, eb, va, vb, get(sa), get(sb))


def _one_big_vs_stacked_3x3(k: int, c: int, h: int, convention: str, note: str) -> Comparison:
    """One kxk conv vs (k-1)/2 stacked 3x3 convs, C -> C at H x W: same receptive field k."""
    n = (k - 1) // 2
    words = {2: "two", 3: "three"}.get(n, str(n))
    cmp = compare(
        _conv_stack(c, k, 1, (k - 1) // 2),
        _conv_stack(c, 3, n, 1),
        (c, h, h),
        convention=convention,
        label_a=f"one {k}x{k}",
        label_b=f"{words} 3x3",
        title=f"one {k}x{k} conv vs {words} 3x3 convs (C={c}, H=W={h})",
    )
    a, b = cmp.a, cmp.b
    big, small = k * k, 9 * n
    rf_b = " + ".join(["3"] + ["2"] * (n - 1)) + f" = {k}"
    cmp.formulas = [
        _f("params", f"{big}C^2", f"{small}C^2", big * c * c, small * c * c, a, b, "params"),
        _f(
            "MACs",
            f"{big}C^2HW",
            f"{small}C^2HW",
            big * c * c * h * h,
            small * c * c * h * h,
            a,
            b,
            "macs",
        ),  # fmt: skip
        _f("receptive field", str(k), rf_b, k, k, a, b, "rf"),
    ]
    cmp.notes.append(note)
    return cmp


def five_vs_three(channels: int = 64, size: int = 56, convention="lecture") -> Comparison:
    """Seed 001 (VGG): one 5x5 conv vs two 3x3 convs, C -> C at H x W (bias-free)."""
    note = "convolutions without bias, as the seed's formulas; ReLU after each conv"
    return _one_big_vs_stacked_3x3(5, channels, size, convention, note)


def seven_vs_three(channels: int = 64, size: int = 56, convention="lecture") -> Comparison:
    """Seed 002 (VGG): one 7x7 conv vs three 3x3 convs: 49 vs 27 weights per channel pair."""
    note = "convolutions without bias; ReLU after each conv (more non-linearity)"
    return _one_big_vs_stacked_3x3(7, channels, size, convention, note)


class _Inception(nn.Module):
    """Four parallel branches concatenated on channels (seed 000's Inception module)."""

    def __init__(self, cin, b1, b3, b5, pool_proj=None, r3=None, r5=None):
        super().__init__()

        def conv(i, o, k):
            return nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2, bias=False), nn.ReLU())

        self.branch1 = conv(cin, b1, 1)
        self.branch3 = (
            conv(cin, b3, 3) if r3 is None else nn.Sequential(conv(cin, r3, 1), conv(r3, b3, 3))
        )
        self.branch5 = (
            conv(cin, b5, 5) if r5 is None else nn.Sequential(conv(cin, r5, 1), conv(r5, b5, 5))
        )
        pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.branch_pool = (
            pool if pool_proj is None else nn.Sequential(pool, conv(cin, pool_proj, 1))
        )

    def forward(self, x):
        import torch

        return torch.cat(
            [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], 1
        )


def inception(size: int = 28, channels: int = 256, convention="lecture") -> Comparison:
    """Seed 000: naive Inception (1x1 128, 3x3 192, 5x5 96, 3x3 max-pool) on 28x28x256 vs
    the same branches with GoogLeNet inception(3a)'s 1x1 reductions (96 before the 3x3,
    16 before the 5x5, a 32-filter projection after the pool)."""
    c, h = channels, size
    naive = _Inception(c, 128, 192, 96)
    reduced = _Inception(c, 128, 192, 96, pool_proj=32, r3=96, r5=16)
    cmp = compare(
        naive,
        reduced,
        (c, h, h),
        convention=convention,
        label_a="naive",
        label_b="1x1-reduced",
        title=f"naive Inception vs 1x1-reduced ({h}x{h}x{c} input)",
    )
    hw = h * h
    pa, pb = c * (128 + 9 * 192 + 25 * 96), c * (128 + 96 + 16 + 32) + 9 * 96 * 192 + 25 * 16 * 96
    cmp.formulas = [
        _f(
            "params",
            "C(128 + 9*192 + 25*96)",
            "C(128+96+16+32) + 9*96*192 + 25*16*96",
            pa,
            pb,
            cmp.a,
            cmp.b,
            "params",
        ),
        _f("MACs", "HW * params", "HW * params", hw * pa, hw * pb, cmp.a, cmp.b, "macs"),
        _f(
            "output elements",
            "HW(128+192+96+C)",
            "HW(128+192+96+32)",
            hw * (416 + c),
            hw * 448,
            cmp.a,
            cmp.b,
            "memory",
        ),
    ]
    cmp.notes.append(f"naive output channels: 128+192+96+{c} = {416 + c} (seed 000: 672 for C=256)")
    cmp.notes.append(
        "reductions from GoogLeNet inception(3a): 3x3 reduce 96, 5x5 reduce 16, "
        "pool projection 32; branch widths kept at 128/192/96 so only the "
        "1x1 bottlenecks differ; convolutions without bias"
    )
    return cmp


def fc_vs_gap(convention="lecture") -> Comparison:
    """Seeds 001/002: VGG-16's FC head on 512x7x7 vs GoogLeNet's average pool + one FC."""
    import torch

    from cnnlab.analysis.resolve import skip_init

    with torch.device("meta"), skip_init():  # 124 M parameters we never need to fill
        vgg = nn.Sequential(
            nn.Flatten(),
            nn.Linear(25088, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 1000),
        )
        gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000))
    cmp = compare(
        vgg,
        gap,
        (512, 7, 7),
        (1024, 7, 7),
        convention=convention,
        label_a="VGG-16 FC head",
        label_b="GoogLeNet avg-pool + FC",
        title="FC head vs global average pooling",
    )
    pa = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    pb = 1024 * 1000 + 1000
    cmp.formulas = [
        _f(
            "params",
            "25088*4096+4096 + 4096*4096+4096 + 4096*1000+1000",
            "1024*1000+1000",
            pa,
            pb,
            cmp.a,
            cmp.b,
            "params",
        ),
        _f(
            "MACs",
            "25088*4096 + 4096*4096 + 4096*1000",
            "1024*1000",
            25088 * 4096 + 4096 * 4096 + 4096 * 1000,
            1024 * 1000,
            cmp.a,
            cmp.b,
            "macs",
        ),
    ]
    cmp.notes.append(
        "fc6 alone: 25088*4096 + 4096 = 102,764,544 params (seed prints 102,760k without the bias)"
    )
    return cmp


def halve_double(channels: int = 64, size: int = 28, convention="lecture") -> Comparison:
    """Seed 001 (VGG): halving H and W while doubling C keeps the FLOPs, halves the memory."""
    c, h = channels, size
    a = nn.Conv2d(c, c, 3, padding=1, bias=False)
    b = nn.Conv2d(2 * c, 2 * c, 3, padding=1, bias=False)
    cmp = compare(
        a,
        b,
        (c, 2 * h, 2 * h),
        (2 * c, h, h),
        convention=convention,
        label_a="C x 2H x 2W",
        label_b="2C x H x W",
        title=f"VGG: halve H and W, double C (C={c}, H=W={h})",
    )
    cmp.formulas = [
        _f(
            "memory (elements)",
            "4HWC",
            "2HWC",
            4 * h * h * c,
            2 * h * h * c,
            cmp.a,
            cmp.b,
            "memory",
        ),
        _f("params", "9C^2", "36C^2", 9 * c * c, 36 * c * c, cmp.a, cmp.b, "params"),
        _f(
            "MACs",
            "36HWC^2",
            "36HWC^2",
            36 * h * h * c * c,
            36 * h * h * c * c,
            cmp.a,
            cmp.b,
            "macs",
        ),
    ]
    cmp.notes.append("memory = output elements (x4 bytes in fp32); conv without bias")
    return cmp


def one_by_one(channels: int = 192, size: int = 28, convention="lecture") -> Comparison:
    """Seed 001 (Network in Network): a 1x1 convolution is not "multiply by a number". On the
    seed's 6x6x32 image one 1x1x32 filter takes the dot product of each pixel's 32 channels
    (a fully connected layer at every pixel); 32 such filters shrink 28x28x192 to 28x28x32."""
    import torch

    c, h = channels, size
    one = nn.Sequential(nn.Conv2d(32, 1, 1, bias=False))
    reduce = nn.Sequential(nn.Conv2d(c, 32, 1, bias=False), nn.ReLU())
    cmp = compare(
        one,
        reduce,
        (32, 6, 6),
        (c, h, h),
        convention=convention,
        label_a="6x6x32 * 1x1x32",
        label_b=f"{h}x{h}x{c} -> {h}x{h}x32",
        title=f"1x1 convolutions: a per-pixel dot product (6x6x32) and a channel reduction "
        f"({h}x{h}x{c} -> {h}x{h}x32)",
    )
    cmp.formulas = [
        _f("params", "1*1*32", f"1*1*{c}*32", 32, c * 32, cmp.a, cmp.b, "params"),
        _f("MACs", "6*6 * 32", f"{h}*{h}*32 * {c}", 36 * 32, h * h * 32 * c, cmp.a, cmp.b, "macs"),
        _f(
            "output elements",
            "6*6*1",
            f"{h}*{h}*32",
            36,
            h * h * 32,
            cmp.a,
            cmp.b,
            "memory",
        ),
    ]
    # the claim behind the picture, measured on numbers: 1x1 conv == per-pixel matrix product
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 32, 6, 6, generator=g, device="cpu")  # real numbers, even under meta
    w = torch.randn(1, 32, 1, 1, generator=g, device="cpu")
    by_conv = torch.nn.functional.conv2d(x, w)
    by_dot = torch.einsum("nchw,c->nhw", x, w.flatten()).unsqueeze(1)
    err = float((by_conv - by_dot).abs().max())
    cmp.notes += [
        f"each output pixel = <32 channels of that pixel, the 1x1x32 filter>: conv2d vs an "
        f"explicit per-pixel dot product differ by {err:.1e} on random numbers (float32)",
        f"the reduction keeps H x W and cuts the channels {c} -> 32: the activations shrink "
        f"{h * h * c:,} -> {h * h * 32:,} elements, and a ReLU adds one more non-linearity",
        "on a 6x6x1 image a 1x1 filter is only a scale (seed 001's 'x 2'); with C channels it "
        "mixes them",
    ]
    return cmp


def bottleneck(channels: int = 192, size: int = 28, convention="lecture") -> Comparison:
    """Seed 001 (Inception): a 5x5 conv 192 -> 32 on 28x28 costs 120.4M MACs; a 1x1
    "bottleneck" to 16 channels first costs 12.4M, about a tenth (bias-free convs, 'same')."""
    c, h = channels, size
    direct = nn.Sequential(nn.Conv2d(c, 32, 5, padding=2, bias=False), nn.ReLU())
    reduced = nn.Sequential(
        nn.Conv2d(c, 16, 1, bias=False),
        nn.ReLU(),
        nn.Conv2d(16, 32, 5, padding=2, bias=False),
        nn.ReLU(),
    )
    cmp = compare(
        direct,
        reduced,
        (c, h, h),
        convention=convention,
        label_a="5x5 conv",
        label_b="1x1 to 16, then 5x5",
        title=f"bottleneck: 5x5 conv {c} -> 32 vs 1x1 {c} -> 16 then 5x5 16 -> 32 ({h}x{h})",
    )
    hw = h * h
    cmp.formulas = [
        _f(
            "params",
            f"5*5*{c}*32",
            f"{c}*16 + 5*5*16*32",
            25 * c * 32,
            c * 16 + 25 * 16 * 32,
            cmp.a,
            cmp.b,
            "params",
        ),
        _f(
            "MACs",
            f"{h}*{h}*32 * 5*5*{c}",
            f"{h}*{h}*16 * {c} + {h}*{h}*32 * 5*5*16",
            hw * 32 * 25 * c,
            hw * 16 * c + hw * 32 * 25 * 16,
            cmp.a,
            cmp.b,
            "macs",
        ),
        _f(
            "output elements",
            f"{h}*{h}*32",
            f"{h}*{h}*32",
            hw * 32,
            hw * 32,
            cmp.a,
            cmp.b,
            "memory",
        ),
    ]
    cmp.notes.append(
        "seed 001: 'the cost drops to about 1/10' (120.4M vs 12.4M MACs at 28x28x192): "
        f"here {cmp.a.totals['macs'] / 1e6:.1f}M vs {cmp.b.totals['macs'] / 1e6:.1f}M, "
        f"{cmp.a.totals['macs'] / cmp.b.totals['macs']:.1f}x fewer"
    )
    return cmp


class LocallyConnected2d(nn.Module):
    """A convolution without weight sharing: every output position has its own
    ``C_out x C_in x K x K`` filter (and bias), still looking at a K x K window (DeepFace's
    "locally connected" layer). Between a conv (one filter everywhere) and a dense layer (every
    input to every output)."""

    def __init__(self, cin, cout, kernel, out_size):
        import torch

        super().__init__()
        self.kernel, self.out_size = kernel, out_size
        n = out_size * out_size
        self.weight = nn.Parameter(torch.empty(n, cin * kernel * kernel, cout))
        self.bias = nn.Parameter(torch.empty(cout, out_size, out_size))

    def forward(self, x):
        import torch

        cols = nn.functional.unfold(x, self.kernel)  # [N, C*K*K, positions]
        y = torch.einsum("ncl,lco->nol", cols, self.weight)  # a different filter per position
        return y.reshape(len(x), -1, self.out_size, self.out_size) + self.bias


def conv_vs_fc(convention="lecture") -> Comparison:
    """Seed 001: 32x32x3 -> 28x28x6 by six 5x5x3 filters (456 parameters) or by a fully
    connected layer (3,072 x 4,704 + 4,704 = 14,455,392); a locally connected layer (local
    windows, no sharing) sits between. Seed 000: a dense layer must learn a pattern at every
    position; a shared filter answers to it anywhere."""
    import torch

    from cnnlab.analysis.resolve import skip_init

    conv = nn.Conv2d(3, 6, 5)
    with torch.device("meta"), skip_init():  # 14 M parameters we never need to fill
        fc = nn.Sequential(nn.Flatten(), nn.Linear(3072, 4704), nn.Unflatten(1, (6, 28, 28)))
        local = LocallyConnected2d(3, 6, 5, 28)
    cmp = compare(
        conv,
        fc,
        (3, 32, 32),
        convention=convention,
        label_a="conv 6 x 5x5x3",
        label_b="fully connected",
        title="weight sharing: 32x32x3 -> 28x28x6 by a conv vs a fully connected layer",
    )
    cmp.formulas = [
        _f("params", "5*5*3*6 + 6", "3072*4704 + 4704", 456, 14_455_392, cmp.a, cmp.b, "params"),
        _f("MACs", "28*28*6 * 5*5*3", "3072*4704", 352_800, 14_450_688, cmp.a, cmp.b, "macs"),
        _f("output elements", "28*28*6", "28*28*6", 4704, 4704, cmp.a, cmp.b, "memory"),
    ]
    mid = summary(local, (3, 32, 32), model_name="locally connected", convention=convention)
    lp, lm = mid.totals["params"], mid.totals["macs"]
    want_p, want_m = 28 * 28 * 6 * (5 * 5 * 3 + 1), 28 * 28 * 6 * 5 * 5 * 3
    cmp.middle = mid
    cmp.notes += [
        f"between them, a locally connected layer (5x5 windows, a separate filter at each of the "
        f"28*28 positions): params 28*28*6*(5*5*3 + 1) = {want_p:,} (measured {lp:,}"
        f"{', ok' if lp == want_p else ', MISMATCH'}), MACs {want_m:,} as the conv (measured "
        f"{lm:,}{', ok' if lm == want_m else ', MISMATCH'})",
        "sharing one filter over the 28*28 = 784 positions divides the locally connected count "
        "by 784; connecting every input instead of a 5x5x3 window multiplies it by "
        "(3072 + 1)/(75 + 1): 456 -> 357,504 -> 14,455,392",
        "seed 001: 5*5*3*6 + 6 = 456 against 3,072*4,704 + 4,704, 'about 14 million'",
    ]
    return cmp


BUILTINS = {
    "5x5-vs-3x3": five_vs_three,
    "7x7-vs-3x3": seven_vs_three,
    "inception": inception,
    "fc-vs-gap": fc_vs_gap,
    "halve-double": halve_double,
    "1x1": one_by_one,
    "bottleneck": bottleneck,
    "conv-vs-fc": conv_vs_fc,
}


def builtin(
    name: str, channels: int | None = None, size: int | None = None, convention: str = "lecture"
) -> Comparison:
    if name not in BUILTINS:
        raise ConfigError(
            f"unknown built-in comparison {name!r}",
            suggest(name, BUILTINS) or f"use one of: {', '.join(BUILTINS)}",
        )
    import inspect

    import torch

    for flag, v in (("--channels", channels), ("--size", size)):
        if v is not None and v < 1:
            raise ConfigError(f"{flag} must be at least 1, got {v}", f"e.g. {flag} 64")
    fn = BUILTINS[name]
    takes = inspect.signature(fn).parameters
    kw = {"convention": convention}
    for key, value in (("channels", channels), ("size", size)):
        if value is None:
            continue
        if key not in takes:
            raise ConfigError(
                f"the {name!r} comparison has the seed's fixed sizes; it takes no --{key}",
                f"drop --{key}; built-ins that take it: "
                + ", ".join(
                    n for n, f in BUILTINS.items() if key in inspect.signature(f).parameters
                ),
            )
        kw[key] = value
    with torch.device("meta"):  # only shapes are measured: no weights, whatever the sizes
        return fn(**kw)
