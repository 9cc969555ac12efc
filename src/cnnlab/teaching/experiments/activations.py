"""Sigmoid and tanh saturate, ReLU does not: per-layer gradient norms at initialisation and at
the end of training, and the training loss, of one deep CNN with each activation."""

from __future__ import annotations

from torch import nn

from cnnlab.teaching.experiments._common import Outcome, Scale, last

NAME = "activations"
CLAIM = (
    "Sigmoid and tanh saturate, so gradients vanish in deep nets; ReLU does not (seed 000, "
    "AlexNet: 'sigmoid나 tanh의 경우 saturated gradient'; seed 004, 'Vanishing gradient')."
)
MEASURES = ("the L2 norm of each weight layer's gradient at initialisation (the first step's "
            "gradients) and at the last step, and the training loss, for one 8-layer CNN "
            "(lecture_cnn: 6 conv + 2 fc, widths 16/32/64, no normalisation) with sigmoid, tanh "
            "or ReLU, each with the init made for it (Glorot for sigmoid / tanh, He for ReLU); "
            "gradients read by a trainer callback")  # fmt: skip
QUICK = Scale(data="digits", image_size=32, epochs=3, batch_size=32, lr=0.01)
FULL = Scale(data="mnist", image_size=32, epochs=10, batch_size=128, lr=0.01)
FULL_SCALE = (
    "On MNIST for 10 epochs the sigmoid net may start to learn once its top layers grow, so its "
    "loss gap to ReLU shrinks; the gradient ratio at initialisation does not depend on the data "
    "size and stays as measured. Deeper nets make it steeper."
)
ACTS = ("sigmoid", "tanh", "relu")


class GradNorms:
    """Trainer callback: per-layer gradient norms at the first step and at the latest one, and
    the loss of every step. (The trainer's gradients of step k are still on the parameters
    when the callback runs, so no second forward/backward pass is needed.)"""

    def __init__(self):
        self.first, self.latest, self.losses = None, None, []

    def __call__(self, st):
        layers = [m for m in st.model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        norms = [float(m.weight.grad.norm()) for m in layers if m.weight.grad is not None]
        if self.first is None:
            self.first = norms
        self.latest = norms
        self.losses.append(float(st.loss))


def run(ctx) -> Outcome:
    opts = dict(widths=(16, 32, 64), convs_per_stage=2)
    rows, grads = [], {}
    for act in ACTS:
        g = GradNorms()
        res = ctx.fit(act, "lecture_cnn", {**opts, "activation": act}, callbacks=[g])
        grads[act] = g
        rows.append({
            "activation": act,
            "grad conv1 / grad fc (init)": g.first[0] / g.first[-1],
            "grad conv1 (init)": g.first[0],
            "grad conv1 (end)": g.latest[0],
            "final train loss": last(res, "train_loss"),
            "test top-1 %": last(res, "val_top1"),
            "status": res.status,
        })  # fmt: skip
    plt, fig, (a0, a1, a2) = ctx.figure(3, 4.3)
    for act in ACTS:
        g = grads[act]
        layers = range(1, len(g.first) + 1)
        a0.semilogy(layers, g.first, marker="o", label=act)
        a1.semilogy(layers, g.latest, marker="o", label=act)
        k = max(1, len(g.losses) // 50)
        smooth = [sum(g.losses[i : i + k]) / len(g.losses[i : i + k])
                  for i in range(0, len(g.losses), k)]  # fmt: skip
        a2.plot([i * k for i in range(len(smooth))], smooth, label=act)
    a0.set(title="gradient norm at init", xlabel="weight layer (input -> output)")
    a1.set(title="gradient norm at the last step", xlabel="weight layer")
    a2.set(title="training loss", xlabel="step")
    for a in (a0, a1, a2):
        a.legend(fontsize=8)
    plot = ctx.save(plt, fig, "per-layer gradient norms and training loss")
    r = {row["activation"]: row for row in rows}
    ratio = {a: r[a]["grad conv1 / grad fc (init)"] for a in ACTS}
    # the claim names both: reproduced when sigmoid's and tanh's first-layer gradients both
    # vanish next to ReLU's and ReLU trains; mixed when only one of them does
    vanish = {a: ratio[a] < 0.1 * ratio["relu"] for a in ("sigmoid", "tanh")}
    relu_trains = r["relu"]["final train loss"] < r["sigmoid"]["final train loss"] - 0.1
    if all(vanish.values()) and relu_trains:
        reproduced = True
    else:
        reproduced = None if any(vanish.values()) else False
    finding = (
        f"At initialisation the first conv's gradient is {ratio['sigmoid']:.2g}x the last "
        f"layer's with sigmoid, {ratio['tanh']:.2g}x with tanh and {ratio['relu']:.2g}x with "
        f"ReLU; after {ctx.scale.epochs:g} epochs the training loss is "
        f"{r['sigmoid']['final train loss']:.3f} (sigmoid), {r['tanh']['final train loss']:.3f} "
        f"(tanh) and {r['relu']['final train loss']:.3f} (ReLU)."
    )
    notes = [
        "tanh is zero-centred and its slope at 0 is 1 (sigmoid's is 1/4): with Glorot's init its "
        "pre-activations stay in the linear range, so at this depth it does not saturate. The "
        "lectures' claim holds for sigmoid; for tanh it needs larger weights or more depth."
    ]
    return Outcome(rows, plot, finding, reproduced, notes)
