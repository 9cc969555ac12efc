"""Speed of the scratch NumPy engine, measured side by side in one run.

Prints, per case, the median time of cnnlab.scratch and of the reference, and their ratio:

1. Conv2D forward and backward (dx, dk, db) against PyTorch's CPU convolution (target: <= 2x);
2. one LeNet-5 training step (forward, loss, backward, Adam) against PyTorch (target: <= 2x);
3. Conv2D forward and backward against numpy-ml's Conv2D (target: scratch 5x faster or better);
4. the naive loops (Conv2DNaive) against the fast path (target: fast 100x or more, forward);
5. the input gradient by col2im (used) against the transposed-convolution formulation;
6. Conv2D's two layouts against each other (``method="banded"`` vs ``"im2col"``), with the
   one ``method="auto"`` picks marked: the evidence for its rule.

Timings interleave the two contestants repeat by repeat, so that load from other processes
on a shared machine hits both alike; each figure is the median. Both use the same number of
threads (``--threads``, default 1: BLAS via threadpoolctl, torch via set_num_threads).
``--clock cpu`` times with the calling thread's CPU time instead of the wall clock: with one
thread per side it leaves out the time another process held the core, the fairer clock on a
shared machine (it still shares caches and memory bandwidth with the neighbours).

    python benchmarks/scratch_speed.py [--threads 1] [--repeats 15] [--clock wall|cpu] [--quick]
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from cnnlab.scratch import Adam, Conv2D, Conv2DNaive, build
from cnnlab.scratch.layers import transposed_conv_input_grad

# (name, batch, h, w, xchn, ychn, ksize, stride, padding)
CONVS = [
    ("LeNet conv1 28x28 1->6 k5 same", 128, 28, 28, 1, 6, 5, 1, "same"),
    ("LeNet conv2 14x14 6->16 k5 valid", 128, 14, 14, 6, 16, 5, 1, "valid"),
    ("32x32 16->32 k3 same", 32, 32, 32, 16, 32, 3, 1, "same"),
    ("32x32 16->32 k3 same stride 2", 32, 32, 32, 16, 32, 3, 2, "same"),
]


CLOCK = time.perf_counter  # --clock cpu: time.thread_time


def interleaved(fns, repeats):
    """Median seconds of each function, calling them in turn ``repeats`` times (after a warm-up)."""
    for f in fns:
        f()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for t, f in zip(times, fns):
            t0 = CLOCK()
            f()
            t.append(CLOCK() - t0)
    return [float(np.median(t)) for t in times]


def numpy_ml_conv():
    """numpy-ml's Conv2D; its package still imports ``collections.Hashable`` (removed in Python
    3.10), so restore those aliases first. Returns the class, or None if it is not installed."""
    for name in ("Hashable", "Iterable", "Mapping", "MutableMapping", "Sequence"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    try:
        from numpy_ml.neural_nets.layers import Conv2D as NmlConv2D
    except ImportError:
        return None
    return NmlConv2D


def row(name, ours, theirs, target):
    ratio = theirs / ours
    print(f"  {name:<44} {ours * 1e3:9.2f} ms {theirs * 1e3:10.2f} ms  {ratio:7.2f}x  {target}")


def conv_vs_torch(repeats):
    print("\n1. Conv2D vs PyTorch (CPU): speed-up = torch time / scratch time (target >= 0.5x)")
    print(f"  {'case':<44} {'scratch':>12} {'torch':>13} {'speed-up':>8}")
    for case in CONVS:
        _conv_vs_torch(case, repeats)


def _conv_vs_torch(case, repeats):
    name, mb, h, w, c, o, k, s, p = case
    rng = np.random.default_rng(0)
    layer = Conv2D(c, o, k, s, p, rng=rng)
    x = rng.standard_normal((mb, h, w, c)).astype(np.float32)
    y = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    (pt, pb), (pl, pr) = layer.pads((h, w))
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    wt = torch.tensor(layer.params["w"].transpose(3, 2, 0, 1).copy(), requires_grad=True)
    bt = torch.zeros(o, requires_grad=True)
    dyt = torch.tensor(dy.transpose(0, 3, 1, 2).copy())

    def t_fwd():
        with torch.no_grad():
            return F.conv2d(F.pad(xt, (pl, pr, pt, pb)), wt, bt, stride=s)

    yt = F.conv2d(F.pad(xt, (pl, pr, pt, pb)), wt, bt, stride=s)
    ours_f, torch_f = interleaved([lambda: layer.forward(x, True), t_fwd], repeats)
    layer.forward(x, True)
    ours_b, torch_b = interleaved(
        [
            lambda: layer.backward(dy),
            lambda: torch.autograd.grad(yt, (xt, wt, bt), dyt, retain_graph=True),
        ],
        repeats,
    )
    row(name + "  forward", ours_f, torch_f, "")
    row(name + "  backward", ours_b, torch_b, "")
    row(name + "  fwd+bwd", ours_f + ours_b, torch_f + torch_b, "<- target >= 0.5x")


def lenet_step_vs_torch(repeats, mb=128):
    print(f"\n2. One LeNet-5 training step (batch {mb}, Adam) vs PyTorch (target >= 0.5x)")
    rng = np.random.default_rng(0)
    model, opt = build("lenet5", (28, 28, 1), 10), Adam(1e-3)
    x = rng.standard_normal((mb, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, mb)
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )
    topt = torch.optim.Adam(net.parameters(), 1e-3)
    xt, yt = torch.tensor(x.transpose(0, 3, 1, 2).copy()), torch.tensor(y)

    def torch_step():
        topt.zero_grad()
        F.cross_entropy(net(xt), yt).backward()
        topt.step()

    ours, theirs = interleaved([lambda: model.train_step(x, y, opt), torch_step], repeats)
    row("LeNet-5 step", ours, theirs, "<- target >= 0.5x")


def conv_vs_numpy_ml(repeats):
    print("\n3. Conv2D vs numpy-ml's Conv2D (same NHWC layout; target: speed-up >= 5x)")
    nml = numpy_ml_conv()
    if nml is None:
        print("  numpy-ml is not installed (pip install numpy-ml): skipped")
        return
    for case in CONVS[:3]:
        _conv_vs_numpy_ml(nml, case, repeats)


def _conv_vs_numpy_ml(nml, case, repeats):
    name, mb, h, w, c, o, k, s, p = case
    rng = np.random.default_rng(0)
    layer = Conv2D(c, o, k, s, p, rng=rng)
    x = rng.standard_normal((mb, h, w, c)).astype(np.float32)
    ref = nml(out_ch=o, kernel_shape=(k, k), pad=p if p == "same" else 0, stride=s)
    y_ref = ref.forward(x)  # builds its parameters on the first call
    ref.parameters["W"] = layer.params["w"].copy()
    ref.parameters["b"] = layer.params["b"].reshape(1, 1, 1, -1).copy()
    y_ref = ref.forward(x)
    y = layer.forward(x, True)
    assert np.allclose(y, y_ref, atol=1e-3), "numpy-ml computes a different convolution"
    dy = rng.standard_normal(y.shape).astype(np.float32)
    ours_f, ref_f = interleaved([lambda: layer.forward(x, True), lambda: ref.forward(x)], repeats)
    layer.forward(x, True)
    ours_b, ref_b = interleaved([lambda: layer.backward(dy), lambda: ref.backward(dy)], repeats)
    row(name + "  forward", ours_f, ref_f, "")
    row(name + "  backward", ours_b, ref_b, "")
    row(name + "  fwd+bwd", ours_f + ours_b, ref_f + ref_b, "<- target >= 5x")


def col2im_vs_transposed(repeats):
    print("\n5. Conv2D input gradient: im2col's col2im (used) vs transposed convolution (one GEMM)")
    for case in CONVS:
        _col2im_vs_transposed(case, repeats)


def _col2im_vs_transposed(case, repeats):
    name, mb, h, w, c, o, k, s, p = case
    rng = np.random.default_rng(0)
    layer = Conv2D(c, o, k, s, p, rng=rng, method="im2col")
    x = rng.standard_normal((mb, h, w, c)).astype(np.float32)
    dy = rng.standard_normal(layer.forward(x, True).shape).astype(np.float32)
    dy2 = dy.reshape(-1, o)
    ours, alt = interleaved(
        [
            lambda: layer._input_grad(dy2, dy.shape, x.shape),
            lambda: transposed_conv_input_grad(layer, dy, x.shape),
        ],
        repeats,
    )
    row(name + "  dx", ours, alt, "")


def banded_vs_im2col(repeats):
    print("\n6. Conv2D layouts: im2col vs banded rows (speed-up = im2col / banded; *: auto's pick)")
    extra = [
        ("32x32 3->16 k5 same", 32, 32, 32, 3, 16, 5, 1, "same"),
        ("16x16 32->32 k3 same", 32, 16, 16, 32, 32, 3, 1, "same"),
        ("8x8 64->64 k3 same", 32, 8, 8, 64, 64, 3, 1, "same"),
    ]
    for name, mb, h, w, c, o, k, s, p in CONVS + extra:
        rng = np.random.default_rng(0)
        band = Conv2D(c, o, k, s, p, rng=rng, method="banded")
        cols = Conv2D(c, o, k, s, p, method="im2col")
        cols.params = band.params
        x = rng.standard_normal((mb, h, w, c)).astype(np.float32)
        dy = rng.standard_normal(band.forward(x, True).shape).astype(np.float32)

        def step(layer, x=x, dy=dy):
            layer.forward(x, True)
            layer.backward(dy)

        b, i = interleaved([lambda f=band: step(f), lambda f=cols: step(f)], repeats)
        wp = sum(band.pads((h, w))[1]) + w
        pick = "banded *" if Conv2D(c, o, k, s, p).use_banded(wp) else "im2col *"
        row(name + "  fwd+bwd", b, i, pick)


def naive_vs_fast(repeats):
    print(
        "\n4. Conv2D fast path vs the naive loops (Conv2DNaive; target: speed-up >= 100x forward)"
    )
    for case in CONVS[:2]:
        _naive_vs_fast(case, repeats)


def _naive_vs_fast(case, repeats):
    name, _, h, w, c, o, k, s, p = case
    mb = 16  # the loops are slow; a smaller batch keeps the run short
    rng = np.random.default_rng(0)
    fast = Conv2D(c, o, k, s, p, rng=rng)
    naive = Conv2DNaive(c, o, k, s, p, rng=rng)
    naive.params = fast.params
    x = rng.standard_normal((mb, h, w, c)).astype(np.float32)
    y = fast.forward(x, True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    f, n = interleaved(
        [lambda: fast.forward(x, True), lambda: naive.forward(x, True)], max(3, repeats // 5)
    )
    fast.forward(x, True)
    naive.forward(x, True)
    fb, nb = interleaved(
        [lambda: fast.backward(dy), lambda: naive.backward(dy)], max(3, repeats // 5)
    )
    row(f"{name} (batch {mb})  forward", f, n, "<- target >= 100x")
    row(f"{name} (batch {mb})  backward", fb, nb, "")


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads for both sides")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="3 repeats (a smoke run)")
    ap.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="wall clock or thread CPU time"
    )
    args = ap.parse_args()
    repeats = 3 if args.quick else args.repeats
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"cnnlab.scratch speed: {platform.machine()}, {os.cpu_count()} cores, "
        f"{args.threads} thread(s) each side, load average {load:.1f}; numpy {np.__version__}, "
        f"torch {torch.__version__}; median of {repeats} interleaved repeats, {args.clock} clock"
    )
    print("columns: scratch time, reference time, speed-up = reference / scratch")
    with threadpool_limits(args.threads, user_api="blas"):
        conv_vs_torch(repeats)
        lenet_step_vs_torch(repeats)
        conv_vs_numpy_ml(repeats)
        naive_vs_fast(repeats)
        col2im_vs_transposed(repeats)
        banded_vs_im2col(repeats)


if __name__ == "__main__":
    main()
