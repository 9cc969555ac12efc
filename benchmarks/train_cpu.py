"""LeNet-5 to 99.0% MNIST test accuracy on this CPU: cnnlab vs a typical course loop.

Both sides train the same model (cnnlab's ``lenet5``), from the same initial weights, with the
same optimizer, learning-rate schedule, batch size and preprocessing (28x28 padded to 32x32,
standardised with the training set's mean/std), evaluating on the 10,000 test images after
every epoch and stopping at the first epoch that reaches the target:

- **cnnlab**: ``cnnlab.training.train`` with the ``lenet5-mnist`` recipe (uint8 tensors in
  memory, one gather per batch, batch-level preprocessing, channels_last), and the same again
  with channels_last off ("cnnlab NCHW") to show what the memory format alone is worth;
- **course loop**: ``torchvision.datasets.MNIST`` + ``DataLoader`` with per-image
  ``transforms.Compose([Pad(2), ToTensor(), Normalize(mean, std)])``, the loop most lecture
  notebooks use.

Usage (needs the MNIST files, e.g. ``/work/shared/data/MNIST/raw/*.gz``)::

    python benchmarks/train_cpu.py --data-dir ../shared/data [--target 99.0]

Prints the wall time of each to the target and the ratio. Times include everything after the
data files are read once (dataset construction, training, evaluation), not Python start-up.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_cnnlab(args, threads: int, channels_last: bool = True):
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.recipes import get_recipe
    from cnnlab.training.trainer import train

    cfg = TrainConfig(**get_recipe("lenet5-mnist").config)
    name = f"bench-lenet5-mnist-{os.getpid()}-{'nhwc' if channels_last else 'nchw'}"
    cfg = cfg.replace(data_dir=args.data_dir, target_top1=args.target, name=name,
                      runs_dir=str(args.runs_dir), threads=threads, quiet=not args.verbose,
                      seed=args.seed, channels_last=channels_last, plots=False,
                      val_fraction=0.0)  # fmt: skip
    t = time.perf_counter()
    # A time-to-accuracy benchmark (DAWNBench style): both sides train on all 60,000 images
    # and watch the test split each epoch, so here the test split is passed as the split the
    # trainer evaluates every epoch. A real run keeps the test split for the end.
    from cnnlab.data import load_dataset

    get = dict(data_dir=args.data_dir)
    tr, te = load_dataset("mnist", "train", **get), load_dataset("mnist", "test", **get)
    res = train(cfg, train_set=tr, eval_set=te)
    wall = time.perf_counter() - t
    hist = res.history
    return {"wall": wall, "epochs": len(hist), "top1": hist[-1]["val_top1"],
            "reached": res.status == "target-reached", "cfg": cfg}  # fmt: skip


def _torchvision_root(data_dir: str) -> Path:
    """torchvision's MNIST reads <root>/MNIST/raw/<name> uncompressed: gunzip into a temp dir."""
    root = Path(tempfile.mkdtemp(prefix="cnnlab-bench-mnist-"))
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (Path(data_dir) / "MNIST" / "raw").glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root


def run_course_loop(args, cfg, threads: int):
    """The typical lecture loop, same model/optimizer/schedule as cnnlab's run."""
    import torchvision
    from torch.utils.data import DataLoader
    from torchvision import transforms

    from cnnlab._util import derive_seed
    from cnnlab.data import Preprocessor, load_dataset
    from cnnlab.models import create
    from cnnlab.training.regularization import param_groups
    from cnnlab.training.schedule import Schedule

    torch.set_num_threads(threads)
    root = _torchvision_root(args.data_dir)
    try:
        # the same statistics cnnlab fits (train split, [0, 1] scale)
        pre = Preprocessor("standardize").fit(load_dataset("mnist", "train", args.data_dir))
        mean, std = pre.mean.tolist(), pre.std.tolist()
        t0 = time.perf_counter()
        tf = transforms.Compose([transforms.Pad(2), transforms.ToTensor(),
                                 transforms.Normalize(mean, std)])  # fmt: skip
        train_ds = torchvision.datasets.MNIST(str(root), train=True, transform=tf)
        test_ds = torchvision.datasets.MNIST(str(root), train=False, transform=tf)
        g = torch.Generator().manual_seed(args.seed)
        train_dl = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                              generator=g)  # fmt: skip
        test_dl = DataLoader(test_ds, batch_size=1000)
        torch.manual_seed(derive_seed(cfg.seed, "init"))  # cnnlab's initial weights
        model = create("lenet5")
        groups = param_groups(model, cfg.weight_decay, cfg.lr)  # decay weights, not biases
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                              nesterov=cfg.optimizer == "nesterov")  # fmt: skip
        steps = len(train_dl)
        sched = Schedule(cfg.schedule, round(steps * cfg.epochs), round(cfg.warmup * steps),
                         final=cfg.final_lr_fraction)  # fmt: skip
        for gr in opt.param_groups:
            gr["base_lr"] = cfg.lr
        step, top1, epoch = 0, 0.0, 0
        for epoch in range(1, int(cfg.epochs) + 1):
            model.train()
            for x, y in train_dl:
                sched.apply(opt, step)
                loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
            model.eval()
            correct = 0
            with torch.no_grad():
                for x, y in test_dl:
                    correct += (model(x).argmax(1) == y).sum().item()
            top1 = 100.0 * correct / len(test_ds)
            if args.verbose:
                print(f"  course loop epoch {epoch}: top-1 {top1:.2f}%  "
                      f"{time.perf_counter() - t0:.1f}s", flush=True)  # fmt: skip
            if top1 >= args.target:
                break
        return {"wall": time.perf_counter() - t0, "epochs": epoch, "top1": top1,
                "reached": top1 >= args.target}  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _line(who: str, r: dict) -> str:
    miss = "" if r["reached"] else "  (target NOT reached)"
    return f"{who:<12}: {r['wall']:7.1f} s, {r['epochs']} epochs, top-1 {r['top1']:.2f}%{miss}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("CNNLAB_DATA", "../shared/data"))
    ap.add_argument("--target", type=float, default=99.0)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir", default=tempfile.mkdtemp(prefix="cnnlab-bench-runs-"))
    ap.add_argument("--skip-course", action="store_true", help="only time cnnlab")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    from cnnlab.data import load_dataset

    load_dataset("mnist", "train", args.data_dir)  # decode once into the cache, untimed
    load_dataset("mnist", "test", args.data_dir)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_name()}, "
          f"{args.threads} threads, torch {torch.__version__}")  # fmt: skip
    print(f"target: {args.target:.1f}% MNIST test top-1, LeNet-5 (lenet5), within the "
          f"lenet5-mnist recipe's schedule")  # fmt: skip
    ours = run_cnnlab(args, args.threads)
    print(_line("cnnlab", ours), flush=True)
    nchw = run_cnnlab(args, args.threads, channels_last=False)
    print(_line("cnnlab NCHW", nchw) + "  (same, channels_last off)", flush=True)
    if args.skip_course:
        return 0
    course = run_course_loop(args, ours["cfg"], args.threads)
    print(_line("course loop", course))
    ratio = course["wall"] / ours["wall"]
    per_epoch = (course["wall"] / course["epochs"]) / (ours["wall"] / ours["epochs"])
    print(f"ratio       : cnnlab {ratio:.2f}x faster to target "
          f"({per_epoch:.2f}x per epoch incl. evaluation); "
          f"NCHW cnnlab {course['wall'] / nchw['wall']:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
