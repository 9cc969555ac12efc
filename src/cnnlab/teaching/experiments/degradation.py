"""The degradation problem: a deeper plain net trains worse than a shallower one, and residual
connections remove the gap (He et al. 2016, Figure 1 and Figure 6)."""

from __future__ import annotations

from cnnlab.teaching.experiments._common import Outcome, Scale, last, series

NAME = "degradation"
CLAIM = ("A 56-layer plain net has higher training error than a 20-layer one (not "
         "overfitting), and residual connections fix it (seed 000, ResNet; seed 004).")  # fmt: skip
MEASURES = ("training error per epoch (running, in train mode) and held-out test error of plain "
            "and residual CIFAR-style nets (lecture_resnet: 3x3 convs + BN, option-A shortcuts) "
            "at depths 20 and 56 with equal widths, one epoch of linear warm-up")  # fmt: skip
QUICK = Scale(data="digits", image_size=16, epochs=10, batch_size=32, lr=0.05,
              extra={"widths": (8, 16, 32), "depths": (20, 56)})  # fmt: skip
FULL = Scale(data="cifar10", epochs=40, batch_size=128, lr=0.1,
             extra={"widths": (16, 32, 64), "depths": (20, 56)})  # fmt: skip
FULL_SCALE = ("He et al. train CIFAR-10 for 64k iterations (~180 epochs) at widths 16/32/64: "
              "plain-56 ends about 2 points of training error above plain-20, while ResNet-56 "
              "ends below ResNet-20. A few epochs on 1,437 digits at 16x16 show the optimisation "
              "gap early in training; the final ordering of the residual nets needs the full "
              "schedule.")  # fmt: skip


def run(ctx) -> Outcome:
    widths = tuple(ctx.scale.extra["widths"])
    shallow, deep = ctx.scale.extra["depths"]
    runs, rows = {}, []
    for block in ("plain", "basic"):
        for depth in (shallow, deep):
            label = f"{'plain' if block == 'plain' else 'resnet'}{depth}"
            # one epoch of warm-up: He et al. warm ResNet-110 up the same way (section 4.2)
            res = ctx.fit(label, "lecture_resnet", dict(block=block, depth=depth, widths=widths),
                          warmup=1)  # fmt: skip
            runs[label] = res
            rows.append({
                "net": label,
                "final train error %": 100 - last(res, "train_top1"),
                "best train error %": 100 - max(series(res, "train_top1")[1]),
                "test error %": 100 - last(res, "val_top1"),
                "seconds": round(res.extras["seconds"], 1),
            })  # fmt: skip
    plt, fig, (a0, a1) = ctx.figure(2)
    for label, res in runs.items():
        ep, acc = series(res, "train_top1")
        style = "--" if label.startswith("plain") else "-"
        floor = 0.05  # a log axis has no 0: an error of 0 is drawn at the floor
        a0.plot(ep, [max(100 - a, floor) for a in acc], style, marker="o", label=label)
        ep, acc = series(res, "val_top1")
        a1.plot(ep, [max(100 - a, floor) for a in acc], style, marker="o", label=label)
    a0.set(title="training error (%; 0 drawn at 0.05)", xlabel="epoch", yscale="log")
    a1.set(title="test error (%)", xlabel="epoch", yscale="log")
    for a in (a0, a1):
        a.legend(fontsize=8)
    plot = ctx.save(plt, fig, f"plain vs residual at depths {shallow} and {deep}")
    e = {r["net"]: r["final train error %"] for r in rows}
    ps, pd, rs, rd = (e[f"plain{shallow}"], e[f"plain{deep}"], e[f"resnet{shallow}"],
                      e[f"resnet{deep}"])  # fmt: skip
    plain_degrades = pd > ps
    residual_fixes = rd < pd and rd <= rs + 0.5
    finding = (
        f"Final training error: plain-{shallow} {ps:.2f}%, plain-{deep} {pd:.2f}%, "
        f"ResNet-{shallow} {rs:.2f}%, ResNet-{deep} {rd:.2f}%. "
        + ("The deeper plain net trains worse" if plain_degrades else
           "The deeper plain net does not train worse here")
        + (", and the residual one does not." if residual_fixes else
           "; the residual net does not close the gap at this scale.")
    )  # fmt: skip
    reproduced = True if plain_degrades and residual_fixes else (
        False if not plain_degrades else None)  # fmt: skip
    return Outcome(rows, plot, finding, reproduced)
