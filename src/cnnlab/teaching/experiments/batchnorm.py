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
    status = {r["variant"]: r["status"] for r in rows}

    def shown(k):
        return "diverged" if status[k] == "diverged" else f"{t[k]:.2f}%"

    finding = (
        f"Test top-1 at lr 0.02: {shown('plain lr 0.02')} plain, {shown('BN lr 0.02')} with BN; "
        f"at lr 0.3: {shown('plain lr 0.3')} plain, {shown('BN lr 0.3')} with BN."
    )
    # a diverged run scores 0; "tolerates" = BN still learns at the high rate (above 50%) and
    # beats the plain net there by more than 5 points
    score = {k: (0.0 if status[k] == "diverged" or t[k] != t[k] else t[k]) for k in t}
    bn_better = score["BN lr 0.02"] >= score["plain lr 0.02"]
    tolerates = score["BN lr 0.3"] > 50 and score["BN lr 0.3"] > score["plain lr 0.3"] + 5
    reproduced = True if bn_better and tolerates else (None if bn_better or tolerates else False)
    return Outcome(rows, plot, finding, reproduced)
