"""Each lecture claim as a runnable experiment: ``cnnlab experiment NAME [--quick]``.

One module per experiment (see :mod:`._common` for what a module defines). Every run leaves a
folder with ``result.json``, ``result.csv``, a plot and ``conclusion.md``, which states what was
measured, at what scale, with which seed, whether the claim reproduced, and what would change
at full scale. docs/experiments.md is generated from such folders by docs/make_experiments.py.
"""

from __future__ import annotations

import importlib

from cnnlab.errors import ConfigError, suggest

# name -> module (in the order the lectures meet them)
EXPERIMENTS = {
    "activations": "activations",
    "lrn": "lrn",
    "dropout": "dropout",
    "stacked-3x3": "stacked_3x3",
    "gap-vs-fc": "gap_vs_fc",
    "aux-loss": "aux_loss",
    "bottleneck": "bottleneck",
    "degradation": "degradation",
    "batchnorm": "batchnorm",
    "augmentation": "augmentation",
    "tta": "tta",
    "rcnn-vs-fast": "rcnn_vs_fast",
}


def get_module(name: str):
    if name not in EXPERIMENTS:
        raise ConfigError(
            f"unknown experiment {name!r}",
            suggest(name, EXPERIMENTS)
            or f"run `cnnlab experiment --list`; known: {', '.join(EXPERIMENTS)}",
        )
    return importlib.import_module(f"cnnlab.teaching.experiments.{EXPERIMENTS[name]}")


def list_text() -> str:
    lines = []
    for name in EXPERIMENTS:
        m = get_module(name)
        q = m.QUICK
        lines.append(f"{name:<13} {m.CLAIM}")
        lines.append(f"{'':<13} --quick: {q.data}, {q.n_train or 'all'} training images, "
                     f"{q.epochs:g} epochs")  # fmt: skip
    return "\n".join(lines) + "\n"


def run_experiment(name: str, **kwargs):
    """Run experiment ``name`` (options: data, data_dir, quick, seed, out, threads, overrides)
    and return its run folder."""
    from cnnlab.teaching.experiments._common import run_module

    return run_module(get_module(name), **kwargs)
