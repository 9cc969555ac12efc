"""``cnnlab experiment NAME``: a lecture claim, measured, with a plot and a conclusion."""

from __future__ import annotations

import sys

EPILOG = """examples:
  cnnlab experiment --list
  cnnlab experiment activations --quick                      built-in digits, about a minute
  cnnlab experiment augmentation --quick --data-dir ../shared/data
  cnnlab experiment degradation --out runs/deg               full scale (CIFAR-10; long)

Each run leaves a folder (default runs/experiments/NAME) with result.json, result.csv, a plot
and conclusion.md: what was measured, at what scale, with which seed, whether the claim
reproduced, and what would change at full scale. --quick runs in minutes on 2 CPU cores."""


def register(sub, formatter_class) -> None:
    p = sub.add_parser(
        "experiment",
        help="run a lecture claim as an experiment (plot + conclusion); --list shows them",
        description="Measure one of the lectures' claims with cnnlab's trainer and zoo, and "
        "write a run folder with the table, a plot and a conclusion.",
        epilog=EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="experiment (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments and stop")
    p.add_argument("--quick", action="store_true", help="the small scale (minutes on a CPU)")
    p.add_argument("--data", metavar="NAME", help="dataset instead of the experiment's own")
    p.add_argument("--data-dir", metavar="DIR", help="where the datasets are")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/experiments/NAME)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (default: all)")
    p.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.errors import ConfigError
    from cnnlab.teaching.experiments import EXPERIMENTS, get_module, list_text, run_experiment

    if args.list:
        sys.stdout.write(list_text())
        return 0
    if not args.name:
        raise ConfigError("which experiment?", f"one of: {', '.join(EXPERIMENTS)} (or --list)")
    get_module(args.name)  # an unknown name fails before any data is read
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    out = run_experiment(args.name, data=args.data, data_dir=args.data_dir, quick=args.quick,
                         seed=args.seed, out=args.out, threads=args.threads)  # fmt: skip
    sys.stdout.write((out / "conclusion.md").read_text())
    print(f"\nrun folder: {out}")
    return 0
