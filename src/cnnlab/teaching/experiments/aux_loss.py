"""GoogLeNet's auxiliary classifiers: extra gradient for the early layers of a deep net."""

from __future__ import annotations

from cnnlab.teaching.experiments._common import Outcome, Scale
from cnnlab.teaching.experiments._variants import by, plot_curves, train_variants

NAME = "aux-loss"
CLAIM = (
    "Auxiliary classifiers half-way up give the lower layers a strong gradient and help a deep "
    "net train (seed 000, 'Auxiliary loss for strong gradient signals'; seed 001; seed 002)."
)
MEASURES = (
    "training loss of the main head and test accuracy of a deep lecture_cnn (12 conv layers in "
    "3 stages of 4, widths 16/32/64, ReLU, no normalisation) with and without an auxiliary "
    "classifier (pool -> fc) after the first stage, weighted 0.3 in the loss (GoogLeNet's); "
    "peak learning rate 0.01 (at 0.05 neither net leaves chance level in 3 epochs)"
)
QUICK = Scale(data="fashion-mnist", n_train=4000, n_test=2000, epochs=3, batch_size=64, lr=0.01)
FULL = Scale(data="fashion-mnist", epochs=15, batch_size=128, lr=0.01)
FULL_SCALE = (
    "Szegedy et al. report the auxiliary heads worth about 0.5% top-1 on ImageNet; later work "
    "(batch norm, Inception-v3) found them to act mostly as regularisers late in training. With "
    "batch norm or a longer schedule the plain deep net trains too, and the gap closes."
)


def run(ctx) -> Outcome:
    base = dict(widths=(16, 32, 64), convs_per_stage=4)
    rows, runs = train_variants(ctx, "lecture_cnn", {"no aux": dict(aux=False),
                                                     "aux head": dict(aux=True)},
                                base=base)  # fmt: skip
    plot = plot_curves(ctx, runs, "a deep net with and without an auxiliary classifier")
    a, b = by(rows, "no aux"), by(rows, "aux head")
    finding = (
        f"Test top-1 {a['test top-1 %']:.2f}% without the auxiliary head and "
        f"{b['test top-1 %']:.2f}% with it; final training loss {a['final train loss']:.3f} vs "
        f"{b['final train loss']:.3f} (the latter includes 0.3 x the auxiliary loss)."
    )
    helps = b["test top-1 %"] > a["test top-1 %"] + 0.5
    return Outcome(rows, plot, finding, True if helps else (
        None if b["test top-1 %"] >= a["test top-1 %"] - 0.5 else False))  # fmt: skip
