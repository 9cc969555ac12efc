"""Full per-layer report of ResNet-152 at 224x224: cnnlab vs torchinfo vs fvcore, one run.

Each tool produces its complete report as a string (build the model, trace it, render the
table). Two timings per tool, the median of --repeat runs:

- "report": the model already exists (built once on the CPU, shared by all three tools);
- "from name": building the model is part of the job (what `cnnlab summary resnet152` does:
  cnnlab builds on the meta device and skips the random init; the others need real weights).

    .venv/bin/python benchmarks/summary_speed.py [--repeat 3] [--model resnet152] [--size 224]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import statistics
import time
import warnings


def timed(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet152")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    warnings.filterwarnings("ignore")  # fvcore's jit tracing warns on import and use

    import torch
    import torchinfo
    import torchvision
    from fvcore.nn import FlopCountAnalysis, flop_count_table

    from cnnlab.analysis import summary
    from cnnlab.analysis.resolve import build_meta

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.set_grad_enabled(False)
    builder = torchvision.models.get_model_builder(args.model)
    shape = (1, 3, args.size, args.size)

    def cnnlab_report(model):
        return summary(model, shape[1:], model_name=args.model).to_text()

    def torchinfo_report(model):
        return str(
            torchinfo.summary(
                model,
                input_size=shape,
                verbose=0,
                depth=10,
                col_names=("input_size", "output_size", "num_params", "mult_adds"),
            )
        )

    def fvcore_report(model):
        f = FlopCountAnalysis(model, torch.zeros(shape))
        f.unsupported_ops_warnings(False)
        f.uncalled_modules_warnings(False)
        with contextlib.redirect_stderr(io.StringIO()):
            return flop_count_table(f, max_depth=10)

    model = builder(weights=None).eval()
    cnnlab_report(model)  # warm-up: imports, first-call caches
    rows = []
    for name, report, build in [
        ("cnnlab", cnnlab_report, lambda: build_meta(builder, weights=None)),
        ("torchinfo", torchinfo_report, lambda: builder(weights=None).eval()),
        ("fvcore", fvcore_report, lambda: builder(weights=None).eval()),
    ]:
        t_report, text = timed(lambda r=report: r(model), args.repeat)
        t_build, _ = timed(build, args.repeat)
        rows.append((name, t_report, t_build + t_report, len(text.splitlines())))

    print(
        f"{args.model} at {args.size}x{args.size}, median of {args.repeat} runs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"{'tool':<10} {'report s':>9} {'from name s':>12} {'lines':>6} "
        f"{'report x':>9} {'from name x':>12}"
    )
    base = rows[0]
    for name, t_rep, t_all, lines in rows:
        print(
            f"{name:<10} {t_rep:9.3f} {t_all:12.3f} {lines:6d} {t_rep / base[1]:9.2f} "
            f"{t_all / base[2]:12.2f}"
        )
    print("x = time / cnnlab's time (higher: cnnlab is that many times faster)")


if __name__ == "__main__":
    main()
