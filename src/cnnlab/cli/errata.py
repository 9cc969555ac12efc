"""``cnnlab errata``: where the lecture notes are wrong, on the command line."""

from __future__ import annotations

import sys

ERRATA_EPILOG = """examples:
  cnnlab errata                         every erratum, with its working
  cnnlab errata --seed 001              one note's
  cnnlab errata --format json           fields: id, seed, section, says, right, why (+ kind, value)
  cnnlab errata --format markdown > errata-table.md"""


def register(sub, formatter_class) -> None:
    p = sub.add_parser(
        "errata",
        help="where the lecture notes are wrong: what they say, what is right, and why",
        description="Each wrong number or statement in the five lecture notes: what the note "
        "says, the right value or statement, and the working. cnnlab summary and compare "
        "footnote the rows whose values the notes print wrong.",
        epilog=ERRATA_EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("--seed", metavar="000..004", help="only this note's errata")
    p.add_argument("--kind", metavar="KIND", help="arithmetic, rounding, config, fact or statement")
    p.add_argument("--format", "-f", default="text", choices=("text", "json", "markdown"))
    p.set_defaults(func=run_errata)


def run_errata(args) -> int:
    from cnnlab.teaching.errata import errata, render

    sys.stdout.write(render(errata(seed=args.seed, kind=args.kind), args.format))
    return 0
