"""A battery of bad inputs through the real command line (a subprocess per case): each one exits
with status 2, prints a message that names the problem and a hint with the fix, shows no
traceback, and changes or loses no file.

Kinds covered: paths (missing, a folder for a file, a file for a folder), permissions and full
disks (a file where a folder must be), sizes and ranges, types (config values), encodings,
interrupted writes (truncated checkpoints), and the run's own rules (resume, existing runs).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def world(tmp_path_factory, digits_lenet5):
    """A folder with one good run and the bad files the cases point at."""
    w = tmp_path_factory.mktemp("world")
    digits_lenet5(w / "runs", "good")
    good = (w / "runs" / "good" / "last.pt").read_bytes()
    (w / "truncated.pt").write_bytes(good[: len(good) // 3])  # a write cut short
    (w / "empty").mkdir()
    (w / "notes.txt").write_text("not an image\n")
    (w / "bad.yaml").write_text("lr: [0.1,\n")
    (w / "typed.yaml").write_text("model: lenet5\nlr: fast\n")
    (w / "latin1.yaml").write_bytes("model: lenet5\nname: caf\xe9\n".encode("latin-1"))
    (w / "a_file").write_text("in the way\n")
    return w


def _snapshot(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _cases():
    ck = "{w}/runs/good/last.pt"
    train = ["train", "lenet5", "--epochs", "1", "--threads", "1", "--runs-dir", "{w}/runs"]
    cases = {
        # paths
        "unknown dataset": ([*train, "--data", "{w}/nope"], "unknown dataset"),
        "dataset files missing": (
            [*train, "--data", "mnist", "--data-dir", "{w}/empty"],
            "MNIST not found",
        ),  # fmt: skip
        "config missing": (["train", "--config", "{w}/missing.yaml"], "does not exist"),
        "resume missing": (["train", "--resume", "{w}/runs/nope"], "no such run folder"),
        "resume a folder without a run": (["train", "--resume", "{w}/empty"], "holds no last.pt"),
        "eval a folder": (["eval", "{w}/empty"], "no best.pt or last.pt"),
        "eval missing": (["eval", "{w}/nope.pt"], "does not exist"),
        "predict not an image": (["predict", ck, "{w}/notes.txt"], "cannot decode"),
        "predict a folder": (["predict", ck, "{w}/empty"], "is a folder"),
        "scratch save into a missing folder": (
            [
                "scratch",
                "train",
                "lenet5",
                "--data",
                "digits",
                "--epochs",
                "1",
                "--save",
                "{w}/no/such/m.npz",
            ],
            "does not exist",
        ),  # fmt: skip
        "runs folder is a file": (
            [*train, "--runs-dir", "{w}/a_file/runs"],
            "choose a folder you can write to",
        ),
        # sizes and ranges
        "batch size 0": ([*train, "--batch-size", "0"], "--batch-size must be > 0"),
        "negative epochs": ([*train, "--epochs", "-1"], "--epochs must be > 0"),
        "infinite epochs": ([*train, "--epochs", "inf"], "--epochs must be finite"),
        "val fraction 1.5": ([*train, "--val-fraction", "1.5"], "--val-fraction must be in"),
        "eval every 0": ([*train, "--eval-every", "0"], "--eval-every must be >= 1"),
        "image size 0": ([*train, "--image-size", "0"], "--image-size must be >= 1"),
        "image size for a fixed-canvas dense set": (
            [
                "train",
                "yolov1_small",
                "--data",
                "digits-det",
                "--image-size",
                "64",
                "--epochs",
                "1",
                "--runs-dir",
                "{w}/runs",
            ],
            "digits-det does not take --image-size",
        ),  # fmt: skip
        "batch larger than the data": ([*train, "--batch-size", "100000"], "larger than the"),
        "input too small for the model": (
            [*train, "--input-size", "5"],
            "lenet5 cannot take 1x5x5 inputs",
        ),  # fmt: skip
        "augmentation value": ([*train, "--augment", "flip-crop,cutout=abc"], "bad value 'abc'"),
        "input with a zero": (["summary", "lenet5", "--input", "1x0x32"], "dimension is zero"),
        "compare 0 channels": (["compare", "5x5-vs-3x3", "--channels", "0"], "at least 1"),
        "predict topk 0": (["predict", ck, "{w}/notes.txt", "--topk", "0"], "--topk must be"),
        "eval batch 0": (["eval", ck, "--batch-size", "0"], "--batch-size must be at least 1"),
        # names and types
        "unknown model": (["summary", "lenett5"], "unknown model"),
        "unknown model option": ([*train, "-O", "dropotu=0.3"], "has no option"),
        "model option of the wrong type": (
            [*train, "--data", "digits", "-O", "relu_after_pool=maybe"],
            "expected a bool",
        ),  # fmt: skip
        "muon momentum of 1 or more": (
            [*train, "--data", "digits", "--optimizer", "muon", "--muon-momentum", "1.2"],
            "--muon-momentum must be in [0, 1)",
        ),
        "lenet5 fused_first_stage that is no boolean": (
            [*train, "--data", "digits", "-O", "fused_first_stage=maybe"],
            "give fused_first_stage=true or false",
        ),
        "lenet5 fused_second_stage that is no boolean": (
            [*train, "--data", "digits", "-O", "fused_second_stage=maybe"],
            "give fused_second_stage=true or false",
        ),
        "a run name that is a path": (
            [*train, "--data", "digits", "--name", "../escape"],
            "--name '../escape' is not a folder name",
        ),
        "a table written under a file": (
            ["summary", "lenet5", "-o", "{w}/a_file/x.md"],
            "a_file is a file, not a folder",
        ),
        "no processes for torchrun": (
            [*train, "--data", "digits", "--nproc", "0"],
            "--nproc must be",
        ),
        "a cutout larger than the images": (
            [*train, "--data", "digits", "--augment", "flip-crop,cutout=999"],
            "covers the whole 32-pixel image",
        ),
        "an augmentation switch out of range": (
            [*train, "--data", "digits", "--augment", "flip-crop,cutout=-8"],
            "cutout and crop must be positive",
        ),
        "the number of classes as a model option": (
            [*train, "--data", "digits", "-O", "num_classes=5"],
            "-O num_classes=... is set by the data",
        ),
        "momentum of 1 or more": ([*train, "--data", "digits", "--momentum", "1"], "[0, 1)"),
        "negative momentum": ([*train, "--data", "digits", "--momentum=-0.5"], "[0, 1)"),
        "a target above 100%": (
            [*train, "--data", "digits", "--target", "150"],
            "--target must be in (0, 100]",
        ),
        "cifar-fast-net head_std that is no number": (
            [
                "train",
                "cifar-fast-net",
                "--data",
                "digits",
                "--epochs",
                "1",
                "--threads",
                "1",
                "--runs-dir",
                "{w}/runs",
                "-O",
                "head_std=wide",
            ],
            "expected a float",
        ),  # fmt: skip
        "picture into a folder that cannot exist": (
            ["viz", "filters", ck, "-o", "/proc/cnnlab-none/f.png"],
            "cannot write /proc/cnnlab-none/f.png",
        ),  # fmt: skip
        "batch larger than what validation left": (
            [*train, "--data", "digits", "--val-fraction", "0.95"],
            "left after --val-fraction 0.95",
        ),  # fmt: skip
        "unknown augmentation": ([*train, "--augment", "flipp"], "unknown augmentation"),
        "config not YAML": (["train", "--config", "{w}/bad.yaml"], "is not valid YAML"),
        "config value of the wrong type": (
            ["train", "--config", "{w}/typed.yaml"],
            "must be a number",
        ),  # fmt: skip
        "unknown device": ([*train, "--device", "tpu"], "unknown device"),
        # encodings
        "config not UTF-8": (["train", "--config", "{w}/latin1.yaml"], "is not UTF-8"),
        # interrupted writes
        "truncated checkpoint": (["eval", "{w}/truncated.pt"], "corrupt, truncated"),
        "resume from a truncated checkpoint": (
            ["train", "--resume", "{w}/truncated.pt"],
            "corrupt, truncated",
        ),  # fmt: skip
        # the run's own rules
        "resume changes the lr": (
            ["train", "--resume", "{w}/runs/good", "--lr", "1"],
            "cannot change --lr",
        ),  # fmt: skip
        "resume fewer epochs": (
            ["train", "--resume", "{w}/runs/good", "--epochs", "0.5"],
            "fewer than the 1 epochs",
        ),  # fmt: skip
        "name of an existing run": (
            [*train, "--data", "digits", "--name", "good"],
            "already holds a run",
        ),  # fmt: skip
    }
    if not torch.cuda.is_available():
        cases["no GPU"] = ([*train, "--device", "cuda"], "no CUDA GPU")
    return cases


CASES = _cases()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_a_clear_error_and_changes_nothing(world, name):
    argv, expected = CASES[name]
    argv = [a.format(w=world) for a in argv]
    before = _snapshot(world)
    env = {**os.environ, "PYTHONPATH": SRC, "CNNLAB_CACHE": str(world / "cache"),
           "COLUMNS": "200"}  # fmt: skip
    p = subprocess.run([sys.executable, "-m", "cnnlab", *argv], capture_output=True, text=True,
                       env=env, timeout=180)  # fmt: skip
    err = " ".join(p.stderr.split())
    assert p.returncode == 2, f"{name}: exit {p.returncode}\n{p.stderr}"
    assert "Traceback" not in p.stderr, p.stderr
    assert expected in err, f"{name}: {expected!r} not in {err!r}"
    assert err.startswith("error:") and " hint: " in err, f"{name}: no hint in {err!r}"
    after = _snapshot(world)
    after = {k: v for k, v in after.items() if not k.startswith("cache/")}
    before = {k: v for k, v in before.items() if not k.startswith("cache/")}
    assert after == before, f"{name}: files changed: {set(after.items()) ^ set(before.items())}"
