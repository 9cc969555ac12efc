"""Every output of a :class:`~cnnlab.analysis.summary.Summary`, rendered from the same rows.

Human formats (terminal, markdown, LaTeX, HTML) show what the lectures show: shapes as
``64x56x56``, memory in KiB, parameters with thousands separators, MACs in M/G. Machine
formats (CSV, JSON) keep exact integers.
"""

from __future__ import annotations

import csv
import html as _html
import io

from cnnlab._util import fmt_count

FORMATS = ("table", "compact", "markdown", "csv", "json", "latex", "html")


def shape(v) -> str:
    return "x".join(str(d) for d in v) if v else ""


def dims(v) -> str:
    """A per-dim list as the lectures write it: ``11`` when square, ``1x7`` otherwise."""
    if not v:
        return ""
    v = [int(x) if float(x).is_integer() else round(float(x), 3) for x in v]
    return str(v[0]) if len(set(v)) == 1 else "x".join(map(str, v))


def kib(n: int) -> str:
    k = n / 1024
    return f"{k:,.0f}" if k.is_integer() else f"{k:,.1f}"


def count(n: int) -> str:
    return f"{n:,}" if n else ""


def _display_name(r) -> str:
    return r.name if r.call == 1 else f"{r.name} [{r.call}]"


def columns(s):
    """(header, right-aligned?, cell function) for the columns this summary needs."""
    cols = [
        ("Layer", False, _display_name),
        ("Type", False, lambda r: r.type),
        ("Input", True, lambda r: shape(r.input_shape)),
        ("Filters", True, lambda r: count(r.filters) if r.filters else ""),
        ("Kernel", True, lambda r: dims(r.kernel)),
        ("Stride", True, lambda r: dims(r.stride)),
        ("Pad", True, lambda r: dims(r.padding)),
    ]
    if any(r.dilation for r in s.layers):
        cols.append(("Dil", True, lambda r: dims(r.dilation)))
    if any(r.groups for r in s.layers):
        cols.append(("Groups", True, lambda r: str(r.groups) if r.groups else ""))
    cols += [
        ("Output", True, lambda r: shape(r.output_shape)),
        ("Memory KiB", True, lambda r: kib(r.activation_bytes)),
        ("Weights", True, lambda r: count(r.weights)),
        ("Bias", True, lambda r: count(r.bias)),
        ("MACs", True, lambda r: fmt_count(r.macs)),
        ("FLOPs", True, lambda r: fmt_count(r.flops)),
        ("RF", True, lambda r: dims(r.receptive_field)),
        ("Jump", True, lambda r: dims(r.jump)),
    ]
    return cols


COMPACT_WIDTH = 80


def _ksp(r) -> str:
    """Kernel/stride/pad in one cell: ``3/2/1``."""
    return f"{dims(r.kernel)}/{dims(r.stride)}/{dims(r.padding)}" if r.kernel else ""


def compact_columns(s):
    """The columns that fit a terminal of 80: layer, type, output, K/S/P, params, MACs, RF."""
    return [
        ("Layer", False, _display_name),
        ("Type", False, lambda r: r.type),
        ("Output", True, lambda r: shape(r.output_shape)),
        ("K/S/P", True, _ksp),
        ("Params", True, lambda r: count(r.params)),
        ("MACs", True, lambda r: fmt_count(r.macs)),
        ("RF", True, lambda r: dims(r.receptive_field)),
    ]


def totals_cells(s, cols) -> list[str]:
    t = s.totals
    weights = sum(r.weights for r in s.layers)
    bias = sum(r.bias for r in s.layers)
    by_header = {
        "Layer": "Total",
        "Params": count(t["params"]),
        "Memory KiB": kib(t["activation_bytes"]),
        "Weights": count(weights),
        "Bias": count(bias),
        "MACs": fmt_count(t["macs"]),
        "FLOPs": fmt_count(t["flops"]),
    }
    return [by_header.get(h, "") for h, _, _ in cols]


def footer_lines(s) -> list[str]:
    t = s.totals
    size = "x".join(map(str, s.input_size))
    raw = t.get("params_raw", t["params"])
    params = f"{t['params']:,}" + (f" ({raw:,} elements)" if raw != t["params"] else "")
    mode = ", mode: train" if getattr(s, "mode", "eval") == "train" else ""
    lines = [
        f"{s.model_name} at {s.batch_size}x{size} ({str(s.dtype).removeprefix('torch.')}), "
        f"convention: {s.convention}{mode}",
        f"params: {params}   MACs: {t['macs']:,}   FLOPs: {t['flops']:,}   "
        f"activations: {kib(t['activation_bytes'])} KiB",
    ]
    cov = f"coverage: {100 * s.coverage:.1f}% of ops counted"
    if s.not_counted:
        cov += "; not counted: " + ", ".join(f"{k} x{v}" for k, v in s.not_counted.most_common())
    lines.append(cov)
    lines += [f"note: {n}" for n in s.notes]
    return lines


# ----------------------------------------------------------------------------- rich


def rich_table(s):
    from rich import box
    from rich.table import Table

    cols = columns(s)
    table = Table(
        title=f"{s.model_name} — {'x'.join(map(str, s.input_size))}",
        caption="\n".join(footer_lines(s)),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_footer=True,
        header_style="bold",
        footer_style="bold",
    )
    for (header, right, _), foot in zip(cols, totals_cells(s, cols)):
        table.add_column(header, justify="right" if right else "left", footer=foot, no_wrap=True)
    for r in s.layers:
        cells = [fn(r) for _, _, fn in cols]
        style = "dim" if r.not_counted else None
        table.add_row(*cells, style=style)
    return table


def _fit(cells, widths, limit):
    """Shorten the two text columns until a row fits ``limit``: the layer name from the left
    (its end says the most) down to 16, then the type from the right down to 8."""
    over = sum(widths) + 2 * len(widths) - limit
    for i, floor in ((0, 16), (1, 8), (0, 8)):
        cut = min(over, max(widths[i] - floor, 0))
        widths[i] -= cut
        over -= cut

    def clip(c, w, i):
        if len(c) <= w:
            return c
        return "…" + c[len(c) - w + 1 :] if i == 0 else c[: w - 1] + "…"

    return [[clip(c, w, i) for i, (c, w) in enumerate(zip(row, widths))] for row in cells]


def _layout(s, compact=False) -> tuple[list[str], int, int]:
    """The terminal table as aligned text lines (fast: a ResNet-152 has 500+ rows, which
    rich's Table lays out in seconds). Returns (lines, index of the totals line, n rows).
    ``compact``: the columns of :func:`compact_columns`, fitted to 80 characters."""
    cols, head, body, foot = _grid(s, compact)
    widths = [max(len(c) for c in col) for col in zip(head, *body, foot)]
    if compact:
        head, *body = _fit([head, *body], widths, COMPACT_WIDTH)

    def line(cells):
        parts = [
            c.rjust(w) if right else c.ljust(w) for c, w, (_, right, _) in zip(cells, widths, cols)
        ]
        return "  " + "  ".join(parts).rstrip()

    rule = "  " + "-" * (sum(widths) + 2 * (len(widths) - 1))
    title = f"  {s.model_name} — {'x'.join(map(str, s.input_size))}"
    lines = [title, "", line(head), rule] + [line(r) for r in body] + [rule, line(foot), ""]
    if compact:
        import textwrap

        for x in footer_lines(s):
            lines += textwrap.wrap(x, COMPACT_WIDTH, initial_indent="  ", subsequent_indent="    ")
    else:
        lines += ["  " + x for x in footer_lines(s)]
    return lines, 4 + len(body) + 1, len(body)


def plain_text(s, width: int | None = None, compact: bool = False) -> str:
    """The terminal table without colours (what ``--format table -o FILE`` writes)."""
    return "\n".join(_layout(s, compact)[0]) + "\n"


def wide_console(console, *renderables):
    """A console at least as wide as the renderables need: tables are never squeezed."""
    from rich.console import Console
    from rich.measure import Measurement

    console = console or Console(emoji=False)
    opts = console.options.update_width(10_000)
    need = max(Measurement.get(console, opts, r).maximum for r in renderables)
    if need > console.width and not console.is_jupyter:
        return Console(
            emoji=False, width=need, file=console.file, color_system=console.color_system
        )
    return console


def print_summary(s, console=None, compact: bool | None = None) -> None:
    """Print the table to a terminal: bold header and totals, dim rows with uncounted ops.
    ``compact=None`` picks the 80-column form when the terminal is narrower than the table."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console(emoji=False)
    lines, total_at, n = _layout(s, bool(compact))
    if compact is None and console.is_terminal and max(map(len, lines)) > console.width:
        lines, total_at, n = _layout(s, True)
    text = Text(no_wrap=True, overflow="ignore")
    for i, ln in enumerate(lines):
        style = None
        if i in (0, 2, total_at):
            style = "bold"
        elif 4 <= i < 4 + n and s.layers[i - 4].not_counted:
            style = "dim"
        elif i > total_at and "not counted:" in ln:
            style = "yellow"
        text.append(ln + "\n", style=style)
    console.print(text, crop=False, soft_wrap=True)


# ----------------------------------------------------------------------------- text formats


def _grid(s, compact=False):
    cols = compact_columns(s) if compact else columns(s)
    head = [h for h, _, _ in cols]
    body = [[fn(r) for _, _, fn in cols] for r in s.layers]
    return cols, head, body, totals_cells(s, cols)


def markdown(s) -> str:
    cols, head, body, foot = _grid(s)
    esc = lambda c: c.replace("|", "\\|")  # noqa: E731
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---:" if right else "---" for _, right, _ in cols) + "|",
    ]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    lines.append("| " + " | ".join(f"**{c}**" if c else "" for c in foot) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {x}" for x in footer_lines(s)) + "\n"


CSV_FIELDS = [
    "name",
    "type",
    "call",
    "input_shape",
    "output_shape",
    "filters",
    "kernel",
    "stride",
    "padding",
    "dilation",
    "groups",
    "weights",
    "bias",
    "params",
    "macs",
    "flops",
    "activation_bytes",
    "receptive_field",
    "jump",
]


def csv_text(s) -> str:
    """One line per row with exact integers; shapes as 64x56x56; a final 'Total' line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for r in s.layers:
        d = r.to_dict()
        w.writerow(
            [
                "x".join(map(str, d[k]))
                if isinstance(d[k], list)
                else ("" if d[k] is None else d[k])
                for k in CSV_FIELDS
            ]
        )
    t = s.totals
    total = {
        "name": "Total",
        "params": t["params"],
        "macs": t["macs"],
        "flops": t["flops"],
        "activation_bytes": t["activation_bytes"],
    }
    w.writerow([total.get(k, "") for k in CSV_FIELDS])
    return buf.getvalue()


_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "\\": r"\textbackslash{}",
}


def _tex(c: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in c)


def latex(s) -> str:
    cols, head, body, foot = _grid(s)
    spec = "".join("r" if right else "l" for _, right, _ in cols)
    lines = [
        r"\begin{tabular}{" + spec + "}",
        r"\hline",
        " & ".join(_tex(h) for h in head) + r" \\",
        r"\hline",
    ]
    lines += [" & ".join(_tex(c) for c in row) + r" \\" for row in body]
    lines += [r"\hline", " & ".join(_tex(c) for c in foot) + r" \\", r"\hline", r"\end{tabular}"]
    caption = "; ".join(footer_lines(s))
    return "% " + caption.replace("\n", " ") + "\n" + "\n".join(lines) + "\n"


def html(s) -> str:
    cols, head, body, foot = _grid(s)
    e = _html.escape
    align = ['style="text-align:right"' if right else "" for _, right, _ in cols]
    out = [
        '<table class="cnnlab-summary">',
        f"<caption>{e(footer_lines(s)[0])}</caption>",
        "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead>",
        "<tbody>",
    ]
    for row in body:
        out.append("<tr>" + "".join(f"<td {a}>{e(c)}</td>" for a, c in zip(align, row)) + "</tr>")
    out.append("</tbody>")
    out.append(
        "<tfoot><tr>"
        + "".join(f"<td {a}><b>{e(c)}</b></td>" for a, c in zip(align, foot))
        + "</tr></tfoot>"
    )
    out.append("</table>")
    out += [f"<p>{e(x)}</p>" for x in footer_lines(s)[1:]]
    return "\n".join(out) + "\n"


def render(s, fmt: str = "table") -> str:
    from cnnlab.errors import ConfigError, suggest

    if fmt == "table":
        return plain_text(s)
    if fmt == "compact":
        return plain_text(s, compact=True)
    if fmt == "json":
        return s.to_json() + "\n"
    fns = {"markdown": markdown, "csv": csv_text, "latex": latex, "html": html}
    if fmt not in fns:
        raise ConfigError(
            f"unknown format {fmt!r}", suggest(fmt, FORMATS) or f"use one of: {', '.join(FORMATS)}"
        )
    return fns[fmt](s)
