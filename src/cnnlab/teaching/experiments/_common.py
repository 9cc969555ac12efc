"""What every experiment shares: the scale it runs at, its data, training through cnnlab's
trainer, and the run folder it leaves (result.json, result.csv, a plot, conclusion.md).

An experiment module defines ``NAME``, ``CLAIM`` (what a lecture says, with its seed),
``MEASURES`` (what is measured), ``QUICK`` and ``FULL`` (a :class:`Scale` each), ``FULL_SCALE``
(what would change at full scale) and ``run(ctx) -> Outcome``. Models are built by the trainer
from the zoo (``lecture_cnn``, ``lecture_resnet`` and the papers' nets); there is no second
training loop.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab._util import atomic_write
from cnnlab.errors import CnnlabError, ConfigError


@dataclass(frozen=True)
class Scale:
    data: str = "fashion-mnist"
    n_train: int | None = None  # a seeded subset of the training split (None: all)
    n_test: int | None = None  # a seeded subset of the test split
    image_size: int | None = None  # resize (digits: the size they are drawn at)
    epochs: float = 3
    batch_size: int = 64
    lr: float = 0.05
    extra: dict = field(default_factory=dict)  # experiment-specific knobs

    def describe(self, train=None, test=None) -> str:
        n_tr = len(train) if train is not None else self.n_train
        n_te = len(test) if test is not None else self.n_test
        size = "x".join(map(str, train.images.shape[1:])) if train is not None else "native"
        return (f"{self.data}: {n_tr} training / {n_te} held-out test images at {size}; "
                f"{self.epochs:g} epochs, batch {self.batch_size}, SGD+Nesterov lr {self.lr:g} "
                "(one-cycle), weight decay 5e-4")  # fmt: skip


@dataclass
class Outcome:
    rows: list[dict]  # the result table
    plot: Path
    finding: str  # one or two sentences with the numbers
    reproduced: bool | None  # None: mixed
    notes: list[str] = field(default_factory=list)


class Context:
    """One experiment's run: where it writes, at what scale, with which seed and data."""

    def __init__(self, name: str, scale: Scale, out: Path, seed: int, data_dir, threads: int):
        self.name, self.scale, self.out, self.seed = name, scale, out, seed
        self.data_dir, self.threads = data_dir, threads
        self.train_set = self.test_set = None
        self.runs: dict[str, object] = {}

    # -- data ---------------------------------------------------------------------------------
    def data(self):
        """(train, test) ImageSets at this scale: seeded subsets, loaded once."""
        if self.train_set is None:
            import torch

            from cnnlab.data import load_dataset

            s = self.scale
            kw = dict(data_dir=self.data_dir, image_size=s.image_size)
            tr, te = load_dataset(s.data, "train", **kw), load_dataset(s.data, "test", **kw)
            g = torch.Generator().manual_seed(1000 + self.seed)
            if s.n_train and s.n_train < len(tr):
                tr = tr.subset(torch.randperm(len(tr), generator=g)[: s.n_train].sort().values)
            if s.n_test and s.n_test < len(te):
                te = te.subset(torch.randperm(len(te), generator=g)[: s.n_test].sort().values)
            self.train_set, self.test_set = tr, te
        return self.train_set, self.test_set

    # -- training -----------------------------------------------------------------------------
    def fit(self, label: str, model: str, options: dict | None = None, *, callbacks=None,
            **overrides):  # fmt: skip
        """Train ``model`` (a zoo name) with ``options`` on this scale's data through
        :func:`cnnlab.training.trainer.train`; the run folder is ``runs/<label>``."""
        from cnnlab.training.config import TrainConfig
        from cnnlab.training.trainer import train

        tr, te = self.data()
        s = self.scale
        options = dict(options or {})
        size = tr.images.shape[-1]
        if model == "lecture_cnn":
            options.setdefault("image_size", size)
        cfg = dict(model=model, model_options=options, data=s.data, epochs=s.epochs,
                   batch_size=s.batch_size, optimizer="nesterov", lr=s.lr, schedule="onecycle",
                   warmup=0.0, weight_decay=5e-4, input_size=size, runs_dir=str(self.out / "runs"),
                   name=label, threads=self.threads, quiet=True, plots=False, seed=self.seed,
                   preprocess="standardize")  # fmt: skip
        cfg.update(overrides)
        t0 = time.perf_counter()
        result = train(TrainConfig(**cfg), train_set=tr, eval_set=te, callbacks=callbacks,
                       progress=False)  # fmt: skip
        result.extras["seconds"] = time.perf_counter() - t0
        if result.status == "interrupted":  # Ctrl-C / SIGTERM: stop the experiment, not just a fit
            raise KeyboardInterrupt
        self.runs[label] = result
        return result

    # -- plots --------------------------------------------------------------------------------
    def figure(self, ncols: int = 1, width: float = 5.0):
        from cnnlab.viz.plots import _pyplot

        plt = _pyplot()
        fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.6), squeeze=False)
        return plt, fig, list(axes[0])

    def save(self, plt, fig, title: str) -> Path:
        fig.suptitle(f"{self.name}: {title}", fontsize=10)
        fig.tight_layout()
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        return atomic_write(self.out / f"{self.name}.png", buf.getvalue())


def last(result, key: str) -> float:
    """The last value of ``key`` in a training history (NaN if never measured, e.g. a run that
    diverged in its first epoch: NaN fails every comparison a verdict makes)."""
    for row in reversed(result.history):
        if row.get(key) is not None:
            return row[key]
    return float("nan")


def series(result, key: str) -> tuple[list, list]:
    rows = [r for r in result.history if r.get(key) is not None]
    return [r["epoch"] for r in rows], [r[key] for r in rows]


# ------------------------------------------------------------------------------- the run folder


def _table_markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_run_folder(module, ctx: Context, outcome: Outcome, seconds: float, quick: bool) -> Path:
    import csv
    import io

    out = ctx.out
    train, test = ctx.train_set, ctx.test_set
    verdict = {True: "reproduced", False: "not reproduced", None: "mixed"}[outcome.reproduced]
    scale_text = ctx.scale.describe(train, test)
    result = {
        "experiment": module.NAME,
        "claim": module.CLAIM,
        "measures": module.MEASURES,
        "mode": "quick" if quick else "full",
        "scale": dataclasses.asdict(ctx.scale),
        "scale_text": scale_text,
        "seeds": [ctx.seed],
        "threads": ctx.threads,
        "wall_seconds": round(seconds, 1),
        "rows": outcome.rows,
        "finding": outcome.finding,
        "verdict": verdict,
        "plot": outcome.plot.name,
        "full_scale": module.FULL_SCALE,
        "notes": outcome.notes,
    }
    atomic_write(out / "result.json", json.dumps(result, indent=2) + "\n")
    if outcome.rows:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(outcome.rows[0]))
        w.writeheader()
        w.writerows(outcome.rows)
        atomic_write(out / "result.csv", buf.getvalue())
    text = [
        f"# Experiment `{module.NAME}`",
        "",
        f"**Claim.** {module.CLAIM}",
        "",
        f"**Measured.** {module.MEASURES}",
        "",
        f"**Scale.** {'--quick' if quick else 'full'}: {scale_text}. Wall time {seconds:.0f} s "
        f"on {ctx.threads} thread(s).",
        "",
        f"**Seeds.** {ctx.seed} (one run per configuration: differences of about a point or "
        "less are within seed-to-seed noise at this scale).",
        "",
        _table_markdown(outcome.rows),
        f"**Result: {verdict} at this scale.** {outcome.finding}",
        "",
        *[f"- {n}" for n in outcome.notes],
        "" if outcome.notes else "",
        f"**At full scale.** {module.FULL_SCALE}",
        "",
        f"![{module.NAME}]({outcome.plot.name})",
        "",
    ]
    atomic_write(out / "conclusion.md", "\n".join(text))
    return out


def run_module(module, *, data: str | None = None, data_dir=None, quick: bool = False,
               seed: int = 0, out=None, threads: int | None = None,
               overrides: dict | None = None) -> Path:  # fmt: skip
    """Run an experiment module and return its run folder (``runs/experiments/<name>`` unless
    ``out`` is given; an existing folder gets a numbered sibling)."""
    scale = module.QUICK if quick else module.FULL
    changes = dict(overrides or {})
    if data:
        changes["data"] = data
    extra = {k: changes.pop(k) for k in list(changes) if k not in _SCALE_FIELDS}
    scale = dataclasses.replace(scale, **changes, extra={**scale.extra, **extra})
    root = Path(out) if out else Path("runs") / "experiments" / module.NAME
    path, i = root, 1
    while path.exists() and any(path.iterdir()):
        i += 1
        path = root.with_name(f"{root.name}-{i}")
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    threads = threads or len(os.sched_getaffinity(0))
    ctx = Context(module.NAME, scale, path, seed, data_dir, threads)
    t0 = time.perf_counter()
    try:
        outcome = module.run(ctx)
    except CnnlabError:  # refused input (unknown data, wrong kind): no half-made folder stays
        if created:
            shutil.rmtree(path, ignore_errors=True)
        raise
    return write_run_folder(module, ctx, outcome, time.perf_counter() - t0, quick)


_SCALE_FIELDS = {f.name for f in dataclasses.fields(Scale)} - {"extra"}


def check_names(given, known, what: str) -> None:
    bad = [g for g in given if g not in known]
    if bad:
        raise ConfigError(f"unknown {what}: {', '.join(bad)}", f"choose from {', '.join(known)}")
