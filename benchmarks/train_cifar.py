"""CIFAR-10 (JPEG) on this CPU: cnnlab's ``cifar-fast`` recipe against two peers under the same
wall-clock budget, and its time, accuracy and FLOP/s.

``--budget-min N`` (the default, 10 minutes) runs, one after another in this process and on the
same data (the ImageSets loaded once):

1. **cnnlab**: the ``cifar-fast`` recipe (``cifar-fast-net`` at ``--widths``; whitened first
   conv, identity-initialised convs, BN without scale, Muon on the conv filters and Nesterov
   SGD on the rest, label smoothing 0.2, alternating flips, flip+shift TTA);
2. **airbench94 port**: Keller Jordan's airbench94 network and hyper-parameters ported to the
   CPU, in bf16 autocast as cnnlab trains (benchmarks/cifar_peers.py says what was ported and
   the source; ``--peers ...,airbench94`` adds the float32 form);
3. **course**: a typical course recipe, ResNet-20 with SGD, flip-crop and a per-image DataLoader;

each for N minutes of wall time, counted from its first line of work to its test accuracy, on
one clock (cnnlab's ``Budget``, as ``cnnlab train --budget-min``): each schedule runs on the
share of the budget spent and training stops in time for the test pass; the table gives each
one's test top-1, epochs and wall time, and flags a run that overshot its budget by more than
10%. ``--peers``
picks contestants; ``--train-subset``/``--test-subset`` make a quick smoke run.

``--epochs E`` instead trains cnnlab's recipe alone for E epochs. Both modes print this CPU's
float32 matmul peak (best ``torch.mm`` 2048x2048) and the FLOP/s cnnlab's run reached (2 FLOPs
per multiply-add; a training step counted as 3x the forward pass) as a share of it.

The GPU comparison with the ``airbench`` package is ``benchmarks/gpu.sh``.

Usage::

    python benchmarks/train_cifar.py --data-dir ../shared/data --budget-min 10
    python benchmarks/train_cifar.py --data-dir ../shared/data --budget-min 0.5 \\
        --train-subset 5000 --test-subset 1000            # a smoke run, about 2 minutes
    python benchmarks/train_cifar.py --data-dir ../shared/data --epochs 2 --widths 32,64,128

The data set is CIFAR-10 re-encoded as JPEG (lossy; see ../shared/data/README.md): accuracy on
it is close to, but not the same as, accuracy on CIFAR-10. Timed figures depend on what else
runs on the machine: the header prints the load average.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from cnnlab._util import cpu_name
from cnnlab.training.recipes import get_recipe


def matmul_peak(device, dtype=torch.float32, n: int = 2048, reps: int = 8) -> float:
    """Best ``torch.mm`` rate (FLOP/s) of ``reps`` n x n products in ``dtype`` on ``device``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def flops_per_image(widths, num_classes=10) -> float:
    """Forward FLOPs of one 3x32x32 image (2 per multiply-add), from cnnlab.summary."""
    import cnnlab
    from cnnlab.models import create

    m = create("cifar-fast-net", num_classes=num_classes, in_channels=3, widths=widths)
    return 2.0 * cnnlab.summary(m, (3, 32, 32)).totals["macs"]


def recipe_config(args, device, widths, epochs, batch, budget_min=0.0):
    """The ``cifar-fast`` recipe's config for this run: the recipe's model options with
    ``--widths``, every training image (no validation split), this run's folder and threads."""
    from cnnlab.training.config import TrainConfig

    cfg = TrainConfig(**RECIPE)
    return cfg.replace(
        data="cifar10-jpeg", data_dir=args.data_dir, epochs=epochs, batch_size=batch,
        budget_min=budget_min, model_options={**cfg.model_options, "widths": list(widths)},
        device=str(device), threads=args.threads, runs_dir=args.runs_dir,
        name=f"bench-cifar-fast-{device.type}-{os.getpid()}", amp=args.amp,
        quiet=not args.verbose, seed=args.seed, val_fraction=0.0, plots=False,
    )  # fmt: skip


def run_recipe(args, device, widths, epochs, batch, train_set=None, test_set=None,
               budget_min=0.0):  # fmt: skip
    """cnnlab's recipe through the trainer: ``epochs`` epochs, or ``budget_min`` minutes of wall
    time (``cnnlab train --budget-min``)."""
    from cnnlab.training.trainer import train

    cfg = recipe_config(args, device, widths, epochs, batch, budget_min)
    # no validation split: it trains on every training image, as the peers do, and the test
    # split is scored once at the end (with the recipe's TTA)
    t = time.perf_counter()
    res = train(cfg, train_set=train_set, test_set=test_set)
    return res, time.perf_counter() - t


def flops_report(f_img, res, batch, wall, peaks: dict) -> str:
    """FLOP/s of a cnnlab run and its share of each matmul peak (float32, bfloat16)."""
    from cnnlab.data.tta import tta_view_count

    seen = res.summary["steps"] * batch
    n_eval = tta_view_count(RECIPE["tta"]) * res.summary["test"]["n"]  # the final test pass
    rate = (3 * f_img * seen + f_img * n_eval) / wall
    shares = ", ".join(f"{100 * rate / p:.0f}% of the {k} matmul peak" for k, p in peaks.items())
    return f"{rate / 1e9:.1f} GFLOP/s = {shares}"


def run_cnnlab(args, train_set, test_set, widths, budget_s):
    """cnnlab's recipe for a wall-clock budget: the trainer's own clock (``--budget-min``)
    runs the one-cycle schedule on the share of the budget spent and stops in time for the
    test pass."""
    res, wall = run_recipe(args, torch.device("cpu"), widths, RECIPE["epochs"], args.batch_size,
                           train_set, test_set, budget_min=budget_s / 60)  # fmt: skip
    per_epoch = len(train_set.labels) // args.batch_size
    return dict(name=f"cnnlab cifar-fast ({'/'.join(map(str, widths))})",
                top1=res.summary["test"]["top1"], steps=res.summary["steps"],
                epochs=res.summary["steps"] / per_epoch, train_s=wall, wall_s=wall,
                run=res)  # fmt: skip


def subset(ds, n, seed):
    if not n or n >= len(ds.labels):
        return ds
    return ds.subset(
        torch.randperm(len(ds.labels), generator=torch.Generator().manual_seed(seed))[:n]
    )


# the default race: the airbench94 port in bf16 autocast, as cnnlab trains (in float32, as
# airbench's float16 becomes on a CPU, it runs 7x slower here: `airbench94`, on request)
PEERS = ("cnnlab", "airbench94-bf16", "course")
CONTESTANTS = (*PEERS, "airbench94")
RECIPE = get_recipe("cifar-fast").config


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("CNNLAB_DATA", "../shared/data"))
    ap.add_argument("--budget-min", type=float, default=10.0,
                    help="wall-clock minutes for each contestant")  # fmt: skip
    ap.add_argument("--epochs", type=float, help="cnnlab's recipe alone for this many epochs")
    ap.add_argument("--peers", default=",".join(PEERS), help="contestants, in order")
    ap.add_argument("--widths", default="64,256,256", help="cnnlab's widths of the 3 conv groups")
    ap.add_argument("--batch-size", type=int, default=RECIPE["batch_size"],
                    help="cnnlab's batch size [the recipe's]")  # fmt: skip
    ap.add_argument("--amp", action=argparse.BooleanOptionalAction, default=RECIPE["amp"],
                    help="bf16 autocast [the recipe's: on]; --no-amp: float32")  # fmt: skip
    ap.add_argument("--train-subset", type=int, help="train on this many images (smoke runs)")
    ap.add_argument("--test-subset", type=int, help="test on this many images (smoke runs)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(CONTESTANTS))
    if unknown or not peers:
        ap.error(f"--peers takes some of {','.join(CONTESTANTS)}; got {args.peers!r}")
    if args.budget_min <= 0:
        ap.error("--budget-min must be positive")
    args.runs_dir = args.runs_dir or tempfile.mkdtemp(prefix="cnnlab-bench-cifar-")
    torch.set_num_threads(args.threads)

    from cnnlab.data import load_dataset

    t = time.perf_counter()
    train_set = subset(load_dataset("cifar10-jpeg", "train", args.data_dir), args.train_subset,
                       args.seed)  # fmt: skip
    test_set = subset(load_dataset("cifar10-jpeg", "test", args.data_dir), args.test_subset,
                      args.seed)  # fmt: skip
    load = os.getloadavg()[0]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# {stamp}, {cpu_name()}, {args.threads} threads, torch {torch.__version__}, "
          f"load average {load:.1f}")  # fmt: skip
    print(f"data: CIFAR-10 (JPEG), {len(train_set)} train / {len(test_set)} test images, "
          f"loaded/decoded in {time.perf_counter() - t:.1f}s (untimed below)")  # fmt: skip

    cpu = torch.device("cpu")
    widths = tuple(int(w) for w in args.widths.split(","))
    peaks = {"float32": matmul_peak(cpu), "bfloat16": matmul_peak(cpu, torch.bfloat16)}
    f_img = flops_per_image(widths)
    print(f"cpu matmul peaks (torch.mm 2048^2): float32 {peaks['float32'] / 1e9:.1f}, bfloat16 "
          f"{peaks['bfloat16'] / 1e9:.1f} GFLOP/s; cifar-fast-net {widths}: "
          f"{f_img / 1e6:.1f} MFLOP/image forward; cnnlab in "
          f"{'bf16 autocast' if args.amp else 'float32'}")  # fmt: skip

    if args.epochs is not None:  # cnnlab alone, a fixed number of epochs
        res, wall = run_recipe(args, cpu, widths, args.epochs, args.batch_size, train_set,
                               test_set)  # fmt: skip
        s = res.summary
        print(f"CPU result: test top-1 {s['test']['top1']:.2f}% ({RECIPE['tta']} TTA) after "
              f"{s['epochs']} "
              f"epochs in {wall / 60:.1f} min ({s['wall_seconds']:.0f}s in train())")  # fmt: skip
        print(f"FLOP/s reached: {flops_report(f_img, res, args.batch_size, wall, peaks)}")
        return 0

    import cifar_peers

    budget = 60 * args.budget_min
    print(f"budget: {args.budget_min:g} min of wall time for each of {', '.join(peers)}")
    runners = {
        "cnnlab": lambda: run_cnnlab(args, train_set, test_set, widths, budget),
        "airbench94": lambda: cifar_peers.train_airbench94(train_set, test_set, budget,
                                                           seed=args.seed),
        "airbench94-bf16": lambda: cifar_peers.train_airbench94(train_set, test_set, budget,
                                                                seed=args.seed, amp=True),
        "course": lambda: cifar_peers.train_course(train_set, test_set, budget, seed=args.seed),
    }  # fmt: skip
    results = {}
    for name in peers:
        r = results[name] = runners[name]()
        flag = "  OVER BUDGET (>10%)" if cifar_peers.over_budget(r, budget) else ""
        print(f"  {r['name']:<46} top-1 {r['top1']:6.2f}%  {r['epochs']:6.2f} epochs  "
              f"{r['steps']:6d} steps  {r['wall_s'] / 60:5.2f} min{flag}", flush=True)  # fmt: skip
        if name == "cnnlab":
            rep = flops_report(f_img, r["run"], args.batch_size, r["wall_s"], peaks)
            print(f"    cnnlab FLOP/s reached: {rep}")
    if "cnnlab" in results and len(results) > 1:
        others = [r for k, r in results.items() if k != "cnnlab"]
        ahead = all(results["cnnlab"]["top1"] > r["top1"] for r in others)
        print(f"cnnlab ahead of {', '.join(k for k in results if k != 'cnnlab')} at "
              f"{args.budget_min:g} min: {'yes' if ahead else 'NO'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
