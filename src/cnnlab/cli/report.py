"""``cnnlab report RUN``: (re)build a run's self-contained report.html."""

from __future__ import annotations


def register(sub, formatter_class) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild runs/NAME/report.html: config, layers, curves, confusion, filters, "
        "feature maps, confident mistakes",
        description="Write one self-contained HTML page for a training run (pictures inlined, "
        "nothing fetched from the network).",
        epilog="examples:\n  cnnlab report runs/demo-20261129-061500\n"
        "  cnnlab report runs/NAME -o /tmp/report.html",
        formatter_class=formatter_class,
    )
    p.add_argument("run", metavar="RUN", help="a run folder written by cnnlab train")
    p.add_argument("-o", "--out", metavar="FILE", help="[default: RUN/report.html]")
    p.set_defaults(func=_report)


def _report(args) -> int:
    from rich.console import Console

    from cnnlab.viz.report import build_report

    path = build_report(args.run, args.out)
    Console(emoji=False, highlight=False).print(f"wrote {path}", markup=False, soft_wrap=True)
    return 0
