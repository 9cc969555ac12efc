"""Where the time of a LeNet-5 MNIST run goes (the ``lenet5-mnist`` recipe, as
``benchmarks/train_cpu.py`` runs it), in three views:

1. phases of ``train()`` for ``--epochs`` epochs, timed with a step callback: set-up before the
   first step, the optimizer steps, the per-epoch evaluations, and what follows the last one
   (final evaluation, checkpoints, summary);
2. the arithmetic floor: LeNet-5's multiply-adds per training image (3x the forward pass) at
   this CPU's measured float32 matmul peak;
3. the operators of the same run again under ``torch.profiler`` (self CPU time, top ``--top``).

    python benchmarks/profile_lenet.py --data-dir ../shared/data [--epochs 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_cifar import matmul_peak  # noqa: E402


def config(args, name):
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.recipes import get_recipe

    cfg = TrainConfig(**get_recipe("lenet5-mnist").config)
    return cfg.replace(data_dir=args.data_dir, epochs=args.epochs, threads=args.threads,
                       runs_dir=args.runs_dir, name=name, quiet=True, plots=False,
                       seed=0)  # fmt: skip


def phases(args) -> dict:
    from cnnlab.training.trainer import train

    marks = []
    t0 = time.perf_counter()
    res = train(config(args, f"prof-phases-{os.getpid()}"),
                callbacks=[lambda s: marks.append(time.perf_counter())])  # fmt: skip
    t_end = time.perf_counter()
    h = res.history
    steps = sum(r["epoch_seconds"] for r in h)
    total = t_end - t0
    return dict(
        total=total,
        setup=marks[0] - t0,
        steps=steps,
        n_steps=len(marks),
        rest=total - (marks[0] - t0) - steps,
        top1=res.summary["test"]["top1"],
    )


def operators(args, top: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    from cnnlab.training.trainer import train

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(config(args, f"prof-ops-{os.getpid()}"))
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("CNNLAB_DATA", "../shared/data"))
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--skip-ops", action="store_true")
    args = ap.parse_args()
    args.runs_dir = tempfile.mkdtemp(prefix="cnnlab-prof-")
    torch.set_num_threads(args.threads)

    import cnnlab
    from cnnlab.data import load_dataset
    from cnnlab.models import create

    train_set = load_dataset("mnist", "train", args.data_dir)  # decoded once, untimed
    load_dataset("mnist", "test", args.data_dir)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.threads} threads, "
          f"load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}")  # fmt: skip

    # in a fresh interpreter: whatever this script imported first must not hide the cost
    code = ("import time, torch; t = time.perf_counter(); torch.use_deterministic_algorithms("
            "False); print(f'{time.perf_counter() - t:.2f}')")  # fmt: skip
    secs = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    print(f"torch.use_deterministic_algorithms(False), first call in a fresh process: "
          f"{secs.strip()} s (it imports torch._dynamo; train() calls it)")  # fmt: skip

    p = phases(args)
    print(f"\n1. train(), {args.epochs:g} epoch(s), {p['n_steps']} steps: {p['total']:.2f} s; "
          f"test top-1 {p['top1']:.2f}%")  # fmt: skip
    for k, what in (
        ("setup", "set-up until the first step ends (model, pipeline, ...)"),
        ("steps", "epochs of steps (data gather + preprocess + fwd/bwd/step)"),
        ("rest", "evaluations, checkpoints, final test, summary"),
    ):
        print(f"   {what:<62} {p[k]:6.2f} s  {100 * p[k] / p['total']:5.1f}%")  # fmt: skip
    per_step = p["steps"] / p["n_steps"]
    print(f"   per step: {1e3 * per_step:.2f} ms")

    macs = cnnlab.summary(create("lenet5"), (1, 32, 32)).totals["macs"]
    peak = matmul_peak(torch.device("cpu"))
    n = len(train_set.labels) * args.epochs
    floor = 2 * 3 * macs * n / peak
    print(f"\n2. arithmetic: {macs / 1e6:.2f} M multiply-adds per forward image; "
          f"{n:.0f} training images x 3 = {2 * 3 * macs * n / 1e9:.1f} GFLOP; at the matmul "
          f"peak {peak / 1e9:.1f} GFLOP/s: {floor:.2f} s (the steps took "
          f"{p['steps'] / floor:.1f}x that)")  # fmt: skip

    if not args.skip_ops:
        print("\n3. operators of the same run again (torch.profiler, self CPU time):")
        print(operators(args, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
