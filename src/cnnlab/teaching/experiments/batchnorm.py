"""Batch normalisation: faster training, and learning rates that a plain net cannot take."""

from __future__ import annotations

from cnnlab.teaching.experiments._common import Outcome, Scale
from cnnlab.teaching.experiments._variants import plot_curves, train_variants

NAME = "batchnorm"
CLAIM = (
    "Batch normalisation stabilises training, so nets train faster and tolerate higher learning "
    "rates (seed 001, Batch Normalization; Ioffe & Szegedy 2015)."
)
MEASURES = (
    "training loss per epoch and test accuracy of lecture_cnn (widths 16/32/64, ReLU) without "
    "and with batch norm, each at a moderate (0.02) and a high (0.3) peak learning rate"
)
QUICK = Scale(data="fashion-mnist", n_train=6000, n_test=2000, epochs=3, batch_size=64, lr=0.02)
FULL = Scale(data="fashion-mnist", epochs=15, batch_size=128, lr=0.02)
FULL_SCALE = (
    "Ioffe & Szegedy reach Inception's accuracy in 14x fewer steps with BN and a 30x learning "
    "rate. Over a full schedule the plain net at the moderate rate catches up partly; at the "
    "high rate it stays unstable or diverges."
)


def run(ctx) -> Outcome:
    variants = {"plain lr 0.02": dict(norm="none"), "BN lr 0.02": dict(norm="bn"),
                "plain lr 0.3": dict(norm="none"), "BN lr 0.3": dict(norm="bn")}  # fmt: skip
    fit_kw = {k: {"lr": 0.3} for k in variants if k.endswith("0.3")}
    rows, runs = train_variants(ctx, "lecture_cnn", variants, fit_kw=fit_kw)
    plot = plot_curves(ctx, runs, "with and without batch norm at two learning rates")
    t = {r["variant"]: r["test top-1 %"] for r in rows}
    finding = (
        f"Test top-1 at lr 0.02: {t['plain lr 0.02']:.2f}% plain, {t['BN lr 0.02']:.2f}% with "
        f"BN; at lr 0.3: {t['plain lr 0.3']:.2f}% plain, {t['BN lr 0.3']:.2f}% with BN."
    )
    bn_better = t["BN lr 0.02"] >= t["plain lr 0.02"]
    # the high rate: BN keeps training (within 5 points of its moderate-rate result) and beats
    # the plain net at that rate by a wide margin
    tolerates = t["BN lr 0.3"] >= t["BN lr 0.02"] - 5 and t["BN lr 0.3"] > t["plain lr 0.3"] + 5
    reproduced = True if bn_better and tolerates else (None if bn_better or tolerates else False)
    return Outcome(rows, plot, finding, reproduced)
