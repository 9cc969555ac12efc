"""Dropout on the FC layers reduces overfitting (AlexNet; Srivastava et al. 2014)."""

from __future__ import annotations

from cnnlab.teaching.experiments._common import Outcome, Scale
from cnnlab.teaching.experiments._variants import by, plot_curves, train_variants

NAME = "dropout"
CLAIM = (
    "Dropout (p = 0.5) on the FC layers prevents overfitting (seed 000, AlexNet: 'Overfitting을 "
    "방지'; seed 001; seed 004)."
)
MEASURES = (
    "training and test accuracy and their gap for lecture_cnn with a wide FC head (256 units) "
    "trained long on a small training set, with dropout 0 or 0.5 before each FC layer"
)
QUICK = Scale(
    data="fashion-mnist", n_train=1000, n_test=2000, epochs=20, batch_size=50, lr=0.01
)  # fmt: skip (at 0.05 neither variant leaves chance level)
FULL = Scale(data="fashion-mnist", n_train=5000, epochs=40, batch_size=128, lr=0.02)
FULL_SCALE = (
    "With more data the gap shrinks for both, and so does dropout's benefit; AlexNet needed it "
    "because 60 M parameters met 1.2 M images. Dropout also slows training, so short runs can "
    "show it lowering test accuracy."
)


def run(ctx) -> Outcome:
    base = dict(fc_width=256)
    rows, runs = train_variants(ctx, "lecture_cnn", {"dropout 0": dict(dropout=0.0),
                                                     "dropout 0.5": dict(dropout=0.5)},
                                base=base)  # fmt: skip
    for r in rows:
        r["train - test (points)"] = r["train top-1 %"] - r["test top-1 %"]
    plot = plot_curves(ctx, runs, "dropout on a small training set",
                       keys=("train_top1", "val_top1"))  # fmt: skip
    a, b = by(rows, "dropout 0"), by(rows, "dropout 0.5")
    finding = (
        f"Train-test gap {a['train - test (points)']:.2f} points without dropout, "
        f"{b['train - test (points)']:.2f} with p = 0.5; test top-1 {a['test top-1 %']:.2f}% vs "
        f"{b['test top-1 %']:.2f}%."
    )
    smaller_gap = b["train - test (points)"] < a["train - test (points)"]
    not_worse = b["test top-1 %"] >= a["test top-1 %"] - 0.5
    return Outcome(rows, plot, finding, True if smaller_gap and not_worse else
                   (None if smaller_gap else False))  # fmt: skip
