"""The assignment graded: recipes with a target, scored on validation held out of the training
data, PASS / FAIL recorded in summary.json; a run without validation is refused."""

from __future__ import annotations

import json

import pytest

from cnnlab.cli import main
from cnnlab.teaching.assignment import grade
from cnnlab.training.recipes import RECIPES, Assignment


def test_the_assignment_recipes():
    a = RECIPES["cifar100-assignment"]
    assert a.assignment == Assignment("val_top1", 0.60)
    assert a.config["data"] == "cifar100" and a.config["val_fraction"] > 0
    b = RECIPES["cifar10-assignment"]
    assert b.assignment == Assignment("val_top1", 0.80)
    assert b.config["data"] == "cifar10-jpeg" and b.config["target_top1"] == 80.0


def test_grade_uses_the_best_validation_epoch():
    summary = {"best": {"epoch": 7, "top1": 61.5}, "validation": {"top1": 59.0, "epoch": 9},
               "splits": {"validation": {"name": "cifar100[val]", "images": 5000}}}  # fmt: skip
    r = grade(summary, Assignment("val_top1", 0.60))
    assert r == {"metric": "val_top1", "target": 0.60, "value": 0.615, "passed": True,
                 "epoch": 7, "validation": "cifar100[val]", "validation_images": 5000}  # fmt: skip
    r = grade({"best": {"epoch": 3, "top1": 59.99}}, Assignment("val_top1", 0.60))
    assert r["value"] == pytest.approx(0.5999) and r["passed"] is False
    assert grade({}, Assignment("val_top1", 0.6))["passed"] is False  # nothing measured


def _run(tmp_path, name, *extra):
    args = ["train", "--recipe", "cifar100-assignment", "lenet5", "--data", "digits",
            "--batch-size", "64", "--augment", "none", "--label-smoothing", "0",
            "--threads", "1", "--runs-dir", str(tmp_path), "--name", name, "--no-plots",
            "--quiet", *extra]  # fmt: skip
    return main(args)


def test_pass_and_fail_are_recorded(tmp_path, capsys):
    assert _run(tmp_path, "good", "--epochs", "3", "--lr", "0.05", "--warmup", "0") == 0
    out = capsys.readouterr().out
    s = json.loads((tmp_path / "good" / "summary.json").read_text())
    rec = s["assignment"]
    assert rec["metric"] == "val_top1" and rec["target"] == 0.60 and rec["passed"] is True
    assert rec["value"] == pytest.approx(s["best"]["top1"] / 100)
    # validation is held out of the training images, disjoint from the test split
    assert rec["validation_images"] == s["splits"]["validation"]["images"] > 0
    from cnnlab.data import load_dataset

    n_train = len(load_dataset("digits", "train"))
    assert s["splits"]["train"]["images"] + rec["validation_images"] == n_train
    assert "target 60%: PASS" in out
    # a run too short to learn fails the assignment, and says so
    assert _run(tmp_path, "bad", "--epochs", "0.05", "--lr", "1e-5", "--warmup", "0") == 0
    rec = json.loads((tmp_path / "bad" / "summary.json").read_text())["assignment"]
    assert rec["passed"] is False and rec["value"] < 0.60
    assert "FAIL" in capsys.readouterr().out


def test_no_validation_split_is_refused(tmp_path, capsys):
    assert _run(tmp_path, "noval", "--epochs", "1", "--val-fraction", "0") == 2
    err = capsys.readouterr().err
    assert "graded on a validation split" in err and not (tmp_path / "noval").exists()


def test_other_recipes_get_no_record(tmp_path):
    assert main(["train", "lenet5", "--data", "digits", "--epochs", "0.2", "--threads", "1",
                 "--runs-dir", str(tmp_path), "--name", "plain", "--no-plots"]) == 0  # fmt: skip
    assert "assignment" not in json.loads((tmp_path / "plain" / "summary.json").read_text())
