"""``cnnlab demo``: the README's main job, offline, on 2 CPU cores in under a minute.

LeNet-5 (modern form) on scikit-learn's 8x8 digits upscaled to 32x32 (built in, no download):
print the model's layer table, train with the ``demo`` recipe, print the accuracy and leave
``runs/<name>/`` with its plots, checkpoints, summary and report.html (with the learned
filters and feature maps, also as filters.png and features.png).
"""

from __future__ import annotations

import time


def register(sub, formatter_class) -> None:
    d = sub.add_parser(
        "demo",
        help="train LeNet-5 on the built-in digits in under a minute (no download)",
        description="The main job: print LeNet-5's layer table, train it on scikit-learn's "
        "digits (built in, upscaled to 32x32) on the CPU, print the accuracy and leave the run "
        "folder with its plots.",
        epilog="example:\n  cnnlab demo\n  cnnlab demo --epochs 3 --runs-dir /tmp/runs\n",
        formatter_class=formatter_class,
    )
    d.add_argument("--epochs", type=float, default=None)
    d.add_argument("--runs-dir", default="runs")
    d.add_argument("--name", default=None)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=_demo)


def _demo(args) -> int:
    return run_demo(epochs=args.epochs, runs_dir=args.runs_dir, name=args.name, seed=args.seed,
                    quiet=args.quiet)  # fmt: skip


def run_demo(*, epochs=None, runs_dir="runs", name=None, seed=0, quiet=False, console=None) -> int:
    """Print LeNet-5's table, train it with the ``demo`` recipe, print where the results are."""
    from rich.console import Console

    import cnnlab
    from cnnlab.cli.train import exit_code, print_outcome
    from cnnlab.models import create, get_info
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.recipes import get_recipe
    from cnnlab.training.trainer import train
    from cnnlab.viz.report import write_report

    console = console or Console(emoji=False)
    cfg = TrainConfig().replace(
        **get_recipe("demo").config,
        recipe="demo",
        runs_dir=runs_dir,
        seed=seed,
        quiet=quiet,
        name=name or f"demo-{time.strftime('%Y%m%d-%H%M%S')}",
    )
    if epochs is not None:
        cfg = cfg.replace(epochs=epochs)
    info = get_info(cfg.model)
    console.rule(f"[bold]{info.name}[/]: {info.description} ({info.paper})")
    cnnlab.summary(create(cfg.model), info.input_size, model_name=info.name).print(console=console)
    console.rule(f"[bold]training on the built-in digits[/] ({cfg.epochs:g} epochs, CPU)")

    def where_next(folder, result) -> None:
        if result.status == "completed":
            console.print(
                f"test accuracy [bold green]{result.summary['test']['top1']:.2f}%[/] on "
                f"{result.final.n} unseen test digits (best.pt chosen on "
                f"{result.summary['splits']['validation']['images']} validation digits) in "
                f"{result.summary['wall_seconds']:.1f} s.\n"
                f"report: {folder.path}/report.html (curves, confusion matrix, the learned "
                f"filters.png and features.png, the most confident mistakes); try\n"
                f"  cnnlab eval {folder.path}/best.pt\n"
                f"  cnnlab train --recipe lenet5-mnist --data-dir DIR   (MNIST, 99%+)"
            )

    return exit_code(train(cfg, on_finish=[print_outcome, write_report, where_next]))
