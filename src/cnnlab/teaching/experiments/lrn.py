"""Local response normalisation does not help (Simonyan & Zisserman 2015, A vs A-LRN)."""

from __future__ import annotations

from cnnlab.teaching.experiments._common import Outcome, Scale
from cnnlab.teaching.experiments._variants import by, plot_curves, train_variants

NAME = "lrn"
CLAIM = (
    "LRN does not improve accuracy but costs memory and time, so later nets dropped it "
    "(seed 002, VGG A vs A-LRN; seed 000: 'no longer used')."
)
MEASURES = (
    "test accuracy and training time of lecture_cnn (widths 16/32/64, ReLU) with no "
    "normalisation, AlexNet's LRN after each ReLU (n=5, alpha=1e-4, beta=0.75, k=2) or batch "
    "norm (for reference)"
)
QUICK = Scale(data="fashion-mnist", n_train=6000, n_test=2000, epochs=3, batch_size=64, lr=0.05)
FULL = Scale(data="fashion-mnist", epochs=15, batch_size=128, lr=0.05)
FULL_SCALE = (
    "VGG's comparison is on ImageNet: A-LRN 29.7% vs A 29.6% top-1 error (Table 3), no gain. "
    "At full Fashion-MNIST scale the LRN and plain nets stay within a few tenths of a point; "
    "batch norm keeps its lead."
)


def run(ctx) -> Outcome:
    rows, runs = train_variants(ctx, "lecture_cnn", {"none": dict(norm="none"),
                                                     "LRN": dict(norm="lrn"),
                                                     "BN": dict(norm="bn")})  # fmt: skip
    plot = plot_curves(ctx, runs, "no normalisation vs LRN vs batch norm")
    none, lrn, bn = by(rows, "none"), by(rows, "LRN"), by(rows, "BN")
    delta = lrn["test top-1 %"] - none["test top-1 %"]
    finding = (
        f"Test top-1: {none['test top-1 %']:.2f}% without normalisation, "
        f"{lrn['test top-1 %']:.2f}% with LRN ({delta:+.2f} points, "
        f"{lrn['seconds'] / max(none['seconds'], 1e-9):.2f}x the training time) and "
        f"{bn['test top-1 %']:.2f}% with batch norm."
    )
    return Outcome(rows, plot, finding, delta <= 1.0)
