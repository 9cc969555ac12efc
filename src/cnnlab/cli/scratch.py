"""``cnnlab scratch``: train, evaluate and gradient-check the from-scratch NumPy engine."""

from __future__ import annotations

import argparse

TRAIN_EXAMPLES = """\
examples:
  cnnlab scratch train lenet5 --data digits --epochs 10
  cnnlab scratch train lenet5 --data mnist --data-dir ../shared/data --save lenet5.npz
  cnnlab scratch train my_cnn.yaml --data digits --optimizer momentum --lr 0.05

A spec file (JSON or YAML) is a list in the book's style, or a mapping with 'layers':
  [["conv", {"ksize": 5, "chn": 6}], ["max", {"stride": 2}],
   ["conv", {"ksize": 5, "chn": 16, "padding": "valid"}], ["max", {"stride": 2}],
   ["full", {"width": 120}], ["full", {"width": 84}]]
The output layer (full, one unit per class) is appended for you.
"""


def register(sub, formatter_class=argparse.RawDescriptionHelpFormatter):
    p = sub.add_parser(
        "scratch",
        help="the from-scratch NumPy engine: train, eval, summary, gradcheck, deconv",
        description="The from-scratch NumPy CNN engine of seed 003 "
        "(NHWC images, kernels kh x kw x xchn x ychn): "
        "every layer's forward and backward written out, checked against finite differences "
        "and PyTorch.",
        formatter_class=formatter_class,
    )
    ss = p.add_subparsers(dest="scratch_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: p.print_help() or 0)

    t = ss.add_parser(
        "train",
        help="train a spec (lenet5 or a JSON/YAML file) on mnist or digits",
        description="Train a scratch model with mini-batches, a progress bar and a "
        "test evaluation after every epoch.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=formatter_class,
    )
    t.add_argument("spec", help="'lenet5' or a spec file (.json / .yaml)")
    _data_args(t)
    t.add_argument("--epochs", type=int, default=10, help="passes over the training set (10)")
    t.add_argument("--batch-size", type=int, default=64, help="mini-batch size (64)")
    t.add_argument(
        "--optimizer", default="adam", help="adam | sgd | momentum | nesterov (default adam)"
    )
    t.add_argument(
        "--lr", type=float, default=None, help="learning rate (default: 2e-3 adam, 0.05 sgd)"
    )
    t.add_argument("--momentum", type=float, default=0.9, help="for momentum/nesterov (0.9)")
    t.add_argument("--schedule", default="cosine", choices=("cosine", "constant"))
    t.add_argument("--warmup", type=int, default=0, help="linear warm-up steps")
    t.add_argument("--l2", type=float, default=0.0, help="penalty l2 * sum(W^2) on weights")
    t.add_argument(
        "--l1",
        type=float,
        default=0.0,
        help="penalty l1 * sum(|W|) on weights; with --elastic-net the elastic net's strength",
    )
    t.add_argument(
        "--elastic-net",
        type=float,
        default=None,
        metavar="BETA",
        help="elastic net (seed 001): l1 * sum(BETA * W^2 + |W|); needs --l1",
    )
    t.add_argument(
        "--loss",
        default="cross-entropy",
        help="cross-entropy (softmax) | hinge (seed 001's multiclass SVM, margin 1)",
    )
    t.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed (0)")
    t.add_argument(
        "--limit", type=int, default=None, help="use only the first N >= 1 training images"
    )
    t.add_argument("--save", default=None, help="write the trained model to this .npz")
    t.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads (default 1: safe on a shared machine, where a waiting second "
        "thread slows small products 10x; 2 is ~1.4x faster on an idle 2-core machine)",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)

    e = ss.add_parser(
        "eval",
        help="evaluate a saved .npz model",
        formatter_class=formatter_class,
        description="Test accuracy and loss of a model saved by 'scratch train --save'.",
        epilog="example:\n  cnnlab scratch eval lenet5.npz --data mnist --data-dir ../shared/data",
    )
    e.add_argument("model", help="a .npz written by 'cnnlab scratch train --save'")
    _data_args(e)
    e.set_defaults(func=_eval)

    s = ss.add_parser(
        "summary",
        help="layer table of a spec: shapes and parameters",
        formatter_class=formatter_class,
        description="Output shape (NHWC) and parameter count per layer.",
        epilog="example:\n  cnnlab scratch summary lenet5 --input 28,28,1 --classes 10",
    )
    s.add_argument("spec", help="'lenet5', a spec file or a saved .npz")
    s.add_argument("--input", default="28,28,1", help="per-sample input h,w,c (default 28,28,1)")
    s.add_argument("--classes", type=int, default=10)
    s.set_defaults(func=_summary)

    g = ss.add_parser(
        "gradcheck",
        help="check every layer's backward against finite differences",
        formatter_class=formatter_class,
        description="For each layer: L = sum(r * layer(x)) with a fixed random r; compare "
        "backward(r) with central differences (L(x+eps) - L(x-eps)) / 2eps in float64, "
        "on odd sizes, stride 2, even kernels with 'same' padding, overlapping pools and "
        "pool borders. A correct backward gives ~1e-10; the test passes at 1e-6.",
        epilog="example:\n  cnnlab scratch gradcheck\n  cnnlab scratch gradcheck --only max",
    )
    g.add_argument("--only", default=None, help="only cases whose title contains this text")
    g.add_argument("--eps", type=float, default=1e-6, help="finite-difference step (default 1e-6)")
    g.add_argument("--tol", type=float, default=1e-6, help="largest relative error that passes")
    g.set_defaults(func=_gradcheck)

    d = ss.add_parser(
        "deconv",
        help="a transposed convolution worked on numbers (seed 004's deconvolution)",
        formatter_class=formatter_class,
        description="One single-channel transposed convolution (input values 1..H*W, kernel "
        "1..K*K): its output size, and with --show the zero-inserted, padded input, the "
        "flipped kernel, the result, and the ordinary convolution of the result, which has "
        "the input's shape but not its values (transposed, not inverse).",
        epilog="examples:\n  cnnlab scratch deconv --input 2x2 --kernel 3 --stride 2 --show\n"
        "  cnnlab scratch deconv --input 3x3 --kernel 4 --stride 2 --padding 1 --show",
    )
    d.add_argument("--input", default="2x2", help="input size H or HxW (default 2x2)")
    d.add_argument("--kernel", default="3", help="kernel size K or KhxKw (default 3)")
    d.add_argument("--stride", default="2", help="stride S or ShxSw (default 2)")
    d.add_argument("--padding", default="0", help="padding P or PhxPw cropped per side (0)")
    d.add_argument(
        "--output-padding", default="0", help="extra rows/columns at the bottom/right (0)"
    )
    d.add_argument("--show", action="store_true", help="print every intermediate matrix")
    d.set_defaults(func=_deconv)


def _data_args(p):
    p.add_argument(
        "--data", default="digits", help="mnist | fashion-mnist | digits (default digits, built in)"
    )
    p.add_argument("--data-dir", default=None, help="folder holding MNIST/raw/*-idx?-ubyte.gz")


def _load(args, split):
    from cnnlab.scratch.data import load

    return load(args.data, split, args.data_dir)


def _train(args):
    import time

    import numpy as np
    from rich.console import Console

    from cnnlab.scratch import build, fit, load_spec, make_optimizer, normalize

    console = Console(emoji=False)
    spec = load_spec(args.spec)
    _check_train_args(args)
    penalty = _penalty(args)
    if args.save:
        _check_writable(args.save)  # before training, so a bad path does not lose the model
    xtr, ytr = _load(args, "train")
    xte, yte = _load(args, "test")
    if args.limit is not None:
        xtr, ytr = xtr[: args.limit], ytr[: args.limit]
    mean, std = float(xtr.mean() / 255), float(xtr.std() / 255)
    classes = int(max(ytr.max(), yte.max())) + 1
    model = build(spec, xtr.shape[1:], classes, seed=args.seed, loss=args.loss)
    model.meta = {"data": args.data, "mean": mean, "std": std, "spec_source": args.spec}
    lr = args.lr if args.lr is not None else (2e-3 if args.optimizer == "adam" else 0.05)
    opt = make_optimizer(args.optimizer, lr, penalty, args.momentum)
    console.print(
        f"[bold]{args.spec}[/]: {len(model.layers)} layers, {model.num_params:,} parameters; "
        f"{args.data} {len(xtr):,} train / {len(xte):,} test, {xtr.shape[1:]} NHWC; "
        f"{args.optimizer} lr {lr:g}, batch {args.batch_size}, {args.epochs} epochs; "
        f"{args.loss} loss{_penalty_text(penalty, args)}"
    )

    def log(row):
        console.print(
            f"epoch {row['epoch']:3d}  loss {row['loss']:.4f}  train {row['train_acc']:.2%}  "
            f"test {row['test_acc']:.2%} (loss {row['test_loss']:.4f})  {row['seconds']:.1f}s"
        )

    t0 = time.perf_counter()
    with _blas_threads(args.threads):
        history = fit(
            model,
            opt,
            normalize(xtr, mean, std),
            ytr,
            epochs=args.epochs,
            batch_size=args.batch_size,
            x_test=normalize(xte, mean, std),
            y_test=yte,
            seed=args.seed,
            schedule=args.schedule,
            warmup=args.warmup,
            progress=not args.no_progress,
            console=console,
            log=log,
        )
    total = time.perf_counter() - t0
    model.meta["history"] = history
    final = history[-1]["test_acc"]
    best = max(history, key=lambda r: r["test_acc"])
    console.print(
        f"[bold green]test accuracy {final:.2%}[/] after {args.epochs} epochs "
        f"(best {best['test_acc']:.2%} at epoch {best['epoch']}), {total:.1f}s "
        f"({np.mean([r['seconds'] for r in history]):.1f}s per epoch of training)"
    )
    if args.save:
        console.print(f"saved {model.save(args.save)}")
    return 0


def _check_train_args(args):
    """Refuse numbers that would train on the wrong data or on NaN without saying so: Python's
    slicing reads --limit -5 as "all but 5" (and 0 used to mean all), and a NaN --lr or penalty
    passes every '<= 0' test and turns the weights to NaN."""
    import math

    from cnnlab.errors import ConfigError

    for flag, value, low, hint in (
        ("--epochs", args.epochs, 1, "e.g. --epochs 10"),
        ("--batch-size", args.batch_size, 1, "e.g. --batch-size 64"),
        ("--limit", args.limit, 1, "leave out --limit to train on every image"),
        ("--warmup", args.warmup, 0, "the number of warm-up steps; 0 (default) for none"),
        ("--seed", args.seed, 0, "any whole number >= 0, e.g. --seed 1"),
        ("--threads", args.threads, 1, "1 (default) on a shared machine"),
    ):
        if value is not None and value < low:
            raise ConfigError(f"{flag} must be a whole number >= {low}, got {value}", hint)
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise ConfigError(
            f"--lr must be a finite number > 0, got {args.lr:g}",
            "e.g. --lr 2e-3 for adam, --lr 0.05 for sgd (the defaults)",
        )
    if not (math.isfinite(args.momentum) and 0 <= args.momentum < 1):
        raise ConfigError(
            f"--momentum must be a number in [0, 1), got {args.momentum:g}",
            "the fraction of the last step kept; 0.9 (default)",
        )
    for flag, value in (("--l2", args.l2), ("--l1", args.l1), ("--elastic-net", args.elastic_net)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ConfigError(
                f"{flag} must be a finite number >= 0, got {value:g}",
                "a penalty strength such as 1e-4 (0 switches it off)",
            )


def _penalty(args):
    """--l2/--l1, or the elastic net l1 * sum(beta W^2 + |W|) with --elastic-net BETA."""
    from cnnlab.errors import ConfigError
    from cnnlab.scratch import Penalty

    if args.elastic_net is None:
        return Penalty(l2=args.l2, l1=args.l1)
    if args.l1 <= 0 or args.elastic_net < 0:
        raise ConfigError(
            "--elastic-net BETA needs a strength and BETA >= 0: the penalty is "
            "l1 * sum(beta*W^2 + |W|)",
            "add --l1 LAMBDA, e.g. --elastic-net 0.5 --l1 1e-5",
        )
    if args.l2:
        raise ConfigError(
            "--elastic-net already sets the L2 term (l1 * beta); drop --l2",
            "e.g. --elastic-net 0.5 --l1 1e-5",
        )
    return Penalty.elastic(args.l1, args.elastic_net)


def _penalty_text(penalty, args):
    if args.elastic_net is not None:
        return f", elastic net {args.l1:g} * sum({args.elastic_net:g} W^2 + |W|)"
    terms = [f"{penalty.l2:g} * sum W^2"] * bool(penalty.l2) + [f"{penalty.l1:g} * sum |W|"] * bool(
        penalty.l1
    )
    return ", penalty " + " + ".join(terms) if terms else ""


def _check_writable(path) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    import os
    from pathlib import Path

    from cnnlab.errors import ConfigError

    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise ConfigError(f"--save {path} is a folder", "give a file name, e.g. --save lenet5.npz")
    if not parent.is_dir():
        raise ConfigError(
            f"--save {path}: the folder {parent} does not exist",
            f"create it first (mkdir -p {parent}) or save elsewhere",
        )
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"--save {path}: the folder {parent} is not writable",
                          "save to a folder you can write to")  # fmt: skip


def _blas_threads(n):
    """Limit BLAS threads with threadpoolctl (a dependency)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(n, user_api="blas")


def _eval(args):
    from rich.console import Console

    from cnnlab.errors import ShapeError
    from cnnlab.scratch import Model, normalize

    model = Model.load(args.model)
    x, y = _load(args, "test")
    if tuple(x.shape[1:]) != model.input_shape:
        # otherwise the first Dense layer reports a flattened-size mismatch with no word on why
        trained = model.meta.get("data")
        raise ShapeError(
            f"{args.model} takes {_hwc(model.input_shape)} images"
            + (f" (it was trained on {trained})" if trained else "")
            + f"; the {args.data} test images are {_hwc(x.shape[1:])}",
            (f"evaluate it on --data {trained}, or t" if trained else "T")
            + f"rain a model on {args.data} ('cnnlab scratch train ... --data {args.data}')",
        )
    loss, acc = model.evaluate(
        normalize(x, model.meta.get("mean", 0.0), model.meta.get("std", 1.0)), y
    )
    Console(emoji=False).print(
        f"{args.model}: {args.data} test accuracy {acc:.2%}, loss {loss:.4f} ({len(x):,} images)"
    )
    return 0


def _hwc(shape) -> str:
    return "x".join(map(str, shape))


def _summary(args):
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from cnnlab.errors import ConfigError
    from cnnlab.scratch import Model, build, load_spec

    if args.spec.endswith(".npz"):
        model = Model.load(args.spec)
    else:
        try:
            shape = tuple(int(v) for v in args.input.split(","))
        except ValueError:
            shape = ()
        if len(shape) not in (1, 3) or min(shape) < 1:
            raise ConfigError(
                f"--input must be h,w,c (or a width), got {args.input!r}", "e.g. --input 28,28,1"
            )
        if args.classes < 2:  # 0 used to drop the output layer, a negative count crashed
            raise ConfigError(
                f"--classes must be at least 2, got {args.classes}",
                "one output unit per class, e.g. --classes 10",
            )
        model = build(load_spec(args.spec), shape, args.classes)
    table = Table(title=f"{args.spec} (NHWC, input {list(model.input_shape)})")
    for col, just in (
        ("layer", "left"),
        ("type", "left"),
        ("output", "right"),
        ("params", "right"),
    ):
        table.add_column(col, justify=just)
    for name, desc, shape, n in model.summary_rows():
        table.add_row(
            name, desc, escape("[" + ", ".join(map(str, shape)) + "]"), f"{n:,}" if n else ""
        )
    table.add_section()
    table.add_row("total", "", "", f"{model.num_params:,}")
    Console(emoji=False).print(table)
    return 0


def _gradcheck(args):
    import math
    import time

    from rich.console import Console
    from rich.table import Table

    from cnnlab.errors import ConfigError
    from cnnlab.scratch.gradcheck import (
        check_layer,
        check_loss,
        check_step,
        passes,
        standard_cases,
        standard_losses,
    )

    check_step(args.eps, "--eps")
    if not (math.isfinite(args.tol) and args.tol > 0):
        # a NaN or negative tolerance fails every row, whatever the gradients
        raise ConfigError(
            f"--tol must be a finite number > 0, got {args.tol:g}",
            "the largest relative error that passes; 1e-6 (default) in float64",
        )
    cases = [c for c in standard_cases() if not args.only or args.only in c[0]]
    losses = [c for c in standard_losses() if not args.only or args.only in c[0]]
    if not cases and not losses:  # "0 checks (all pass)" would pass a typo
        titles = [c[0] for c in standard_cases()] + [c[0] for c in standard_losses()]
        raise ConfigError(
            f"--only {args.only!r} matches no case; the cases are: " + "; ".join(titles),
            "give part of a title, e.g. --only max, --only conv, --only 'batch norm'",
        )
    table = Table(title="scratch layers vs central finite differences (float64, L = sum(r * y))")
    for col in ("case", "layer", "input", "dx", "params", "ok"):
        table.add_column(col, justify="left" if col in ("case", "layer", "params") else "right")
    worst, failed, t0 = 0.0, 0, time.perf_counter()
    for title, layer, x, train in cases:
        err = check_layer(layer, x, train=train, eps=args.eps)
        ok = all(passes(v, args.tol) for v in err.values())
        failed += not ok
        worst = max([worst, *err.values()], key=_nan_first)
        params = "  ".join(f"d{k} {v:.1e}" for k, v in err.items() if k != "x")
        table.add_row(
            title,
            layer.describe(),
            "x".join(map(str, x.shape)),
            f"{err.get('x', 0):.1e}",
            params,
            "[green]yes[/]" if ok else "[red]NO[/]",
        )
    for title, loss, logits, labels in losses:
        e = check_loss(loss, logits, labels, eps=args.eps)
        ok = passes(e, args.tol)
        failed += not ok
        worst = max([worst, e], key=_nan_first)
        table.add_row(
            title,
            "loss",
            "x".join(map(str, logits.shape)),
            f"{e:.1e}",
            "",
            "[green]yes[/]" if ok else "[red]NO[/]",
        )
    console = Console(emoji=False)
    console.print(table)
    console.print(
        f"{len(cases) + len(losses)} checks in {time.perf_counter() - t0:.1f}s; worst relative "
        f"error {worst:.1e} ({'all pass' if not failed else f'{failed} FAILED'} at tol "
        f"{args.tol:g})"
    )
    return 0 if not failed else 1


def _nan_first(v):
    """Sort key that makes NaN the largest error (max() skips it otherwise)."""
    import math

    return math.inf if math.isnan(v) else v


def _deconv(args):
    import numpy as np
    from rich.console import Console

    from cnnlab._util import parse_size
    from cnnlab.errors import ConfigError
    from cnnlab.scratch.deconv import deconv_walkthrough
    from cnnlab.scratch.layers import ConvTranspose2D, _pair

    sizes = (
        parse_size(args.input, "--input"),
        parse_size(args.kernel, "--kernel"),
        parse_size(args.stride, "--stride"),
        parse_size(args.padding, "--padding", minimum=0),
        parse_size(args.output_padding, "--output-padding", minimum=0),
    )
    console = Console(emoji=False, highlight=False)
    # sizes first, from the layer alone: a 2000x2000 input makes 4001x4001 matrices whose
    # printing took minutes (and a larger one would not fit in memory)
    layer = ConvTranspose2D(1, 1, *sizes[1:], bias=False, dtype=np.float64)
    (h, w), (kh, kw) = _pair(sizes[0], "--input"), layer.ksize
    out_h, out_w, _ = layer.output_shape((h, w, 1))
    (sh, sw), (ph, pw), (oph, opw) = layer.stride, layer.padding, layer.output_padding
    padded = ((h - 1) * sh + 1 + 2 * max(kh - 1 - ph, 0) + oph,
              (w - 1) * sw + 1 + 2 * max(kw - 1 - pw, 0) + opw)  # fmt: skip
    biggest = max(h, w, out_h, out_w, *padded)
    if args.show and biggest > MAX_GRID:
        raise ConfigError(
            f"--show would print a {max(padded[0], out_h)}x{max(padded[1], out_w)} matrix; "
            f"it prints matrices of at most {MAX_GRID}x{MAX_GRID}",
            "leave out --show for the output size alone, or give a smaller --input "
            "(e.g. --input 3x3)",
        )
    console.print(
        f"[bold]transposed conv {h}x{w} -> {out_h}x{out_w}[/] (kernel {_hw(layer.ksize)}, "
        f"stride {_hw(layer.stride)}, padding {_hw(layer.padding)}, output_padding "
        f"{_hw(layer.output_padding)})"
    )
    for axis, n, s_, p_, k, op, m in (("H", h, sh, ph, kh, oph, out_h),
                                      ("W", w, sw, pw, kw, opw, out_w)):  # fmt: skip
        console.print(f"  {axis}' = ({n} - 1)*{s_} - 2*{p_} + {k} + {op} = {m}")
    if biggest > MAX_GRID:
        console.print(f"(the result is not printed: larger than {MAX_GRID}x{MAX_GRID})")
        return 0
    walk = deconv_walkthrough(*sizes)
    if not args.show:
        console.print(_grid("result", walk.y))
        return 0
    console.print(_grid("input x", walk.x))
    console.print(_grid("kernel k", walk.kernel))
    console.print(
        _grid(
            f"1. insert stride - 1 = {sh - 1}x{sw - 1} zeros between the pixels", walk.zero_inserted
        )
    )
    if walk.padded is not None:
        oph, opw = layer.output_padding
        extra = f", + {oph}x{opw} output padding at the bottom/right" if oph or opw else ""
        console.print(
            _grid(
                f"2. pad k - 1 - p = {kh - 1 - ph}x{kw - 1 - pw} zeros around{extra}", walk.padded
            )
        )
        console.print(_grid("3. flip the kernel (rotate 180 degrees)", walk.flipped))
        console.print(_grid("4. convolve at stride 1 = the result y", walk.y))
    else:
        console.print(_grid("result y (padding >= kernel: computed by cropping)", walk.y))
    console.print(
        _grid(
            f"5. not the inverse: conv(y, k), stride {_hw(layer.stride)}, padding "
            f"{_hw(layer.padding)}, has x's shape, not x",
            walk.conv_of_y,
        )
    )
    a, b = walk.adjoint
    console.print(
        f"it is the transpose (adjoint): <conv(y), x> = {a:,.0f} = <y, deconv(x)> = {b:,.0f}"
    )
    return 0


MAX_GRID = 64  # the largest matrix side 'scratch deconv' prints


def _hxw(a) -> str:
    return f"{a.shape[0]}x{a.shape[1]}"


def _hw(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _grid(title, a) -> str:
    """A titled integer-or-decimal matrix, right-aligned."""
    text = [[f"{v:g}" for v in row] for row in a]
    width = max(len(t) for row in text for t in row)
    body = "\n".join("  " + " ".join(t.rjust(width) for t in row) for row in text)
    return f"{title} ({_hxw(a)}):\n{body}"
