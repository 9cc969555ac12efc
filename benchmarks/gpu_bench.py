"""The GPU measurements of ``benchmarks/gpu.sh`` (also usable alone). Each subcommand prints
Markdown lines for the results file; ``--dry-run`` runs the same code on the CPU at toy size
(generated data, a few steps), which checks that everything it needs imports and starts.

- ``cifar``: cnnlab's ``cifar-fast`` recipe (``cifar-fast-net`` 64/256/256, GPU-resident
  data) against the ``airbench`` package's airbench94 (Keller Jordan, arXiv:2404.00498;
  ``airbench.train94``) on the same CIFAR-10 in the same run: airbench reads its data from
  ``train.pt``/``test.pt`` files that this script writes from cnnlab's ImageSets, so both train
  and test on the same images. Reported: time to 94% test top-1 (cnnlab: wall time of
  ``train()`` until the first evaluation at or above ``--target``; airbench94: its 9.9-epoch run
  plus its TTA evaluation, after one untimed warm-up run as its README advises).
- ``resnet50``: ResNet-50 training throughput at 224x224, bf16 autocast, channels_last, SGD,
  synthetic data (images/s over ``--steps`` steps after warm-up).

    python benchmarks/gpu_bench.py cifar --data-dir DIR [--target 94] [--dry-run]
    python benchmarks/gpu_bench.py resnet50 [--batch-size 256] [--steps 50] [--dry-run]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _toy_set(n, seed, split):
    from cnnlab.data.datasets import ImageSet

    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return ImageSet(x, y, [str(k) for k in range(10)], "toy", split)


def load_cifar(data_dir, download=True):
    """CIFAR-10 (official files, downloaded if missing and online), else the JPEG copy."""
    from cnnlab.data import load_dataset
    from cnnlab.errors import CnnlabError

    try:
        sets = [load_dataset("cifar10", s, data_dir, download=download) for s in ("train", "test")]
        return "cifar10", sets
    except CnnlabError as first:
        try:
            sets = [load_dataset("cifar10-jpeg", s, data_dir) for s in ("train", "test")]
            return "cifar10-jpeg", sets
        except CnnlabError:
            raise first from None


def airbench_files(train_set, test_set, folder: Path) -> None:
    """Write the ImageSets in the format airbench's CifarLoader reads (uint8 NHWC tensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, ds in (("train.pt", train_set), ("test.pt", test_set)):
        torch.save({"images": ds.images.permute(0, 2, 3, 1).contiguous(), "labels": ds.labels,
                    "classes": list(ds.classes)}, folder / name)  # fmt: skip


def run_cnnlab(train_set, test_set, device, target, epochs, dry_run, runs_dir):
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.recipes import get_recipe
    from cnnlab.training.trainer import train

    cfg = TrainConfig(**get_recipe("cifar-fast").config)
    opts = {**cfg.model_options, **({"widths": [8, 16, 16]} if dry_run else {})}
    cfg = cfg.replace(
        data="cifar10", epochs=epochs or cfg.epochs, device=str(device), target_top1=target,
        eval_every=1,
        model_options=opts, runs_dir=runs_dir, name=f"gpu-cifar-fast-{os.getpid()}",
        quiet=True, plots=False, batch_size=min(cfg.batch_size, len(train_set.labels)),
        val_fraction=0.0,
    )  # fmt: skip
    _sync(device)
    t = time.perf_counter()
    # all 50,000 training images, the test split evaluated after every epoch (as airbench
    # reports its accuracy): the first epoch at the target is the time to it
    res = train(cfg, train_set=train_set, eval_set=test_set, test_set=test_set)
    _sync(device)
    wall = time.perf_counter() - t
    hit = next((r for r in res.history if (r["val_top1"] or 0) >= target), None)
    return res, wall, hit


def run_airbench(folder: Path, dry_run: bool):
    """airbench94 on the files in ``folder``; returns (seconds, TTA accuracy %) or a reason."""
    try:
        import airbench
    except ImportError:
        return None, "the airbench package is not installed (pip install airbench)"
    missing = [f for f in ("train94", "CifarLoader", "evaluate") if not hasattr(airbench, f)]
    if missing:
        return None, f"airbench {getattr(airbench, '__version__', '?')} lacks {missing}"
    if dry_run:  # airbench runs on CUDA only: check that its loader reads our files
        loader = airbench.CifarLoader(str(folder), train=False, batch_size=50, gpu="cpu")
        n = len(loader.images)
        return None, f"dry run: airbench importable; its CifarLoader read our {n} test images"
    old = os.getcwd()
    os.chdir(folder.parent)  # train94 reads ./cifar10/{train,test}.pt
    try:
        loader_args = dict(train=True, batch_size=1024, aug=dict(flip=True, translate=2),
                           altflip=True)  # fmt: skip
        with contextlib.redirect_stdout(sys.stderr):  # its one-line table, not for the results
            airbench.warmup94(train_loader=airbench.CifarLoader("cifar10", **loader_args))
        train_loader = airbench.CifarLoader("cifar10", **loader_args)
        test_loader = airbench.CifarLoader("cifar10", train=False, batch_size=2000)
        torch.cuda.synchronize()
        t = time.perf_counter()
        model = airbench.train94(train_loader=train_loader, verbose=False)
        acc = airbench.evaluate(model, test_loader, tta_level=2)
        torch.cuda.synchronize()
        return time.perf_counter() - t, 100 * acc
    finally:
        os.chdir(old)


def cifar(args) -> int:
    device = torch.device("cpu" if args.dry_run else "cuda")
    if args.dry_run:
        name, (train_set, test_set) = "toy", (_toy_set(256, 0, "train"), _toy_set(64, 1, "test"))
    else:
        name, (train_set, test_set) = load_cifar(args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="cnnlab-gpu-"))
    print(f"### CIFAR-10: cnnlab `cifar-fast` vs airbench94 ({name}: {len(train_set)} train, "
          f"{len(test_set)} test images)\n")  # fmt: skip
    res, wall, hit = run_cnnlab(train_set, test_set, device, args.target,
                                1 if args.dry_run else args.epochs, args.dry_run,
                                str(work / "runs"))  # fmt: skip
    final = res.summary["test"]["top1"]
    widths = "/".join(str(g.conv1.out_channels) for g in res.model.groups)
    when = (f"**{hit['wall_seconds']:.1f} s** to {args.target:g}% (epoch {hit['epoch']}, "
            f"{hit['val_top1']:.2f}%)" if hit else f"{args.target:g}% not reached")  # fmt: skip
    print(f"- cnnlab cifar-fast ({widths}): {when}; final top-1 {final:.2f}% "
          f"({res.summary['test']['tta']} TTA), "
          f"{wall:.1f} s wall")  # fmt: skip
    airbench_files(train_set, test_set, work / "cifar10")
    secs, acc = run_airbench(work / "cifar10", args.dry_run)
    if secs is None:
        print(f"- airbench94: not run: {acc}")
    else:
        print(f"- airbench94 (`airbench.train94`, same data): {acc:.2f}% (TTA level 2) in "
              f"{secs:.2f} s (9.9 epochs + evaluation; warm-up run untimed)")  # fmt: skip
    return 0


def resnet50(args) -> int:
    from cnnlab.models import create

    device = torch.device("cpu" if args.dry_run else "cuda")
    size, batch, steps = (64, 2, 1) if args.dry_run else (224, args.batch_size, args.steps)
    torch.backends.cudnn.benchmark = True
    model = create("resnet50").to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-5,
                          **({"fused": True} if device.type == "cuda" else {}))  # fmt: skip
    x = torch.randn(batch, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.randint(0, 1000, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(1 if args.dry_run else 10):
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    ips = steps * batch / (time.perf_counter() - t)
    print(f"### ResNet-50 training at {size}x{size}, bf16 autocast, channels_last\n")
    print(f"- {ips:,.0f} images/s (batch {batch}, {steps} steps after warm-up, fused SGD, "
          f"synthetic data){' [dry run, CPU]' if args.dry_run else ''}")  # fmt: skip
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cifar")
    c.add_argument("--data-dir", default=os.environ.get("CNNLAB_DATA"))
    c.add_argument("--target", type=float, default=94.0)
    c.add_argument("--epochs", type=float, help="cnnlab's epochs [default: the recipe's]")
    r = sub.add_parser("resnet50")
    r.add_argument("--batch-size", type=int, default=256)
    r.add_argument("--steps", type=int, default=50)
    for p in (c, r):
        p.add_argument("--dry-run", action="store_true", help="CPU, toy size: can it start?")
    args = ap.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print(f"{args.cmd}: no CUDA GPU visible (use --dry-run on a CPU)", file=sys.stderr)
        return 2
    return {"cifar": cifar, "resnet50": resnet50}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
