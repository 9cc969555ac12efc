"""Global average pooling instead of an FC head (Lin et al. 2014; GoogLeNet): far fewer
parameters and less overfitting."""

from __future__ import annotations

from cnnlab.teaching.experiments._common import Outcome, Scale
from cnnlab.teaching.experiments._variants import by, plot_curves, train_variants

NAME = "gap-vs-fc"
CLAIM = (
    "Global average pooling replaces the FC layers with no weights, cutting parameters and "
    "overfitting while keeping accuracy (seed 001, GoogLeNet GAP; seed 002)."
)
MEASURES = (
    "parameters (cnnlab.summary), training and test accuracy and their gap for lecture_cnn "
    "(widths 16/32/64) with an FC head (flatten -> 128 -> classes) or a GAP head (pool -> "
    "classes)"
)
QUICK = Scale(data="fashion-mnist", n_train=6000, n_test=2000, epochs=4, batch_size=64, lr=0.05)
FULL = Scale(data="fashion-mnist", epochs=20, batch_size=128, lr=0.05)
FULL_SCALE = (
    "Trained longer, the FC head overfits more (its training accuracy keeps rising) and the "
    "GAP head catches up on test accuracy; NIN and GoogLeNet report GAP equal or better on "
    "CIFAR / ImageNet. On short runs the GAP head often trails, because it must learn "
    "class-specific channels first."
)


def run(ctx) -> Outcome:
    rows, runs = train_variants(ctx, "lecture_cnn", {"fc head": dict(head="fc"),
                                                     "gap head": dict(head="gap")})  # fmt: skip
    for r in rows:
        r["train - test (points)"] = r["train top-1 %"] - r["test top-1 %"]
    plot = plot_curves(ctx, runs, "FC head vs global average pooling",
                       keys=("train_top1", "val_top1"))  # fmt: skip
    fc, gap = by(rows, "fc head"), by(rows, "gap head")
    finding = (
        f"The GAP head has {gap['params']:,} parameters against {fc['params']:,} "
        f"(x{gap['params'] / fc['params']:.2f}); test top-1 {gap['test top-1 %']:.2f}% vs "
        f"{fc['test top-1 %']:.2f}%, train-test gap {gap['train - test (points)']:.2f} vs "
        f"{fc['train - test (points)']:.2f} points."
    )
    fewer = gap["params"] < fc["params"]
    less_overfit = gap["train - test (points)"] <= fc["train - test (points)"]
    keeps = gap["test top-1 %"] >= fc["test top-1 %"] - 1.0
    reproduced = True if fewer and less_overfit and keeps else (None if fewer else False)
    return Outcome(rows, plot, finding, reproduced)
