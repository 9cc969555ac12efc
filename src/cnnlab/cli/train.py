"""``cnnlab train | eval | predict | recipes``: training and using trained models.

Torch and the training package are imported inside the handlers so ``cnnlab --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys

TRAIN_EPILOG = """\
examples:
  cnnlab train lenet5 --data digits --epochs 5
  cnnlab train --recipe lenet5-mnist --data-dir ../shared/data
  cnnlab train resnet20 --data cifar10-jpeg --data-dir ../shared/data --augment cifar \\
      --schedule cosine --warmup 1 --label-smoothing 0.1 --epochs 30
  cnnlab train lenet5 --data mnist --l1 1e-5 --elastic-net 0.5     # l1*sum(0.5 W^2 + |W|)
  cnnlab train --resume runs/lenet5-digits-20260101-120000          # after Ctrl-C or a crash
  cnnlab train resnet20 --data fashion-mnist --finetune runs/r20/best.pt --freeze-backbone
  cnnlab train lenet5 --data mnist --nproc 2                        # DDP, 2 processes (torchrun)

Every run holds out --val-fraction (0.1) of the training split for validation, which chooses
best.pt, --patience and --target; the test split is scored once, at the end, with best.pt's
weights (--no-test leaves it unseen while you tune; cnnlab eval RUN scores it later). Every
run writes runs/<name>/: config.yaml, metrics.csv/.jsonl (validation columns),
last.pt/best.pt (checksum inside), loss.png, accuracy.png, confusion.csv/.png and
per_class.csv (test split) and summary.json. --resume may change only --epochs (more), --quiet,
--no-plots, --device, --threads, --eval-batch-size, --eval-every, --target, --patience, --tta,
--data-dir, --download, --compile and --test/--no-test; any other flag is refused, naming it.
"""


def train_flags():
    """``(flag, field name, argparse keywords)`` for every TrainConfig field made with ``opt``:
    the type, choices and ``[default: ...]`` come from the field, so the flags cannot drift
    from the config. Every flag defaults to None so a recipe's value survives unless given."""
    import dataclasses
    import typing

    from cnnlab.training.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    out = []
    for f in dataclasses.fields(TrainConfig):
        if "help" not in f.metadata:
            continue
        flag = f.metadata["flag"] or "--" + f.name.replace("_", "-")
        kind = next(
            t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None)
        )
        kw = dict(f.metadata["argparse"], dest=f.name, default=None)
        shown = "" if f.default is None else f" [default: {f.default}]"
        if kind is bool:  # --no-FLAG turns off what a recipe or config turned on
            kw.update(action=argparse.BooleanOptionalAction, help=f.metadata["help"])
        else:
            kw.update(type=kind, help=(f.metadata["help"] + shown).strip())
        out.append((flag, f.name, kw))
    return out


def register(sub, formatter_class) -> None:
    from cnnlab.training.config import TTA_MODES

    p = sub.add_parser(
        "train",
        help="train a zoo model (recipes, resume, fine-tuning, DDP)",
        description="Train MODEL on a dataset held in memory, with the lectures' practice: "
        "preprocessing, batch augmentation, L1/L2/elastic-net, label smoothing, warm-up "
        "schedules, EMA; atomic checkpoints, exact resume, Ctrl-C safe.",
        epilog=TRAIN_EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("model", nargs="?", metavar="MODEL", help="a zoo model (`cnnlab models`)")
    p.add_argument("--recipe", metavar="NAME", help="start from a named recipe (`cnnlab recipes`)")
    p.add_argument("--config", metavar="YAML", help="start from a config.yaml of an earlier run")
    for flag, _, kw in train_flags():
        p.add_argument(flag, **kw)
    p.add_argument("--option", "-O", action="append", metavar="KEY=VALUE", default=[],
                   help="a model builder option, e.g. -O dropout=0.3 -O widths=[24,48] "
                   "(values read as YAML; repeatable)")  # fmt: skip
    p.add_argument("--resume", metavar="RUN", help="continue runs/<name> (or its last.pt)")
    p.add_argument("--nproc", type=int, metavar="N", help="run N processes with torchrun (DDP)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (CSVs stay)")
    p.set_defaults(func=_train)

    e = sub.add_parser(
        "eval",
        help="evaluate a checkpoint (top-1/top-5, per class, confusion matrix, TTA)",
        description="Score a trained checkpoint on a dataset split, optionally with test-time "
        "augmentation: flip (2 views), 10crop (4 corners + centre, x2 flips) or multiscale "
        "(seed 001's 5 scales x 10 crops = 50 views).",
        epilog="examples:\n  cnnlab eval runs/demo/best.pt\n  cnnlab eval runs/demo        "
        "# a run folder: its best.pt (else last.pt)\n"
        "  cnnlab eval runs/c10/best.pt --data cifar10-jpeg --data-dir ../shared/data --tta flip\n",
        formatter_class=formatter_class,
    )
    e.add_argument(
        "checkpoint",
        metavar="CKPT",
        help="a checkpoint, or a run folder (its best.pt, else last.pt)",
    )
    e.add_argument("--data", help="dataset [default: the one it was trained on]")
    e.add_argument("--data-dir", metavar="DIR")
    e.add_argument("--download", action="store_true", help="fetch a missing archive when online")
    e.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="test (default); val: the run's validation split (its own, or the part "
                   "of train it held out, drawn again from its seed); train: the part it "
                   "trained on")  # fmt: skip
    e.add_argument("--tta", default="none", choices=TTA_MODES)
    e.add_argument("--batch-size", type=int, default=512)
    e.add_argument("--device", default="auto")
    e.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA")
    e.add_argument("--out", metavar="DIR", help="where to save the confusion matrix "
                   "[default: beside the checkpoint]")  # fmt: skip
    e.set_defaults(func=_eval)

    pr = sub.add_parser(
        "predict",
        help="top-5 classes of image files with a trained checkpoint",
        description="Read images (torchvision.io), resize them to the training images' size, "
        "apply the checkpoint's preprocessing and print the top-k classes with probabilities.",
        epilog="example:\n  cnnlab predict runs/demo/best.pt my_digit.png\n",
        formatter_class=formatter_class,
    )
    pr.add_argument("checkpoint", metavar="CKPT")
    pr.add_argument("images", nargs="+", metavar="IMAGE")
    pr.add_argument("--topk", type=int, default=5)
    pr.add_argument("--device", default="cpu")
    pr.set_defaults(func=_predict)

    r = sub.add_parser(
        "recipes",
        help="list the named training recipes",
        description="Named presets for `cnnlab train --recipe NAME`, with what was measured.",
        formatter_class=formatter_class,
    )
    r.set_defaults(func=_recipes)


# ------------------------------------------------------------------------------------ train


def config_from_args(args):
    """TrainConfig from defaults < --config < --recipe < explicit flags."""
    from cnnlab.errors import ConfigError
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.recipes import get_recipe

    cfg = TrainConfig.load_yaml(args.config) if args.config else TrainConfig()
    if args.recipe:
        cfg = cfg.replace(**get_recipe(args.recipe).config, recipe=args.recipe)
    changes = explicit_changes(args, cfg)
    cfg = cfg.replace(**changes)
    if not (args.model or args.recipe or args.config):
        raise ConfigError(
            "which model? give MODEL, --recipe NAME or --config YAML",
            "e.g. `cnnlab train lenet5 --data digits` or `cnnlab train --recipe lenet5-mnist`",
        )
    return cfg.validate()


def explicit_changes(args, cfg=None) -> dict:
    """The config fields the command line sets explicitly (MODEL, flags, switches, -O)."""
    changes = {}
    if args.model:
        changes["model"] = args.model
    for _, key, _ in train_flags():
        if getattr(args, key, None) is not None:
            changes[key] = getattr(args, key)
    if args.quiet:
        changes["quiet"] = True
    if args.no_plots:
        changes["plots"] = False
    if args.option:
        base = cfg.model_options if cfg is not None else {}
        changes["model_options"] = {**base, **_parse_options(args.option)}
    return changes


def _parse_options(items: list[str]) -> dict:
    import yaml

    from cnnlab.errors import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"cannot read --option {item!r}", "write KEY=VALUE, e.g. -O dropout=0.3"
            )
        out[key.strip()] = yaml.safe_load(value)
    return out


def _train(args) -> int:
    from cnnlab.errors import ConfigError

    if args.nproc is not None and args.nproc < 1:  # 0 would quietly run one plain process
        raise ConfigError(
            f"--nproc must be 1 or more, got {args.nproc}",
            "give the number of processes for torchrun, e.g. --nproc 2, or leave it out",
        )
    if args.nproc:
        return _torchrun(args)
    from cnnlab.teaching.assignment import check_config
    from cnnlab.training.trainer import train

    if args.resume:
        if args.recipe or args.config:
            from cnnlab.errors import ConfigError

            raise ConfigError(
                "--resume continues a run with its own settings; it cannot take "
                + ("--recipe" if args.recipe else "--config"),
                "drop it (the run's config is in its checkpoint), or start a new run",
            )
        changes = explicit_changes(args)
        result = train(None, resume=args.resume, changes=changes, on_finish=finish_hooks())
    else:
        cfg = config_from_args(args)
        check_config(cfg)
        result = train(cfg, on_finish=finish_hooks())
    return exit_code(result)


def finish_hooks() -> list:
    """What ``cnnlab train`` does when a run ends: print the outcome, grade an assignment
    recipe (into summary.json), then write report.html (which shows that grade)."""
    from cnnlab.teaching.assignment import grade_run
    from cnnlab.viz.report import write_report

    return [print_outcome, grade_run, write_report]


def print_outcome(folder, result) -> None:
    """The ``on_finish`` hook of ``cnnlab train`` and ``cnnlab demo``: the run's outcome as a
    table (or the interruption / divergence message on stderr)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(emoji=False)
    s = result.summary
    if result.status in ("completed", "target-reached", "early-stopped"):
        t = Table(title=f"{s['model']} on {s['dataset']}: {result.status}", show_header=False)
        if s["test"] is not None:
            te = s["test"]
            names = [k for k in te if k not in ("loss", "n", "weights", "tta")]  # the task's
            label = " / ".join(k.replace("top", "top-") for k in names)
            values = " / ".join(f"{te[k]:.2f}%" for k in names)
            t.add_row(f"test {label}", f"{values}  ({te['n']:,} images, scored once)")
            if te["loss"] is not None:  # (a detector scores no loss in evaluation)
                t.add_row("test loss", f"{te['loss']:.4f}")
            t.add_row("weights tested", te["weights"])
        elif s.get("test_skipped"):
            t.add_row("test", "not scored (--no-test): score it once, when the settings are "
                      f"chosen, with cnnlab eval {escape(str(folder.path))}")  # fmt: skip
        else:
            t.add_row("test", "no test split: nothing scored on unseen data")
        if s["best"]["epoch"] is not None:
            n_val = s["splits"]["validation"]["images"]
            metric = next(k for k in s["best"] if k != "epoch")
            best = f"{s['best'][metric]:.2f}% (epoch {s['best']['epoch']}, {n_val:,} images)"
            t.add_row(f"best validation {metric.replace('top', 'top-')}", best)
        t.add_row("epochs / steps", f"{s.get('epochs_trained', s['epochs']):g} / {s['steps']}")
        t.add_row("wall time", f"{s['wall_seconds']:.1f} s on {s['device']}"
                  + (f" x{s['world_size']}" if s["world_size"] > 1 else ""))  # fmt: skip
        t.add_row("run folder", str(folder.path))
        console.print(t)
    elif result.status == "interrupted":
        Console(emoji=False, stderr=True).print(
            f"[yellow]{escape(result.message)}[/]", highlight=False
        )
    else:
        Console(emoji=False, stderr=True).print(
            f"[bold red]error:[/] {escape(result.message)}", highlight=False
        )


def exit_code(result) -> int:
    """0 when the run finished (completed, target reached, stopped early), 130 interrupted,
    2 diverged (a setting to change, as every error the user can fix; the scratch engine's
    divergence exits 2 too)."""
    codes = {"completed": 0, "target-reached": 0, "early-stopped": 0, "interrupted": 130}
    return codes.get(result.status, 2)


def _torchrun(args) -> int:
    """Re-run this command under torchrun with --nproc processes, from a resolved config."""
    import subprocess
    import tempfile

    cfg = config_from_args(args)
    if args.resume:
        from cnnlab.errors import ConfigError

        raise ConfigError("--nproc with --resume is not supported",
                          "resume with torchrun directly: torchrun --nproc_per_node=N "
                          "-m cnnlab train --resume RUN")  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        path = f.name
    cfg.save_yaml(path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={args.nproc}", "-m", "cnnlab", "train", "--config", path]  # fmt: skip
    try:
        return subprocess.call(cmd)
    finally:
        os.unlink(path)


# ------------------------------------------------------------------------------------- eval


def _eval(args) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from cnnlab.errors import ConfigError
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.evaluate import evaluate
    from cnnlab.training.inference import load_trained
    from cnnlab.training.run_folder import RunFolder
    from cnnlab.training.trainer import resolve_device, split_data

    if args.batch_size < 1:
        raise ConfigError(
            f"--batch-size must be at least 1, got {args.batch_size}", "e.g. --batch-size 512"
        )
    device = resolve_device(args.device)
    tr = load_trained(args.checkpoint, device=device, ema=not args.no_ema)
    cfg = TrainConfig.from_dict(tr.state["config"])
    name = args.data or cfg.data
    # test=True: a --no-test run's test split is what this command is for
    cfg = cfg.replace(data=name, data_dir=args.data_dir or cfg.data_dir, download=args.download,
                      target_top1=None, patience=None, test=True)  # fmt: skip
    splits = dict(zip(("train", "val", "test"), split_data(cfg)))  # as the run split them
    ds = splits[args.split]
    if ds is None:
        have = ", ".join(k for k, v in splits.items() if v is not None)
        raise ConfigError(f"{name} has no {args.split} split for this run",
                          f"use --split with one of: {have}")  # fmt: skip
    if list(ds.classes) != tr.classes:
        raise ConfigError(
            f"{name} has classes {ds.classes[:5]}..., the checkpoint was trained on "
            f"{tr.classes[:5]}...", "evaluate on the dataset the model was trained on")  # fmt: skip
    if tuple(ds.images.shape[1:]) != tr.data_size:
        raise_size(ds, tr)
    from cnnlab.training.tasks import LOSSES

    res = evaluate(
        tr.model, ds.images, ds.labels, tr.pipeline, num_classes=tr.num_classes,
        batch_size=args.batch_size, device=device, tta=args.tta, classes=tr.classes,
        loss_fn=LOSSES[cfg.loss],  # the loss the run trained with
    )  # fmt: skip
    console = Console(emoji=False)
    t = Table(title=f"{tr.state['model_name']} on {name} ({args.split}, TTA {args.tta}"
              f"{', EMA weights' if tr.used_ema else ''})")  # fmt: skip
    t.add_column("class")
    t.add_column("accuracy", justify="right")
    t.add_column("images", justify="right")
    counts = res.confusion.sum(1).tolist()
    for c, acc, k in zip(tr.classes, res.per_class, counts):
        t.add_row(c, f"{acc:.2f}%" if k else "-", str(k))
    console.print(t)
    console.print(f"top-1 [bold]{res.top1:.2f}%[/]  top-5 {res.top5:.2f}%  loss {res.loss:.4f}  "
                  f"({res.n} images, TTA {args.tta})")  # fmt: skip
    given = Path(args.checkpoint)  # a run folder, or a checkpoint in one
    out = RunFolder(Path(args.out) if args.out else given if given.is_dir() else given.parent)
    stem = f"confusion-{Path(str(name)).name}-{args.split}-{args.tta}"
    csv_path, png = out.save_confusion(res, tr.classes, split=args.split, stem=stem)
    console.print(f"confusion matrix: {csv_path}, {png}")
    return 0


def raise_size(ds, tr):
    from cnnlab.errors import ShapeError

    raise ShapeError(
        f"the dataset's images are {tuple(ds.images.shape[1:])}, the model was trained on "
        f"{tr.data_size}", "evaluate on a dataset with the training images' size")  # fmt: skip


# ---------------------------------------------------------------------------------- predict


def _predict(args) -> int:
    from pathlib import Path

    import torch
    from rich.console import Console
    from rich.table import Table

    from cnnlab.errors import ConfigError
    from cnnlab.training.dense_tasks import check_kind
    from cnnlab.training.inference import load_trained, read_images
    from cnnlab.training.trainer import resolve_device

    if args.topk < 1:
        raise ConfigError(f"--topk must be at least 1, got {args.topk}", "e.g. --topk 5")
    device = resolve_device(args.device)
    tr = load_trained(args.checkpoint, device=device)
    check_kind(tr, args.checkpoint, "classification")  # a detector's output is no class list
    x = read_images(args.images, tr.data_size).to(device)
    with torch.inference_mode():
        out = tr.model(tr.pipeline(x))
        probs = torch.softmax((out[0] if isinstance(out, (tuple, list)) else out).float(), 1)
    k = min(args.topk, tr.num_classes)
    top = probs.topk(k, dim=1)
    console = Console(emoji=False)
    for path, p, i in zip(args.images, top.values.tolist(), top.indices.tolist()):
        t = Table(title=Path(path).name)
        t.add_column("rank", justify="right")
        t.add_column("class")
        t.add_column("probability", justify="right")
        for r, (pi, ci) in enumerate(zip(p, i), 1):
            t.add_row(str(r), tr.classes[ci], f"{100 * pi:.2f}%")
        console.print(t)
    return 0


def _recipes(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from cnnlab.training.recipes import RECIPES

    t = Table(title="training recipes (cnnlab train --recipe NAME)", show_lines=True)
    t.add_column("name", style="bold", no_wrap=True)
    t.add_column("model on data", no_wrap=True)
    t.add_column("what [dim](measured here)[/]")
    for r in RECIPES.values():
        t.add_row(r.name, f"{r.config.get('model', '')}\n{r.config.get('data', '')}",
                  f"{r.summary}\n[dim]{r.measured}[/]")  # fmt: skip
    Console(emoji=False).print(t)
    return 0
