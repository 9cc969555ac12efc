"""The shape most experiments share: train a few variants of one net, tabulate parameters,
MACs, training and test accuracy, and plot the curves side by side."""

from __future__ import annotations

from cnnlab.teaching.experiments._common import last, series


def count(ctx, model: str, options: dict) -> tuple[int, int]:
    """(parameters, MACs) of a zoo model at this experiment's input, from cnnlab.summary."""
    import cnnlab.models as M
    from cnnlab.analysis import summary

    tr, _ = ctx.data()
    opts = dict(options)
    if model == "lecture_cnn":
        opts.setdefault("image_size", tr.images.shape[-1])
    c, h, w = tr.images.shape[1:]
    s = summary(M.create(model, in_channels=int(c), **opts).eval(), (int(c), int(h), int(w)))
    return s.totals["params"], s.totals["macs"]


def train_variants(ctx, model: str, variants: dict, *, base: dict | None = None, fit_kw=None):
    """Train each ``{label: options}`` variant; rows with params, MACs, accuracies, time."""
    rows, runs = [], {}
    for label, opts in variants.items():
        opts = {**(base or {}), **opts}
        res = ctx.fit(label, model, opts, **(fit_kw or {}).get(label, {}))
        params, macs = count(ctx, model, opts)
        runs[label] = res
        rows.append({
            "variant": label,
            "params": params,
            "MACs": macs,
            "train top-1 %": last(res, "train_top1"),
            "test top-1 %": last(res, "val_top1"),
            "final train loss": last(res, "train_loss"),
            "seconds": round(res.extras["seconds"], 1),
            "status": res.status,
        })  # fmt: skip
    return rows, runs


def plot_curves(ctx, runs: dict, title: str, *, keys=("train_loss", "val_top1")):
    names = {"train_loss": "training loss", "val_top1": "test top-1 (%)",
             "train_top1": "training top-1 (%)"}  # fmt: skip
    plt, fig, axes = ctx.figure(len(keys), 4.6)
    for a, key in zip(axes, keys):
        for label, res in runs.items():
            ep, v = series(res, key)
            shown = f"{label} ({res.status})" if res.status == "diverged" else label
            a.plot(ep, v, marker="o", label=shown)
        a.set(title=names.get(key, key), xlabel="epoch")
        a.legend(fontsize=8)
    return ctx.save(plt, fig, title)


def by(rows, label):
    return next(r for r in rows if r["variant"] == label)
