"""benchmarks/train_cifar.py: cnnlab's contestant is the recipe as written, at --widths."""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import train_cifar as B  # noqa: E402
from cnnlab.training.recipes import get_recipe  # noqa: E402


def test_the_contestant_keeps_the_recipes_model_options_and_takes_the_widths(tmp_path):
    args = argparse.Namespace(data_dir=str(tmp_path), threads=1, runs_dir=str(tmp_path),
                              amp=True, verbose=False, seed=0)  # fmt: skip
    cfg = B.recipe_config(args, torch.device("cpu"), (8, 16, 16), 1, 64, budget_min=0.5)
    recipe = get_recipe("cifar-fast").config
    # the recipe's net options (airbench's init, BN form and head) survive; only widths change
    assert cfg.model_options == {**recipe["model_options"], "widths": [8, 16, 16]}
    assert cfg.model_options["dirac"] is True and cfg.optimizer == recipe["optimizer"]
    assert cfg.val_fraction == 0.0 and cfg.budget_min == 0.5 and cfg.batch_size == 64
