"""``cnnlab shape --type spp|roipool|yolo`` and ``cnnlab anchors``: seed 004's detection arithmetic.

Registered by :mod:`cnnlab.cli.shape` (same command, same output forms: text, json, markdown);
the numbers and the working come from :mod:`cnnlab.arithmetic.dense`.
"""

from __future__ import annotations

DENSE_TYPES = {
    "spp": "spp",
    "spatial-pyramid-pooling": "spp",
    "roipool": "roipool",
    "roi-pool": "roipool",
    "roi_pool": "roipool",
    "yolo": "yolo",
    "yolov1": "yolo",
}

# flags of `cnnlab shape` that only a conv/pool/fc layer reads, with their defaults
_LAYER_FLAGS = {
    "filters": None,
    "kernel": None,
    "pad": "0",
    "dilation": "1",
    "groups": 1,
    "output_padding": "0",
    "ceil_mode": False,
    "floor": False,
    "no_bias": False,
    "dtype": "float32",
    "rf_in": 1,
    "jump_in": 1,
    "name": "",
}
# flags only the dense types read, and which types read them
_DENSE_FLAGS = {
    "bins": ("spp",),
    "out": ("roipool",),
    "roi": ("roipool",),
    "S": ("yolo",),
    "B": ("yolo",),
    "C": ("yolo",),
}

ANCHORS_DESCRIPTION = """\
Faster R-CNN's anchors as seed 004 describes them: every feature-map position gets
len(sizes) x len(ratios) anchor boxes (3 x 3 = 9), each of area size^2 with ratio = height /
width. Shows each anchor's width and height (exact, and as torchvision rounds the corners), the
anchors per position A, the RPN heads' 2A objectness and 4A box-offset channels (18 and 36),
and with --feature the number of anchors over the map (38 x 50 x 9 = 17,100).
"""

ANCHORS_EPILOG = """\
examples:
  cnnlab anchors --sizes 128,256,512 --ratios 0.5,1,2 --feature 38x50 --stride 16
  cnnlab anchors --format json
  cnnlab anchors --sizes 32,64 --ratios 1 --feature 12x12 --stride 8
"""


def add_shape_flags(p) -> None:
    """The dense types' flags on the `cnnlab shape` parser."""
    g = p.add_argument_group("detection layers (seed 004)")
    g.add_argument(
        "--bins", metavar="N,N,..", help="spp: pyramid levels, e.g. 4,2,1 (n or HxW each)"
    )
    g.add_argument("--out", metavar="HxW", help="roipool: output grid per RoI, e.g. 7x7")
    g.add_argument(
        "--roi",
        metavar="X1,Y1,X2,Y2",
        help="roipool: one RoI in image pixels; --stride is the feature stride (e.g. 16)",
    )
    g.add_argument("--S", type=int, metavar="S", help="yolo: grid size S (default 7)")
    g.add_argument("--B", type=int, metavar="B", help="yolo: boxes per cell B (default 2)")
    g.add_argument("--C", type=int, metavar="C", help="yolo: classes C (default 20)")


def register_anchors(sub, formatter_class) -> None:
    p = sub.add_parser(
        "anchors",
        help="Faster R-CNN anchors: sizes x ratios, counts and the RPN heads' channels, worked out",
        description=ANCHORS_DESCRIPTION,
        epilog=ANCHORS_EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("--sizes", default="128,256,512", help="anchor sizes (sqrt of the area)")
    p.add_argument("--ratios", default="0.5,1,2", help="aspect ratios, height / width")
    p.add_argument("--feature", metavar="HxW", help="feature map size, e.g. 38x50")
    p.add_argument("--stride", default="16", help="feature stride in pixels (default 16)")
    p.add_argument(
        "--channels",
        type=int,
        default=512,
        help="channels of the RPN's 3x3 intermediate layer (default 512, VGG-16)",
    )
    p.add_argument("--format", default="text", choices=["text", "json", "markdown"])
    p.set_defaults(func=run_anchors)


# ----------------------------------------------------------------------------- parsing


def _numbers(text: str, flag: str, cast=float, *, zero=False, form="like 1,2,3") -> list:
    """Comma-separated finite numbers, each > 0 (>= 0 with ``zero``: a pixel coordinate)."""
    import math

    from cnnlab.errors import ConfigError

    items = [t.strip() for t in str(text).split(",")]
    try:
        values = [cast(t) for t in items]
    except ValueError:
        values = None
    if not values or any(not math.isfinite(v) or v < 0 or (v == 0 and not zero) for v in values):
        kind = "whole numbers" if cast is int else "numbers"
        sign = "0 or more" if zero else "positive"
        raise ConfigError(f"malformed {flag} {text!r}", f"expected {sign} {kind} {form}")
    return values


def _bins(text: str) -> list:
    from cnnlab._util import parse_size
    from cnnlab.errors import ConfigError

    try:
        return [parse_size(t, "--bins") for t in str(text).split(",")]
    except ConfigError:
        raise ConfigError(
            f"malformed --bins {text!r}", "expected levels like 4,2,1 or 4x4,2x2,1x1"
        ) from None


def check_flags(args, kind: str | None) -> None:
    """Refuse flags that the chosen --type would silently ignore."""
    from cnnlab.errors import ConfigError

    if kind is None:
        extra = [f for f in _DENSE_FLAGS if getattr(args, f, None) is not None]
        if extra:
            flag = "--" + extra[0]
            types = "/".join(_DENSE_FLAGS[extra[0]])
            raise ConfigError(
                f"{flag} applies to --type {types}, not --type {args.type}",
                f"add --type {types}, or drop {flag}",
            )
        return
    own = ", ".join("--" + f for f, types in _DENSE_FLAGS.items() if kind in types)
    for name, default in _LAYER_FLAGS.items():
        if getattr(args, name, default) != default:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(
                f"{flag} does not apply to --type {kind}", f"drop {flag}; {kind} takes {own}"
            )
    for name, types in _DENSE_FLAGS.items():
        if getattr(args, name, None) is not None and kind not in types:
            raise ConfigError(
                f"--{name} does not apply to --type {kind}", f"--{name} is for --type {types[0]}"
            )
    if args.stride is not None and kind != "roipool":
        raise ConfigError(
            f"--stride does not apply to --type {kind}", "--stride is the RoI's feature stride"
        )
    if kind == "roipool" and args.stride is not None and args.roi is None:
        raise ConfigError("--stride with --type roipool needs --roi", "add --roi X1,Y1,X2,Y2")


def compute(args, kind: str):
    """The arithmetic record of one `cnnlab shape --type spp|roipool|yolo` call."""
    from cnnlab._util import parse_input, parse_size
    from cnnlab.arithmetic.dense import roi_pool_output, spp_output, yolo_output
    from cnnlab.cli import cli_note
    from cnnlab.errors import ConfigError

    check_flags(args, kind)
    if kind == "yolo":
        if args.input is not None:
            raise ConfigError(
                "--input does not apply to --type yolo", "give the grid with --S, --B and --C"
            )
        return yolo_output(
            7 if args.S is None else args.S,
            2 if args.B is None else args.B,
            20 if args.C is None else args.C,
        )
    if args.input is None:
        raise ConfigError(f"--type {kind} needs --input CxHxW", "e.g. --input 256x13x13")
    shape = parse_input(args.input, flat=True, on_note=cli_note)
    if len(shape) != 3:
        raise ConfigError(
            f"--type {kind} needs a feature map CxHxW, got --input {args.input!r}",
            "e.g. --input 256x13x13",
        )
    if kind == "spp":
        return spp_output(shape, _bins(args.bins) if args.bins else (4, 2, 1))
    out = parse_size(args.out, "--out") if args.out else (7, 7)
    form = "X1,Y1,X2,Y2 in image pixels"
    roi = _numbers(args.roi, "--roi", zero=True, form=form) if args.roi is not None else None
    if roi is not None and len(roi) != 4:
        raise ConfigError(f"malformed --roi {args.roi!r}", "expected X1,Y1,X2,Y2 in image pixels")
    stride = parse_size(args.stride, "--stride") if args.stride is not None else 1
    if isinstance(stride, tuple):
        raise ConfigError("--stride for roipool is one number", "e.g. --stride 16")
    return roi_pool_output(shape, out, roi=roi, stride=stride)


# ----------------------------------------------------------------------------- output


def _x(shape) -> str:
    return "x".join(map(str, shape))


def _cells(row) -> list[tuple[str, str, str]]:
    """(key, value, note) rows of the summary table for one record."""
    from cnnlab.arithmetic.dense import AnchorRow, RoiPoolRow, SppRow

    if isinstance(row, SppRow):
        levels = ", ".join(f"{h}x{w}" for h, w in row.bins)
        sums = " + ".join(str(h * w) for h, w in row.bins)
        return [
            ("input", _x(row.input_shape), "C x H x W"),
            ("bins", levels, "pyramid levels"),
            ("output", f"{row.features:,}", f"({sums}) x {row.input_shape[0]}, any H x W"),
            ("params", "0", ""),
        ]
    if isinstance(row, RoiPoolRow):
        cells = [
            ("input", _x(row.input_shape), "C x H x W"),
            ("out", _x(row.out), "bins per RoI"),
            ("output per RoI", _x(row.output_shape), f"{row.features:,} features"),
            ("params", "0", ""),
        ]
        if row.roi is not None:
            cells.append(("RoI", ", ".join(f"{v:g}" for v in row.roi), f"stride {row.stride}"))
        return cells
    if isinstance(row, AnchorRow):
        cells = [
            ("sizes", ", ".join(f"{s:g}" for s in row.sizes), "sqrt of the area"),
            ("ratios", ", ".join(f"{r:g}" for r in row.ratios), "height / width"),
            ("anchors per position", str(row.per_position), "A"),
            ("RPN objectness", str(row.rpn_cls_channels), "channels, 2A"),
            ("RPN box offsets", str(row.rpn_reg_channels), "channels, 4A"),
        ]
        if row.feature is not None:
            cells += [
                ("feature", _x(row.feature), f"stride {row.stride}"),
                ("anchors", f"{row.total:,}", "H x W x A"),
            ]
        return cells
    return [
        ("grid", f"{row.S}x{row.S}", "S x S"),
        ("boxes per cell", str(row.B), "B, 5 numbers each"),
        ("classes", str(row.C), "C"),
        ("per cell", str(row.per_cell), "B*5 + C"),
        ("output", _x(row.output_shape), f"{row.outputs:,} numbers"),
    ]


def _title(row) -> str:
    from cnnlab.arithmetic.dense import AnchorRow, RoiPoolRow, SppRow

    if isinstance(row, SppRow):
        return f"spp: {_x(row.input_shape)} -> {row.features:,}"
    if isinstance(row, RoiPoolRow):
        return f"roipool: {_x(row.input_shape)} -> {_x(row.output_shape)} per RoI"
    if isinstance(row, AnchorRow):
        total = f", {row.total:,} over {_x(row.feature)}" if row.feature else ""
        return f"anchors: {row.per_position} per position{total}"
    return f"yolo: {_x(row.output_shape)}"


def show(row, fmt: str, kind: str) -> None:
    import json

    if fmt == "json":
        print(json.dumps({"type": kind, **row.to_dict()}, indent=2))
        return
    cells = _cells(row)
    if fmt == "markdown":
        lines = [f"**{_title(row)}**", "", "| | value | |", "|---|---|---|"]
        lines += [f"| {k} | {v} | {n} |" for k, v, n in cells]
        lines += ["", "Working:", ""] + [f"    {w}" for w in row.working]
        lines += [""] + [f"*{note}*" for note in row.notes]
        print("\n".join(lines))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(emoji=False)
    table = Table(title=_title(row), title_justify="left", show_header=False, box=None)
    table.add_column(style="bold cyan")
    table.add_column(justify="right")
    table.add_column(style="dim")
    for key, value, note in cells:
        table.add_row(key, value, note)
    console.print(table)
    console.print()
    console.print("[bold]working[/]")
    for line in row.working:
        console.print("  " + line, markup=False, highlight=False, soft_wrap=True)
    for note in row.notes:
        console.print("note: " + note, style="dim", markup=False, highlight=False, soft_wrap=True)


def run_anchors(args) -> int:
    from cnnlab._util import parse_size
    from cnnlab.arithmetic.dense import anchor_boxes
    from cnnlab.errors import ConfigError

    stride = parse_size(args.stride, "--stride")
    if isinstance(stride, tuple):
        raise ConfigError("--stride for anchors is one number", "e.g. --stride 16")
    row = anchor_boxes(
        _numbers(args.sizes, "--sizes"),
        _numbers(args.ratios, "--ratios"),
        feature=parse_size(args.feature, "--feature") if args.feature else None,
        stride=stride,
        channels=args.channels,
    )
    show(row, args.format, "anchors")
    return 0
