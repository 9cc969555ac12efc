"""CIFAR-10 (JPEG) with the ``cifar-fast`` recipe: time, accuracy and FLOP/s on this machine.

On the CPU (the moonshot: 90% in under 30 minutes on 2 cores) it

1. measures this CPU's own float32 matmul peak (best of several ``torch.mm`` of 2048x2048);
2. measures the training throughput of ``cifar-fast-net`` at the chosen widths for a few steps
   and picks the number of epochs that fits ``--budget-min`` (or takes ``--epochs``);
3. trains with the ``cifar-fast`` recipe (whitened first conv, BN, label smoothing 0.2,
   alternating flips, Nesterov SGD one-cycle, flip TTA) and prints wall time, test top-1 and
   the FLOP/s reached (2 FLOPs per multiply-add; a training step counted as 3x the forward
   pass) as a fraction of the matmul peak.

Where a CUDA GPU is present it also trains the full-width recipe on the GPU, and, when the PyPI
package ``airbench`` is importable and offers ``train94``, runs it on the same machine for
comparison (airbench reads the genuine CIFAR-10, not the JPEG copy: say so when quoting).

Usage::

    python benchmarks/train_cifar.py --data-dir ../shared/data --budget-min 30
    python benchmarks/train_cifar.py --data-dir ../shared/data --epochs 2 --widths 32,64,128

The data set is CIFAR-10 re-encoded as JPEG (lossy; see ../shared/data/README.md): accuracy on
it is close to, but not the same as, accuracy on CIFAR-10.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
import torch.nn.functional as F


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def matmul_peak(device, n: int = 2048, reps: int = 8) -> float:
    """Best float32 ``torch.mm`` rate (FLOP/s) of ``reps`` n x n products on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
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


def throughput(widths, batch: int, device, steps: int = 6) -> float:
    """Training images/s of cifar-fast-net (forward + backward + SGD step) on random data."""
    from cnnlab.models import create

    m = create("cifar-fast-net", num_classes=10, in_channels=3, widths=widths).to(device)
    m = m.to(memory_format=torch.channels_last)  # as the trainer runs it
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    for i in range(steps + 2):
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t)


def run_recipe(args, device, widths, epochs, batch):
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.recipes import get_recipe
    from cnnlab.training.trainer import train

    cfg = TrainConfig(**get_recipe("cifar-fast").config)
    cfg = cfg.replace(
        data="cifar10-jpeg", data_dir=args.data_dir, epochs=epochs, batch_size=batch,
        model_options={"widths": list(widths)}, device=str(device), threads=args.threads,
        runs_dir=args.runs_dir, name=f"bench-cifar-fast-{device.type}-{os.getpid()}",
        quiet=not args.verbose, eval_every=max(1, int(epochs)),
    )  # fmt: skip
    t = time.perf_counter()
    res = train(cfg)
    return res, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("CNNLAB_DATA", "../shared/data"))
    ap.add_argument("--budget-min", type=float, default=30.0, help="CPU training budget")
    ap.add_argument("--epochs", type=float, help="fixed epoch count (skips the budget fit)")
    ap.add_argument("--widths", default="32,64,128", help="CPU widths of the three conv groups")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--runs-dir", default=tempfile.mkdtemp(prefix="cnnlab-bench-cifar-"))
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from cnnlab.data import load_dataset

    t = time.perf_counter()
    train_set = load_dataset("cifar10-jpeg", "train", args.data_dir)
    load_dataset("cifar10-jpeg", "test", args.data_dir)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_name()}, "
          f"{args.threads} threads, torch {torch.__version__}")  # fmt: skip
    print(f"data: CIFAR-10 (JPEG), {len(train_set)} train images, "
          f"loaded/decoded in {time.perf_counter() - t:.1f}s (untimed below)")  # fmt: skip

    if not args.skip_cpu:
        cpu = torch.device("cpu")
        widths = tuple(int(w) for w in args.widths.split(","))
        peak = matmul_peak(cpu)
        f_img = flops_per_image(widths)
        ips = throughput(widths, args.batch_size, cpu)
        epochs = args.epochs
        if epochs is None:  # what fits the budget, keeping ~10% for evaluation and set-up
            epochs = max(1, int(0.9 * args.budget_min * 60 * ips / len(train_set)))
        print(f"cpu matmul peak: {peak / 1e9:.1f} GFLOP/s (float32 torch.mm 2048^2)")
        print(f"cifar-fast-net widths {widths}: {f_img / 1e6:.1f} MFLOP/image forward, "
              f"{ips:.0f} train images/s measured -> {epochs:g} epochs")  # fmt: skip
        res, wall = run_recipe(args, cpu, widths, epochs, args.batch_size)
        seen = res.summary["steps"] * args.batch_size
        n_val = res.summary["splits"]["validation"]["images"]
        n_eval = n_val * len(res.history) + 10_000 * 2  # validation each epoch, test TTA x2
        total = 3 * f_img * seen + f_img * n_eval
        s = res.summary
        print(f"CPU result: test top-1 {s['test']['top1']:.2f}% (flip TTA) after {s['epochs']} "
              f"epochs in {wall / 60:.1f} min ({s['wall_seconds']:.0f}s in train())")  # fmt: skip
        print(f"FLOP/s reached: {total / wall / 1e9:.1f} GFLOP/s = "
              f"{100 * total / wall / peak:.0f}% of the matmul peak")  # fmt: skip
        print(f"moonshot (90% in 30 min on 2 cores): "
              f"{'MET' if s['test']['top1'] >= 90 and wall <= 1800 else 'not met'}")  # fmt: skip

    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        print(f"GPU: {torch.cuda.get_device_name(0)}")
        res, wall = run_recipe(args, gpu, (64, 256, 256), args.epochs or 10, 512)
        print(f"cifar-fast (GPU, widths 64/256/256): test top-1 {res.summary['test']['top1']:.2f}% "
              f"in {wall:.1f}s")  # fmt: skip
        try:
            import airbench
        except ImportError:
            print("airbench is not importable (pip install airbench): comparison skipped")
        else:
            if hasattr(airbench, "train94"):
                t = time.perf_counter()
                out = airbench.train94()
                print(f"airbench94: {time.perf_counter() - t:.1f}s, returned {out!r:.200}")
            else:
                print(f"airbench {getattr(airbench, '__version__', '?')} has no train94: skipped")
    else:
        print("no CUDA GPU here: the GPU comparison with airbench94 was not run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
