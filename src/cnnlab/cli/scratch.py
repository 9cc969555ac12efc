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
    t.add_argument("--limit", type=int, default=None, help="use only the first N training images")
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

    from cnnlab.errors import ConfigError
    from cnnlab.scratch import build, fit, load_spec, make_optimizer, normalize

    console = Console()
    spec = load_spec(args.spec)
    if args.epochs < 1 or args.batch_size < 1:
        raise ConfigError("--epochs and --batch-size must be at least 1")
    penalty = _penalty(args)
    if args.save:
        _check_writable(args.save)  # before training, so a bad path does not lose the model
    xtr, ytr = _load(args, "train")
    xte, yte = _load(args, "test")
    if args.limit:
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

    from cnnlab.scratch import Model, normalize

    model = Model.load(args.model)
    x, y = _load(args, "test")
    loss, acc = model.evaluate(
        normalize(x, model.meta.get("mean", 0.0), model.meta.get("std", 1.0)), y
    )
    Console().print(
        f"{args.model}: {args.data} test accuracy {acc:.2%}, loss {loss:.4f} ({len(x):,} images)"
    )
    return 0


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
        if len(shape) not in (1, 3):
            raise ConfigError(
                f"--input must be h,w,c (or a width), got {args.input!r}", "e.g. --input 28,28,1"
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
    Console().print(table)
    return 0


def _gradcheck(args):
    import time

    from rich.console import Console
    from rich.table import Table

    from cnnlab.scratch.gradcheck import check_layer, check_loss, standard_cases, standard_losses

    table = Table(title="scratch layers vs central finite differences (float64, L = sum(r * y))")
    for col in ("case", "layer", "input", "dx", "params", "ok"):
        table.add_column(col, justify="left" if col in ("case", "layer", "params") else "right")
    worst, t0, rows = 0.0, time.perf_counter(), 0
    for title, layer, x, train in standard_cases():
        if args.only and args.only not in title:
            continue
        err = check_layer(layer, x, train=train, eps=args.eps)
        worst = max(worst, *err.values())
        ok = max(err.values()) <= args.tol
        params = "  ".join(f"d{k} {v:.1e}" for k, v in err.items() if k != "x")
        table.add_row(
            title,
            layer.describe(),
            "x".join(map(str, x.shape)),
            f"{err.get('x', 0):.1e}",
            params,
            "[green]yes[/]" if ok else "[red]NO[/]",
        )
        rows += 1
    for title, loss, logits, labels in standard_losses():
        if args.only and args.only not in title:
            continue
        e = check_loss(loss, logits, labels, eps=args.eps)
        worst = max(worst, e)
        table.add_row(
            title,
            "loss",
            "x".join(map(str, logits.shape)),
            f"{e:.1e}",
            "",
            "[green]yes[/]" if e <= args.tol else "[red]NO[/]",
        )
        rows += 1
    console = Console()
    console.print(table)
    passed = worst <= args.tol
    console.print(
        f"{rows} checks in {time.perf_counter() - t0:.1f}s; worst relative error {worst:.1e} "
        f"({'all pass' if passed else 'FAILED'} at tol {args.tol:g})"
    )
    return 0 if passed else 1


def _deconv(args):
    from rich.console import Console

    from cnnlab._util import parse_size
    from cnnlab.scratch.deconv import deconv_walkthrough

    walk = deconv_walkthrough(
        parse_size(args.input, "--input"),
        parse_size(args.kernel, "--kernel"),
        parse_size(args.stride, "--stride"),
        parse_size(args.padding, "--padding", minimum=0),
        parse_size(args.output_padding, "--output-padding", minimum=0),
    )
    console = Console(highlight=False)
    layer = walk.layer
    console.print(
        f"[bold]transposed conv {_hxw(walk.x)} -> {_hxw(walk.y)}[/] (kernel "
        f"{_hw(layer.ksize)}, stride {_hw(layer.stride)}, padding {_hw(layer.padding)}, "
        f"output_padding {_hw(layer.output_padding)})"
    )
    for line in walk.size_working:
        console.print("  " + line)
    if not args.show:
        console.print(_grid("result", walk.y))
        return 0
    sh, sw = layer.stride
    (kh, kw), (ph, pw) = layer.ksize, layer.padding
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
