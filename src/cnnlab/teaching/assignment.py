"""The assignment graded: a run of a recipe with an :class:`~cnnlab.training.recipes.Assignment`
(``cifar100-assignment``: seed 001's "60% validation accuracy on CIFAR-100";
``cifar10-assignment``: 80% on CIFAR-10 (JPEG)) is scored on its validation split, which the
trainer holds out of the training images (``val_fraction``), and gets a PASS / FAIL record in
summary.json::

    "assignment": {"metric": "val_top1", "target": 0.6, "value": 0.6123, "passed": true, ...}

``value`` is the best validation top-1 as a fraction (the epoch whose weights best.pt keeps).
"""

from __future__ import annotations

from cnnlab.errors import ConfigError


def assignment_of(recipe: str | None):
    """The recipe's Assignment, or None."""
    if not recipe:
        return None
    from cnnlab.training.recipes import RECIPES

    r = RECIPES.get(recipe)
    return r.assignment if r is not None else None


def check_config(cfg) -> None:
    """An assignment is graded on validation: refuse a run that would have none."""
    spec = assignment_of(cfg.recipe)
    if spec is not None and spec.metric.startswith("val_") and not cfg.val_fraction > 0:
        raise ConfigError(
            f"--recipe {cfg.recipe} is graded on a validation split held out of the training "
            f"data, but --val-fraction is {cfg.val_fraction}",
            "drop --val-fraction (the recipe holds out 10%), or give a value in (0, 1)",
        )


def grade(summary: dict, spec) -> dict:
    """The assignment record for a run's summary.json."""
    key = spec.metric.removeprefix("val_")
    best = summary.get("best") or {}
    val = summary.get("validation") or {}
    top = best.get(key) if best.get(key) is not None else val.get(key)
    value = None if top is None else round(top / 100, 6)
    split = (summary.get("splits") or {}).get("validation") or {}
    return {
        "metric": spec.metric,
        "target": spec.target,
        "value": value,
        "passed": value is not None and value >= spec.target,
        "epoch": best.get("epoch"),
        "validation": split.get("name"),
        "validation_images": split.get("images"),
    }


def grade_run(folder, result) -> dict | None:
    """``on_finish`` hook of ``cnnlab train``: grade a finished run of an assignment recipe,
    add the record to summary.json and print PASS or FAIL."""
    from cnnlab.training.config import TrainConfig

    cfg_path = folder.file("config.yaml")
    cfg = TrainConfig.load_yaml(cfg_path) if cfg_path.exists() else None
    spec = assignment_of(cfg.recipe if cfg else None)
    if spec is None or result.status not in ("completed", "target-reached", "early-stopped"):
        return None
    record = grade(result.summary, spec)
    result.summary["assignment"] = record
    folder.write_json("summary.json", result.summary)
    shown = "no validation score" if record["value"] is None else f"{100 * record['value']:.2f}%"
    verdict = "PASS" if record["passed"] else "FAIL"
    n = record["validation_images"]
    print(f"assignment ({cfg.recipe}): best validation top-1 {shown}"
          + (f" on {n:,} images held out of the training data" if n else "")
          + f", target {100 * spec.target:.0f}%: {verdict}")  # fmt: skip
    return record
