"""``cnnlab summary`` and ``cnnlab compare``: the per-layer table and design comparisons."""

from __future__ import annotations

import sys

CONVENTIONS = ("lecture", "pytorch", "fvcore", "ptflops", "thop", "torchinfo")
MODES = ("eval", "train")
FORMATS = ("table", "markdown", "csv", "json", "latex", "html")

SUMMARY_EPILOG = """examples:
  cnnlab summary alexnet --input 3x227x227            seed 001's AlexNet table
  cnnlab summary resnet50 --format markdown -o r50.md
  cnnlab summary torchvision:googlenet --convention fvcore
  cnnlab summary vgg16 --dtype float16 --batch-size 32
  cnnlab summary mypkg.nets:build_model --input 1x28x28
  cnnlab summary path/to/net.py:Net --format json
  cnnlab summary resnet18 --convention fvcore --mode train   batch norm on batch statistics

MODEL is a cnnlab zoo name (cnnlab models), a torchvision constructor name
(torchvision:NAME forces torchvision), or package.module:factory / file.py:factory.
Conventions: lecture (multiply-add = 1, the seeds' unit), pytorch (flop_counter),
fvcore, ptflops, thop, torchinfo: see docs/summary.md for each rule."""

COMPARE_EPILOG = """examples:
  cnnlab compare 5x5-vs-3x3 --channels 64 --size 56      seed 001: 25C^2 vs 18C^2
  cnnlab compare --builtin 7x7-vs-3x3                    seed 002: 49 vs 27 weights
  cnnlab compare --builtin inception                     seed 000: naive vs 1x1-reduced
  cnnlab compare --builtin fc-vs-gap                     VGG-16 head vs global avg pooling
  cnnlab compare --builtin halve-double                  memory 4HWC -> 2HWC, FLOPs equal
  cnnlab compare 1x1                                     seed 001: 6x6x32 * 1x1x32; 192 -> 32
  cnnlab compare bottleneck                              seed 001: 120.4M vs 12.4M MACs
  cnnlab compare conv-vs-fc                              seed 001: 456 vs 14,455,392 params
  cnnlab compare resnet18 resnet34 --input 3x224x224
  cnnlab compare "conv(64,5,p=2)" "conv(64,3,p=1),conv(64,3,p=1)" --input 64x56x56

Built-ins: 5x5-vs-3x3, 7x7-vs-3x3, inception, fc-vs-gap, halve-double, 1x1, bottleneck,
conv-vs-fc (--channels/--size where the comparison takes them)."""


def register(sub, formatter_class) -> None:
    p = sub.add_parser(
        "summary",
        help="per-layer table of a model: shapes, memory, params, MACs, FLOPs, receptive field",
        description="Trace a model on meta tensors (no memory used) and print the lectures' "
        "per-layer table: input and output C x H x W, kernel/stride/pad, activation memory, "
        "weights and bias, MACs, FLOPs and the receptive field, with totals.",
        epilog=SUMMARY_EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("model", metavar="MODEL", help="zoo name, torchvision name or module:factory")
    p.add_argument("--input", "-i", metavar="CxHxW", help="input size (default: the model's)")
    _common(p)
    p.add_argument(
        "--compact",
        action="store_true",
        help="the 80-column table: layer, type, output, K/S/P, params, MACs, RF (chosen by "
        "itself on a terminal too narrow for the full one)",
    )
    p.add_argument(
        "--batch-size",
        "-b",
        type=int,
        default=1,
        metavar="N",
        help="batch size (scales memory, MACs, FLOPs; default 1)",
    )
    p.add_argument(
        "--mode",
        default="eval",
        metavar="{eval,train}",
        help="run the model in eval (default; thop, ptflops, torchinfo do) or train mode "
        "(batch norm on batch statistics: what fvcore and flop_counter count for a model left "
        "in training mode)",
    )
    p.set_defaults(func=run_summary)

    c = sub.add_parser(
        "compare",
        help="two models or layer specs side by side, or a lecture comparison built in",
        description="Compare two designs: totals side by side and a per-layer diff, or one "
        "of the lectures' comparisons with its formula checked against the measurement.",
        epilog=COMPARE_EPILOG,
        formatter_class=formatter_class,
    )
    c.add_argument("a", nargs="?", metavar="A", help="model, layer spec, or built-in name")
    c.add_argument("b", nargs="?", metavar="B", help="model or layer spec")
    c.add_argument("--builtin", metavar="NAME", help="a built-in comparison (see below)")
    c.add_argument("--input", "-i", metavar="CxHxW", help="input size for A (and B)")
    c.add_argument("--input-b", metavar="CxHxW", help="input size for B if different")
    c.add_argument("--channels", "-C", type=int, metavar="C", help="channels (built-ins)")
    c.add_argument("--size", "-H", type=int, metavar="H", help="height = width (built-ins)")
    _common(c, formats=("table", "markdown", "json"))
    c.set_defaults(func=run_compare)


def _common(p, formats=FORMATS) -> None:
    p.add_argument(
        "--convention",
        "-c",
        default="lecture",
        choices=CONVENTIONS,
        help="counting rules (default: lecture)",
    )
    p.add_argument("--format", "-f", default="table", choices=formats, help="output format")
    p.add_argument("--dtype", default="float32", help="dtype for memory (default float32)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")


def _emit(text: str, output: str | None) -> None:
    if output:
        from cnnlab._util import atomic_write
        from cnnlab.errors import ConfigError

        try:
            atomic_write(output, text)
        except OSError as e:
            said = str(e.strerror)  # atomic_write's own message names the path already
            raise ConfigError(
                said if said.startswith("cannot write") else f"cannot write {output!r}: {said}",
                "choose a writable --output path",
            ) from None
    else:
        sys.stdout.write(text)


def run_summary(args) -> int:
    from cnnlab._util import parse_input
    from cnnlab.analysis import summary
    from cnnlab.analysis.resolve import load_model
    from cnnlab.cli import cli_note
    from cnnlab.errors import ConfigError, suggest

    dims = (
        parse_input(args.input, on_note=cli_note) if args.input else None
    )  # bad --input fails before loading
    if args.batch_size < 1:
        raise ConfigError(
            f"--batch-size must be at least 1, got {args.batch_size}", "e.g. --batch-size 1"
        )
    if args.mode not in MODES:  # checked here, before a model is built
        hint = suggest(args.mode, MODES) or "use --mode eval or --mode train"
        raise ConfigError(f"unknown --mode {args.mode!r}", hint)
    model, default, name = load_model(args.model)
    s = summary(
        model,
        dims or default or (3, 224, 224),
        convention=args.convention,
        dtype=args.dtype,
        batch_size=args.batch_size,
        model_name=name,
        mode=args.mode,
    )
    s.notes.extend(_errata_notes(s))
    if args.compact and args.format != "table":
        raise ConfigError(f"--compact is a form of the table, not of --format {args.format}")
    if args.format == "table" and not args.output:
        s.print(compact=True if args.compact else None)
    else:
        _emit(s.render("compact" if args.compact else args.format), args.output)
    return 0


def _errata_notes(s, label: str = "") -> list[str]:
    """Footnotes for rows whose value a lecture note prints wrong (the notes' unit: one
    image, float32, multiply-add = 1)."""
    if s.batch_size != 1 or s.convention != "lecture" or str(s.dtype) != "torch.float32":
        return []
    from cnnlab.teaching.errata import footnotes

    return footnotes(s.layers, label)


def _side(text, dims):
    from cnnlab.analysis.compare import is_spec, parse_spec
    from cnnlab.analysis.resolve import load_model
    from cnnlab.errors import ConfigError

    if is_spec(text):
        if dims is None:
            raise ConfigError(
                f"layer spec {text!r} needs an input size",
                "add --input CxHxW, e.g. --input 64x56x56",
            )
        return parse_spec(text, dims[0], dims), dims, text
    model, default, name = load_model(text)
    return model, dims or default or (3, 224, 224), name


def run_compare(args) -> int:
    from cnnlab._util import parse_input
    from cnnlab.analysis.compare import BUILTINS, builtin, compare
    from cnnlab.cli import cli_note
    from cnnlab.errors import ConfigError, suggest

    name = args.builtin or (args.a if args.a in BUILTINS and args.b is None else None)
    if args.a and args.b is None and not name:  # one name that is no built-in (and no pair)
        raise ConfigError(
            f"unknown built-in comparison {args.a!r} (compare needs two models or layer specs, "
            "or a built-in)",
            suggest(args.a, BUILTINS)
            or f"built-ins: {', '.join(BUILTINS)}; or give two models, e.g. "
            "cnnlab compare resnet18 resnet34",
        )
    if name:
        extra = [m for m in (args.a, args.b) if m and m != name]
        if args.builtin and extra:  # a built-in compares its own two models: extra ones unused
            raise ConfigError(
                f"--builtin {name} compares its own pair; {', '.join(map(repr, extra))} would "
                "be ignored",
                f"run `cnnlab compare --builtin {name}` alone, or compare two models: "
                f"cnnlab compare {extra[0]} OTHER",
            )
        cmp = builtin(name, args.channels, args.size, convention=args.convention)
    else:
        if not args.a or not args.b:
            raise ConfigError(
                "compare needs two models or layer specs, or a built-in",
                f"e.g. cnnlab compare resnet18 resnet34, or one of: {', '.join(BUILTINS)}",
            )
        dims = parse_input(args.input, on_note=cli_note) if args.input else None
        dims_b = (
            parse_input(args.input_b, flag="--input-b", on_note=cli_note) if args.input_b else dims
        )
        ma, ia, la = _side(args.a, dims)
        mb, ib, lb = _side(args.b, dims_b)
        cmp = compare(
            ma, mb, ia, ib, convention=args.convention, label_a=la, label_b=lb, dtype=args.dtype
        )
    cmp.notes.extend(_errata_notes(cmp.a, "A: ") + _errata_notes(cmp.b, "B: "))
    if args.format == "table" and not args.output:
        cmp.print()
    elif args.format == "table":
        from io import StringIO

        from rich.console import Console

        buf = StringIO()
        cmp.print(Console(emoji=False, file=buf, width=160, color_system=None))
        _emit(buf.getvalue(), args.output)
    else:
        _emit(cmp.to_json() + "\n" if args.format == "json" else cmp.to_markdown(), args.output)
    return 0
