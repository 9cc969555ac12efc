"""cnnlab experiment: every experiment runs end to end (at a tiny scale on the built-in digits)
and leaves its run folder; --list; unknown names and bad options fail cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.errors import ConfigError
from cnnlab.teaching.experiments import EXPERIMENTS, get_module, run_experiment

SRC = str(Path(__file__).resolve().parents[2] / "src")
TINY = dict(n_train=96, n_test=48, epochs=1)


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_the_eleven_experiments_the_issue_names_exist():
    named = {"degradation", "activations", "stacked-3x3", "bottleneck", "gap-vs-fc", "lrn",
             "aux-loss", "batchnorm", "dropout", "augmentation", "tta"}  # fmt: skip
    assert named <= set(EXPERIMENTS)
    for name in EXPERIMENTS:
        m = get_module(name)
        assert name == m.NAME and "seed 00" in m.CLAIM and m.MEASURES and m.FULL_SCALE
        assert m.QUICK.epochs <= m.FULL.epochs


# rcnn-vs-fast detects on digits-det (its own region sampling): test_rcnn_experiment.py
@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if n != "rcnn-vs-fast"])
def test_experiment_runs_and_writes_its_folder(name, tmp_path):
    size = 16 if name in ("degradation", "bottleneck") else 28
    out = run_experiment(name, quick=True, data="digits", out=tmp_path / name, threads=1,
                         overrides={**TINY, "image_size": size})  # fmt: skip
    result = json.loads((out / "result.json").read_text())
    assert result["experiment"] == name and result["mode"] == "quick"
    assert result["verdict"] in ("reproduced", "not reproduced", "mixed")
    assert result["seeds"] == [0] and result["rows"] and result["scale"]["data"] == "digits"
    assert "96 training / 48 held-out test images" in result["scale_text"]
    assert (out / result["plot"]).stat().st_size > 5000  # a real PNG
    assert (out / "result.csv").read_text().count("\n") == len(result["rows"]) + 1
    text = (out / "conclusion.md").read_text()
    for part in ("**Claim.**", "**Measured.**", "**Scale.**", "**Seeds.**", "**At full scale.**",
                 f"at this scale.** {result['finding']}"):  # fmt: skip
        assert part in text
    # every configuration was trained by cnnlab's trainer: its run folders are there
    assert list((out / "runs").glob("*/summary.json"))


def test_activation_gradients_at_init_show_the_saturation(tmp_path):
    out = run_experiment("activations", quick=True, out=tmp_path / "a", threads=1,
                         overrides={**TINY, "image_size": 28})  # fmt: skip
    rows = {r["activation"]: r for r in json.loads((out / "result.json").read_text())["rows"]}
    key = "grad conv1 / grad fc (init)"
    # at initialisation, through 7 sigmoid layers (slope <= 1/4) the first layer's gradient
    # is orders of magnitude below ReLU's
    assert rows["sigmoid"][key] < 1e-3 * rows["relu"][key]


def test_an_existing_folder_is_kept(tmp_path):
    (tmp_path / "lrn").mkdir()
    (tmp_path / "lrn" / "keep.txt").write_text("x")
    out = run_experiment("lrn", quick=True, data="digits", out=tmp_path / "lrn", threads=1,
                         overrides={**TINY, "image_size": 16})  # fmt: skip
    assert out.name == "lrn-2" and (tmp_path / "lrn" / "keep.txt").exists()


def test_unknown_experiment(tmp_path):
    with pytest.raises(ConfigError, match="unknown experiment 'dropuot'") as e:
        get_module("dropuot")
    assert "dropout" in e.value.hint
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "cnnlab", "experiment", "degradaton"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "did you mean: degradation" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "runs").exists()
    r = subprocess.run([sys.executable, "-m", "cnnlab", "experiment", "--list"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 0 and all(n in r.stdout for n in EXPERIMENTS)


def test_bad_options(tmp_path):
    from cnnlab.cli import main

    assert main(["experiment"]) == 2  # which one?
    assert main(["experiment", "lrn", "--threads", "0"]) == 2
    # datasets that are not there: the loader's clear errors, no half-written result
    assert main(["experiment", "lrn", "--quick", "--data", "nosuchset",
                 "--out", str(tmp_path / "o")]) == 2  # fmt: skip
    assert main(["experiment", "lrn", "--quick", "--data", "cifar100", "--data-dir",
                 str(tmp_path / "none"), "--out", str(tmp_path / "p")]) == 2  # fmt: skip
    assert not (tmp_path / "o").exists() and not (tmp_path / "p").exists()  # no empty folder
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "mine.txt").write_text("kept")  # a folder that was there stays whole
    assert main(["experiment", "lrn", "--quick", "--data", "nosuchset",
                 "--out", str(tmp_path / "q")]) == 2  # fmt: skip
    assert (tmp_path / "q" / "mine.txt").read_text() == "kept"
