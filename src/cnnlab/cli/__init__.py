"""The ``cnnlab`` command: a thin argparse front over the library.

Each part registers its own sub-commands from a module in this package (``register(sub)``),
imported here by name. Handlers import torch lazily so ``cnnlab --help`` stays instant.
User errors (``CnnlabError``) are printed as one message, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rich.console import Console
from rich.markup import escape

# coloured --help that keeps example lines as written (rich-argparse is a dependency)
from rich_argparse import RawDescriptionRichHelpFormatter as HelpFormatter

from cnnlab import __version__
from cnnlab.errors import CnnlabError

# One module per part; each defines ``register(subparsers)``.
COMMAND_MODULES = [
    "cnnlab.cli.shape",  # shape: one layer's arithmetic, step by step
    "cnnlab.cli.summary",  # summary, compare
    "cnnlab.cli.models",  # models
    "cnnlab.cli.train",  # train, eval, predict, recipes
    "cnnlab.cli.demo",  # demo
    "cnnlab.cli.cache",  # cache [clear]
    "cnnlab.cli.dense",  # detect, segment
    "cnnlab.cli.scratch",  # scratch train / gradcheck
    "cnnlab.cli.augment",  # augment preview
    "cnnlab.cli.viz",  # filter, viz filters/features/attribute/top-patches/heatmap
    "cnnlab.cli.draw",  # draw: architecture diagrams
    "cnnlab.cli.report",  # report: a run's report.html
    "cnnlab.cli.errata",  # errata: where the notes are wrong
    "cnnlab.cli.export",  # export: ONNX / TorchScript
    "cnnlab.cli.quiz",  # quiz table / shape
    "cnnlab.cli.experiment",  # experiment: the lectures' claims, measured
]

err_console = Console(emoji=False, stderr=True, soft_wrap=True)  # a path stays one piece

EXAMPLES = """examples:
  cnnlab demo                                        # train LeNet-5 on built-in digits (offline)
  cnnlab shape --input 3x227x227 --filters 64 --kernel 11 --stride 4 --pad 2
  cnnlab summary alexnet --input 3x227x227           # seed 001's AlexNet table
  cnnlab compare 5x5-vs-3x3 --channels 64 --size 56  # a lecture comparison
  cnnlab models --family ResNet
  cnnlab train resnet20 --data cifar10 --data-dir DIR --epochs 30
  cnnlab scratch train lenet5 --data digits
  cnnlab filter sample:china --kernel outline -o outline.png
  cnnlab viz features runs/NAME sample:china -o maps.png
  cnnlab draw googlenet -o googlenet.svg

Every command has its own --help. Docs: README.md and docs/."""


def cli_note(message: str) -> None:
    """A note to the user on stderr (e.g. how an ambiguous --input was read)."""
    err_console.print(f"[cyan]note:[/] {escape(message)}", highlight=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="The classic CNN curriculum as measured software: exact layer arithmetic, "
        "a faithful model zoo, fast honest training and a from-scratch NumPy engine.",
        formatter_class=HelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, HelpFormatter)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except CnnlabError as e:
        # Messages hold shapes like [mb, h, w, 6]: escape them so rich prints them as written.
        err_console.print(f"[bold red]error:[/] {escape(e.message)}", highlight=False)
        if e.hint:
            err_console.print(f"[yellow]hint:[/] {escape(e.hint)}", highlight=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        return 130
    except BrokenPipeError:  # `cnnlab ... | head`
        sys.stderr.close()
        return 0
    except OSError as e:  # a path that cannot be read or written (-o into a missing folder ...)
        where = f": {e.filename}" if e.filename else ""
        err_console.print(f"[bold red]error:[/] {escape((e.strerror or str(e)) + where)}",
                          highlight=False)  # fmt: skip
        err_console.print("[yellow]hint:[/] check that the folder exists and is writable and "
                          "that the disk has room", highlight=False)  # fmt: skip
        return 2
