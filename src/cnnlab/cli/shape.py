"""``cnnlab shape``: one layer's arithmetic from flags, with the working shown step by step."""

from __future__ import annotations

from cnnlab._util import parse_size
from cnnlab.cli import shape_dense

DESCRIPTION = """\
Compute one row of the lectures' layer table (seed 001) for a single layer, and show the
working: output size N' = (N - K + 2P)/S + 1, activation memory, weights and bias, MACs
(multiply+add = 1, the lectures' "flop"), pooling FLOPs, receptive field and jump.

A size that does not come out whole is an error that shows the numbers and the fix; pass
--floor to floor it as PyTorch does (with a warning), or --ceil-mode for pooling.
"""

EPILOG = """\
examples:
  cnnlab shape --input 3x227x227 --filters 64 --kernel 11 --stride 4 --pad 2   # AlexNet conv1
  cnnlab shape --input 64x56x56 --type maxpool --kernel 3 --stride 2 --floor   # AlexNet pool1
  cnnlab shape --input 9216 --type fc --filters 4096                           # AlexNet fc6
  cnnlab shape --input 256x6x6 --type fc --out-features 4096 --format json
  cnnlab shape --input 64x28x28 --filters 64 --kernel 3 --pad same --dilation 2 --groups 4
  cnnlab shape --input 64x112x112 --type maxpool --kernel 3 --stride 2 --ceil-mode
  cnnlab shape --input 64x14x14 --type convtranspose --filters 32 --kernel 4 --stride 2 --pad 1
  cnnlab shape --input 192x13x13 --filters 384 --kernel 3 --pad 1 --rf-in 67 --jump-in 16
  cnnlab shape --type spp --bins 4,2,1 --input 256x13x13                       # SPPnet: 5,376
  cnnlab shape --type roipool --out 7x7 --input 512x38x50                      # Fast R-CNN
  cnnlab shape --type roipool --input 512x38x50 --roi 64,48,330,250 --stride 16
  cnnlab shape --type yolo --S 7 --B 2 --C 20                                  # 7x7x30
"""


def register(sub, formatter_class) -> None:
    p = sub.add_parser(
        "shape",
        help="one layer's output size, memory, params, MACs and receptive field, worked out",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument(
        "--input",
        metavar="CxHxW",
        help="input shape CxHxW like 3x227x227 (HxWxC like 227x227x3 is read with a note), "
        "or one number for fc (not for --type yolo)",
    )
    p.add_argument(
        "--type",
        default="conv",
        metavar="TYPE",
        help="conv (default), maxpool, avgpool, fc, convtranspose; spp, roipool, yolo",
    )
    p.add_argument(
        "--filters",
        "--out-features",
        dest="filters",
        type=int,
        metavar="N",
        help="output channels (conv, convtranspose) or output features (fc)",
    )
    p.add_argument("--kernel", metavar="K", help="kernel size K or KhxKw")
    p.add_argument(
        "--stride", metavar="S", help="stride S or SHxSW (default 1; pooling: the kernel size)"
    )
    p.add_argument(
        "--pad",
        "--padding",
        dest="pad",
        default="0",
        metavar="P",
        help="padding per side: N, NxM, 'same' or 'valid' (default 0)",
    )
    p.add_argument("--dilation", default="1", metavar="D", help="dilation (default 1)")
    p.add_argument("--groups", type=int, default=1, metavar="G", help="groups (default 1)")
    p.add_argument(
        "--output-padding",
        default="0",
        metavar="OP",
        help="extra output rows/cols of a transposed conv (default 0)",
    )
    p.add_argument(
        "--dtype",
        default="float32",
        help="activation dtype for memory: float32, float16, bfloat16, float64, int8, uint8, ...",
    )
    p.add_argument(
        "--ceil-mode", action="store_true", help="pooling: round the output size up (PyTorch rule)"
    )
    p.add_argument(
        "--floor",
        action="store_true",
        help="floor a non-integer output size as PyTorch does (warns) instead of failing",
    )
    p.add_argument("--no-bias", action="store_true", help="the layer has no bias")
    p.add_argument(
        "--rf-in",
        type=int,
        default=1,
        metavar="R",
        help="receptive field of the input units (default 1: the image)",
    )
    p.add_argument(
        "--jump-in",
        type=int,
        default=1,
        metavar="J",
        help="jump of the input: product of the earlier strides (default 1)",
    )
    p.add_argument("--name", default="", help="layer name shown in the table")
    p.add_argument("--format", default="text", choices=["text", "json", "markdown"])
    shape_dense.add_shape_flags(p)
    p.set_defaults(func=run)
    shape_dense.register_anchors(sub, formatter_class)


# ----------------------------------------------------------------------------- parsing


def parse_pad(text: str):
    if text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    from cnnlab.errors import ConfigError

    try:
        return parse_size(text, "--pad", minimum=0)
    except ConfigError:
        raise ConfigError(
            f"malformed --pad {text!r}", "expected N, NxM (pixels per side), 'same' or 'valid'"
        ) from None


# ----------------------------------------------------------------------------- output


def _hw(shape) -> str:
    return str(shape[1]) if shape[1] == shape[2] else f"{shape[1]}x{shape[2]}"


def _dims(pair) -> str:
    if pair is None:
        return ""
    text = [f"{p[0]}+{p[1]}" if isinstance(p, tuple) else str(p) for p in pair]
    return text[0] if text[0] == text[1] else "x".join(text)


def table_cells(row) -> dict[str, str]:
    """The seed-001 columns for one row (rounded as the lecture rounds; exact in the working)."""
    from cnnlab.arithmetic.layer import kb

    spatial_in = len(row.input_shape) == 3
    spatial_out = len(row.output_shape) == 3
    return {
        "layer": row.name,
        "C in": str(row.input_shape[0]) if spatial_in else f"{row.input_shape[0]:,}",
        "H/W in": _hw(row.input_shape) if spatial_in else "",
        "filters": f"{row.filters:,}" if row.filters is not None else "",
        "kernel": _dims(row.kernel),
        "stride": _dims(row.stride),
        "pad": _dims(row.padding),
        "C out": f"{row.output_shape[0]:,}",
        "H/W out": _hw(row.output_shape) if spatial_out else "",
        "memory (KB)": kb(row.activation_bytes),
        "params (k)": f"{row.params / 1000:,.0f}"
        if row.params >= 1000
        else f"{row.params / 1000:g}",
        "flop (M)": f"{row.flops / 1e6:,.0f}" if row.flops >= 1e6 else f"{row.flops / 1e6:.2g}",
        "RF (jump)": f"{_dims(row.receptive_field)} ({_dims(row.jump)})"
        if row.receptive_field
        else "",
    }


def to_markdown(row) -> str:
    cells = table_cells(row)
    lines = [
        "| " + " | ".join(cells) + " |",
        "|" + "|".join("---" for _ in cells) + "|",
        "| " + " | ".join(cells.values()) + " |",
        "",
        "Working:",
        "",
    ]
    lines += [f"    {line}" for line in row.working]
    lines += [""] + [f"*{note}*" for note in row.notes]
    return "\n".join(lines)


def print_text(row, console) -> None:
    """A key/value table (fits any terminal), then the working line by line."""
    from rich.table import Table

    cells = table_cells(row)
    title = (
        f"{row.name}: {'x'.join(map(str, row.input_shape))} -> "
        f"{'x'.join(map(str, row.output_shape))}"
    )
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold cyan")
    table.add_column(justify="right")
    table.add_column(style="dim")
    kind = row.type
    table.add_row("input", "x".join(map(str, row.input_shape)), "C x H x W" if kind != "fc" else "")
    if row.filters is not None:
        table.add_row("filters" if kind != "fc" else "out features", f"{row.filters:,}", "")
    for key in ("kernel", "stride", "pad"):
        if cells[key]:
            table.add_row(key, cells[key], "")
    if row.dilation and row.dilation != (1, 1):
        table.add_row("dilation", _dims(row.dilation), "")
    if row.groups != 1:
        table.add_row("groups", str(row.groups), "")
    table.add_row(
        "output", "x".join(map(str, row.output_shape)), "C x H x W" if kind != "fc" else ""
    )
    table.add_row(
        "memory", f"{cells['memory (KB)']} KB", f"{row.activation_bytes:,} B, {row.dtype}"
    )
    if row.params:
        table.add_row("weights", f"{row.weights:,}", "")
        table.add_row("bias", f"{row.bias:,}", "")
        table.add_row("params", f"{row.params:,}", f"{cells['params (k)']} k")
    else:
        table.add_row("params", "0", "")
    if kind in ("maxpool", "avgpool"):
        table.add_row("FLOPs", f"{row.flops:,}", f"{cells['flop (M)']} M (out elements * K*K)")
    else:
        table.add_row("MACs", f"{row.macs:,}", f"{cells['flop (M)']} M (multiply+add = 1)")
    if row.receptive_field:
        table.add_row("receptive field", _dims(row.receptive_field), f"jump {_dims(row.jump)}")
    console.print(table)
    console.print()
    console.print("[bold]working[/]")
    for line in row.working:
        console.print("  " + line, markup=False, highlight=False, soft_wrap=True)
    for note in row.notes:
        console.print(f"[dim]note: {note}[/]", soft_wrap=True)


def run(args) -> int:
    import json
    import warnings

    from rich.console import Console

    from cnnlab._util import parse_input
    from cnnlab.arithmetic import FlooredSizeWarning, LayerSpec, compute_layer
    from cnnlab.errors import ConfigError

    kind = shape_dense.DENSE_TYPES.get(args.type.strip().lower())
    if kind is not None:
        shape_dense.show(shape_dense.compute(args, kind), args.format, kind)
        return 0
    shape_dense.check_flags(args, None)
    if args.input is None:
        raise ConfigError(
            f"--type {args.type} needs --input",
            "give the input as CxHxW like 3x227x227, or one number for fc",
        )

    input_notes = []  # how an ambiguous --input was read: in the output, JSON included
    spec = LayerSpec(
        type=args.type,
        input_shape=parse_input(args.input, flat=True, on_note=input_notes.append),
        filters=args.filters,
        kernel=parse_size(args.kernel, "--kernel"),
        stride=parse_size(args.stride, "--stride"),
        padding=parse_pad(args.pad),
        dilation=parse_size(args.dilation, "--dilation"),
        groups=args.groups,
        output_padding=parse_size(args.output_padding, "--output-padding", minimum=0),
        bias=not args.no_bias,
        ceil_mode=args.ceil_mode,
        dtype=args.dtype,
        name=args.name,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FlooredSizeWarning)
        row = compute_layer(spec, strict=not args.floor, rf=args.rf_in, jump=args.jump_in)
    row.notes[:0] = input_notes
    err = Console(emoji=False, stderr=True)
    seen = set()
    for w in caught:
        if issubclass(w.category, FlooredSizeWarning) and str(w.message) not in seen:
            seen.add(str(w.message))
            err.print(f"[yellow]warning:[/] {w.message}", highlight=False, soft_wrap=True)
    if args.format == "json":
        print(json.dumps(row.to_dict(), indent=2))
    elif args.format == "markdown":
        print(to_markdown(row))
    else:
        print_text(row, Console(emoji=False))
    return 0
