"""``cnnlab demo``: the README's main job, offline, on 2 CPU cores in under a minute.

LeNet-5 (modern form) on scikit-learn's 8x8 digits upscaled to 32x32 (built in, no download):
print the model's layer table, train with the ``demo`` recipe, print the accuracy and leave
``runs/<name>/`` with its plots, checkpoints and summary.
"""

from __future__ import annotations

import time

from rich.console import Console

from cnnlab.training.config import TrainConfig
from cnnlab.training.recipes import get_recipe


def print_model_table(model, input_size, console: Console, name: str) -> None:
    """The summary engineer's table (``cnnlab.summary``)."""
    import cnnlab

    cnnlab.summary(model, input_size, model_name=name).print(console=console)


def run_demo(
    *, epochs=None, runs_dir="runs", name=None, seed=0, quiet=False, console: Console | None = None
) -> int:
    from cnnlab.cli.train import report
    from cnnlab.models import create, get_info
    from cnnlab.training.trainer import train

    console = console or Console()
    recipe = get_recipe("demo")
    cfg = TrainConfig().replace(
        **recipe.config,
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
    print_model_table(create(cfg.model), info.input_size, console, info.name)
    console.rule(f"[bold]training on the built-in digits[/] ({cfg.epochs:g} epochs, CPU)")
    result = train(cfg)
    code = report(result)
    if result.status == "completed":
        console.print(
            f"test accuracy [bold green]{result.summary['final']['top1']:.2f}%[/] on "
            f"{result.final.n} held-out digits in {result.summary['wall_seconds']:.1f} s.\n"
            f"plots: {result.run_dir}/loss.png, accuracy.png, confusion.png; try\n"
            f"  cnnlab eval {result.run_dir}/best.pt\n"
            f"  cnnlab train --recipe lenet5-mnist --data-dir DIR   (MNIST, 99%+)"
        )
    return code
