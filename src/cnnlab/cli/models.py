"""``cnnlab models``: the zoo table, or one model's details."""

from __future__ import annotations

DESCRIPTION = """\
List every model of the zoo with its paper, default input, parameters and MACs (multiply-adds,
the lectures' "flop") at that input, or show one model's details: its paper, its options and
the documented deviations from the paper.

Params and MACs are measured on the meta device (no memory, no weights). The measurements ship
with cnnlab (the cache filled at install), keyed by each model's source; a model whose source
changed is measured again and cached in $CNNLAB_CACHE/zoo-table.json (default ~/.cache/cnnlab).
A params count marked * includes auxiliary classifier heads that run only in training
(GoogLeNet's); the note under the table gives the count without them.
"""

EPILOG = """\
examples:
  cnnlab models                          # every model
  cnnlab models --family VGG             # one family (LeNet, AlexNet, ZFNet, VGG, NIN, ...)
  cnnlab models --variant cifar          # the 32x32 forms
  cnnlab models --format markdown        # also csv, json
  cnnlab models --no-macs                # params only, no trace
  cnnlab models vgg16_c                  # one model: paper, options, deviations
  cnnlab summary vgg16_c                 # its per-layer table
  cnnlab models --chart ilsvrc -o chart.png   # top-5 error by year, depth and params
"""

FORMATS = ("table", "markdown", "csv", "json")
COLUMNS = ("name", "family", "paper", "year", "variant", "input", "classes", "params", "macs")
TABLE_COLUMNS = ("name", "family", "paper", "variant", "input", "classes", "params", "macs")
CSV_COLUMNS = (*COLUMNS, "params_no_aux")  # machine formats also carry the count without aux


def register(sub, formatter_class) -> None:
    p = sub.add_parser(
        "models",
        help="the model zoo: names, papers, inputs, params and MACs; or one model's details",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("name", nargs="?", help="show this model's details instead of the table")
    p.add_argument("--family", help="only this family (case-insensitive)")
    p.add_argument("--variant", help="only imagenet, cifar, mnist or digits forms")
    p.add_argument("--format", default="table", choices=FORMATS, help="output format")
    p.add_argument("--no-macs", action="store_true", help="skip the MAC count (faster)")
    p.add_argument("--no-cache", action="store_true", help="re-measure instead of the cache")
    p.add_argument(
        "--chart",
        metavar="NAME",
        help="draw a chart instead of the table: ilsvrc (top-5 error by year and entry, cited, "
        "with depth and params measured from the zoo)",
    )
    p.add_argument("-o", "--output", metavar="PNG", help="where --chart writes (NAME.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console

    console = Console(emoji=False, soft_wrap=args.format != "table")
    if not console.is_terminal:  # piped or captured: don't squeeze the table into 80 columns
        console.width = max(console.width, 150)
    if args.chart:
        return _chart(args, console)
    if args.output:
        from cnnlab.errors import ConfigError

        raise ConfigError("-o/--output is where --chart writes", "add --chart ilsvrc")
    if args.name:
        return _details(args, console)
    import difflib

    from cnnlab.errors import ConfigError
    from cnnlab.models import list_models
    from cnnlab.models.registry import VARIANTS, families, get_info, registration_order

    names = list_models()
    if args.family:
        fams = {f.lower(): f for f in families()}
        if args.family.lower() not in fams:
            close = difflib.get_close_matches(args.family.lower(), list(fams), n=3, cutoff=0.5)
            hint = (f"did you mean: {', '.join(fams[c] for c in close)}?" if close
                    else f"families: {', '.join(families())}")  # fmt: skip
            raise ConfigError(f"unknown family {args.family!r}", hint)
        names = [n for n in names if get_info(n).family == fams[args.family.lower()]]
    if args.variant:
        if args.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {args.variant!r}", f"use one of {VARIANTS}")
        names = [n for n in names if get_info(n).variant == args.variant]
    order = {n: i for i, n in enumerate(registration_order())}
    names.sort(key=lambda n: (_family_order(get_info(n).family), order[n]))

    rows = _measure(names, args, console)
    if args.format == "json":
        import json

        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        import csv
        import sys

        w = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    elif args.format == "markdown":
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "|".join("---:" if c in ("params", "macs") else "---" for c in COLUMNS) + "|")
        for r in rows:
            print("| " + " | ".join(_cell(c, r[c], r) for c in COLUMNS) + " |")
        for note in _aux_notes(rows):
            print(f"\n{note}")
    else:
        from rich.table import Table

        t = Table(title=f"cnnlab model zoo ({len(rows)} models)", title_justify="left")
        for c in TABLE_COLUMNS:  # the paper column carries the year
            right = c in ("params", "macs", "classes")
            t.add_column(c, justify="right" if right else "left", no_wrap=c != "paper")
        for r in rows:
            t.add_row(*(_cell(c, r[c], r) for c in TABLE_COLUMNS))
        console.print(t)
        for note in _aux_notes(rows):
            console.print(note, highlight=False, soft_wrap=True)
    return 0


def _family_order(family: str) -> int:
    from cnnlab.models.registry import families

    order = families()
    return order.index(family) if family in order else len(order)


def _measure(names, args, console):
    from cnnlab.analysis.zoo import zoo_table

    if args.no_macs or args.format != "table":
        return zoo_table(names, macs=not args.no_macs, cache=not args.no_cache)
    with console.status("measuring models on the meta device...") as status:
        return zoo_table(
            names,
            cache=not args.no_cache,
            progress=lambda n: status.update(f"measuring {n} on the meta device..."),
        )


def _cell(column: str, value, row=None) -> str:
    if value is None:
        return "-"
    if column == "params":
        aux = row is not None and row.get("params_no_aux") is not None
        return f"{value:,}" + ("*" if aux else "")
    if column == "macs":
        from cnnlab._util import fmt_count

        return fmt_count(value)
    return str(value)


def _aux_notes(rows) -> list[str]:
    """The footnote of the params marked * (models whose default build has auxiliary heads)."""
    aux = [r for r in rows if r.get("params_no_aux") is not None]
    if not aux:
        return []
    counts = ", ".join(f"{r['name']} {r['params']:,} with, {r['params_no_aux']:,} without"
                       for r in aux)  # fmt: skip
    return [
        "* includes the auxiliary classifier heads, which run only in training and are "
        f"dropped at test time (aux_logits=False): {counts}"
    ]


def _plain(doc: str) -> str:
    """A docstring's reST markup as plain text for the terminal: ``code`` -> code,
    :func:`name` -> name, `text <url>`_ -> text (url), *emphasis* -> emphasis."""
    import re

    doc = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", doc)
    doc = re.sub(r"`([^`<]+?)\s*<([^>]+)>`_+", r"\1 (\2)", doc)
    doc = re.sub(r"``([^`]+)``", r"\1", doc)
    return re.sub(r"(?<![\w*])\*\*?([^*\n]+?)\*\*?(?![\w*])", r"\1", doc)


def _details(args, console) -> int:
    import inspect
    import sys

    from cnnlab.analysis.zoo import zoo_table
    from cnnlab.models.registry import get_info, model_options

    info = get_info(args.name)
    row = zoo_table([info.name], macs=not args.no_macs, cache=not args.no_cache)[0]
    options = model_options(info.name)
    builder_doc = inspect.getdoc(info.builder) or ""
    family_doc = inspect.getdoc(sys.modules[info.builder.__module__]) or ""
    if args.format == "json":
        import json

        out = dict(row, description=info.description, options=options)
        out.update(doc=builder_doc, family_doc=family_doc, module=info.builder.__module__)
        print(json.dumps(out, indent=2, default=repr))
        return 0
    if args.format == "csv":
        import csv

        # the csv module quotes "LeCun et al., 1998"; numbers are written plain (61706, not
        # 61,706) with the same columns as the zoo list's CSV, so every row is field,value
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerows((k, "" if row.get(k) is None else row[k]) for k in CSV_COLUMNS)
        return 0
    if args.format == "markdown":
        lines = [f"## {info.name}", ""]
        lines += [f"- **{k}**: {_cell(k, row[k])}" for k in COLUMNS]
        print("\n".join(lines))
        return 0
    from rich.markup import escape
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for k in COLUMNS:
        t.add_row(k, escape(_cell(k, row[k], row)))
    if row.get("params_no_aux") is not None:
        t.add_row("params without aux heads", f"{row['params_no_aux']:,} (aux_logits=False; "
                  "the auxiliary heads run only in training)")  # fmt: skip
    t.add_row("MACs (exact)", f"{row['macs']:,}" if row["macs"] is not None else "-")
    t.add_row("builder", f"cnnlab.models.create({info.name!r}, ...)")
    console.print(t)
    console.print("\n[bold]options[/] (create(name, option=value)):")
    for k, v in options.items():
        console.print(f"  {k} = {v!r}", highlight=False)
    console.print(f"\n[bold]{escape(_plain(info.description))}[/]\n{escape(_plain(builder_doc))}",
                  soft_wrap=True)  # fmt: skip
    console.print(f"\n[bold]family notes[/] ({info.builder.__module__})", soft_wrap=True)
    console.print(escape(_plain(family_doc)), soft_wrap=True, highlight=False)
    return 0


def _chart(args, console) -> int:
    from rich.table import Table

    from cnnlab.errors import ConfigError
    from cnnlab.viz.ilsvrc import HUMAN, check_chart, ilsvrc_rows, plot_ilsvrc

    check_chart(args.chart)
    if args.name:
        raise ConfigError(f"--chart draws the whole zoo; drop the model name {args.name!r}")
    out = args.output or f"{args.chart}.png"
    if not out.lower().endswith(".png"):
        raise ConfigError(f"--chart writes a PNG, got -o {out!r}", "e.g. -o chart.png")
    rows = ilsvrc_rows()
    table = Table(title="ILSVRC classification, test top-5 error", title_justify="left")
    for col in ("year", "entry", "top-5", "zoo model", "depth", "params", "source"):
        table.add_column(col, justify="right" if col in ("top-5", "depth", "params") else "left")
    for r in rows:
        table.add_row(
            str(r["year"]),
            r["entry"],
            f"{r['top5']:g}%",
            r["model"] or "",
            str(r["depth"] or ""),
            f"{r['params']:,}" if r["params"] else "",
            r["source"],
        )
    console.print(table)
    console.print(f"human: {HUMAN[0]:g}% ({HUMAN[1]})", highlight=False)
    console.print(f"wrote {plot_ilsvrc(rows, out)}", highlight=False, markup=False, soft_wrap=True)
    return 0
