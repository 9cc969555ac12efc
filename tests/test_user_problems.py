"""The numbered user problems of issue #10 (P7), each as it was reported, through the CLI where
the user met it. (Problem 2, the cache, is in tests/data/test_cache.py; problem 3, the
checkpoint and its checksum, in tests/training/test_train_crash.py and
test_train_checkpoint.py.)"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main


def _run(*argv, runs) -> int:
    return main([*argv, "--runs-dir", str(runs), "--threads", "1", "--quiet", "--no-plots"])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One epoch of LeNet-5 on the built-in digits, with the default validation split."""
    runs = tmp_path_factory.mktemp("runs")
    assert _run("train", "lenet5", "--data", "digits", "--epochs", "2", "--batch-size", "128",
                "--name", "d", runs=runs) == 0  # fmt: skip
    return runs / "d"


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return " ".join(err.split())


def _png(path: Path, size, value, channels=3):
    from torchvision.io import encode_png

    img = torch.full((channels, *size), value, dtype=torch.uint8)
    img[:, : size[0] // 2] = 255 - value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        path.write_bytes(encode_png(img).numpy().tobytes())


# 1 ------------------------------------------------------------------------------------------


def test_p1_image_folder_of_mixed_sizes_trains_with_image_size(tmp_path, capsys):
    root = tmp_path / "shapes"
    for split, n in (("train", 6), ("test", 2)):
        for c, cls in enumerate(("dark", "light")):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                size = (20 + 4 * i, 24 + 2 * i)  # every image a different size
                _png(root / split / cls / f"{i}.png", size, 40 + 150 * c)
    argv = ["train", "lenet5", "--data", str(root), "--epochs", "1", "--batch-size", "4",
            "--val-fraction", "0"]  # fmt: skip
    assert _run(*argv, runs=tmp_path / "runs") == 2
    err = _err(capsys)
    assert "different sizes" in err and "--image-size N" in err  # names a flag that exists
    assert _run(*argv, "--image-size", "28", "--name", "ok", runs=tmp_path / "runs") == 0
    s = json.loads((tmp_path / "runs" / "ok" / "summary.json").read_text())
    assert s["test"]["n"] == 4 and s["splits"]["train"]["images"] == 12
    ck = torch.load(tmp_path / "runs" / "ok" / "last.pt", weights_only=True)
    assert ck["data"]["size"] == [3, 28, 28]


# 4 ------------------------------------------------------------------------------------------


def test_p4_resume_applies_what_it_can_and_refuses_the_rest(digits_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "d"
    shutil.copytree(digits_run, run)
    before = (run / "last.pt").read_bytes()
    assert main(["train", "--resume", str(run), "--lr", "0.5", "--batch-size", "32"]) == 2
    err = _err(capsys)
    assert "cannot change --batch-size, --lr" in err and "--config" in err
    assert main(["train", "--resume", str(run), "--epochs", "1"]) == 2
    assert "fewer than the 2 epochs" in _err(capsys)
    assert (run / "last.pt").read_bytes() == before  # nothing changed
    # a flag that repeats the stored value (--data digits) is no change and is accepted
    argv = ["train", "--resume", str(run), "--epochs", "3", "--data", "digits", "--quiet"]
    assert main([*argv, "--no-plots"]) == 0
    ck = torch.load(run / "last.pt", weights_only=True)
    assert ck["config"]["epochs"] == 3 and ck["epoch"] == 3 and ck["config"]["plots"] is False


# 5 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [(None, "does not exist"), ("lr: [1, 2\n", "is not valid YAML at line 2"),
     ("lr: fast\n", "lr in --config .* must be a number, got 'fast'"),
     ("- a\n- b\n", "is not a mapping"), ("lerning_rate: 0.1\n", "unknown key")],
)  # fmt: skip
def test_p5_config_file_problems_are_clear_errors(tmp_path, capsys, text, message):
    import re

    path = tmp_path / "c.yaml"
    if text is not None:
        path.write_text(text)
    assert _run("train", "--config", str(path), runs=tmp_path / "runs") == 2
    assert re.search(message, _err(capsys))
    assert not (tmp_path / "runs").exists()


def test_p5_full_or_unwritable_output_folder(tmp_path, capsys, monkeypatch):
    import cnnlab.training.run_folder as RF

    def full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RF, "atomic_write", full)
    assert _run("train", "lenet5", "--epochs", "1", runs=tmp_path / "runs") == 2
    err = _err(capsys)
    assert "cannot write" in err and "No space left on device" in err and "--runs-dir" in err
    (tmp_path / "file").write_text("x")  # a file where the runs folder should be
    monkeypatch.undo()
    assert _run("train", "lenet5", "--epochs", "1", runs=tmp_path / "file" / "runs") == 2
    assert "cannot write" in _err(capsys)


# 6 ------------------------------------------------------------------------------------------


def test_p6_summary_of_module_factory_from_the_project_folder(tmp_path, monkeypatch, capsys):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(
        "import torch.nn as nn\n\ndef build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))\n"
    )
    monkeypatch.chdir(tmp_path)
    # the console script's sys.path: its own bin folder first, not the current folder
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    assert main(["summary", "mypkg.nets:build", "--input", "3x16x16"]) == 0
    assert "mypkg.nets:build" in capsys.readouterr().out


# 7 ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gray_ckpt(digits_run):
    return digits_run / "best.pt"  # LeNet-5 on 1x32x32 digits


@pytest.mark.parametrize("fmt", ["gif", "webp", "png"])
def test_p7_predict_reads_gif_and_webp_for_a_grayscale_model(gray_ckpt, tmp_path, capsys, fmt):
    from PIL import Image

    path = tmp_path / f"digit.{fmt}"
    Image.new("RGB", (20, 24), (200, 30, 30)).save(path)
    assert main(["predict", str(gray_ckpt), str(path), "--topk", "3"]) == 0
    assert capsys.readouterr().out.count("%") == 3


@pytest.mark.parametrize(
    "extra, message",
    [(["--topk", "0"], "--topk must be at least 1"), (["--device", "gpu7"], "unknown device"),
     (["--device", "cuda:3"] if not torch.cuda.is_available() else ["--topk", "-1"],
      "no CUDA GPU|--topk must be")],
)  # fmt: skip
def test_p7_predict_bad_flags(gray_ckpt, tmp_path, capsys, extra, message):
    import re

    _png(tmp_path / "x.png", (32, 32), 9, channels=1)
    assert main(["predict", str(gray_ckpt), str(tmp_path / "x.png"), *extra]) == 2
    assert re.search(message, _err(capsys))


def test_p7_predict_names_a_folder_as_a_folder(gray_ckpt, tmp_path, capsys):
    assert main(["predict", str(gray_ckpt), str(tmp_path)]) == 2
    assert "is a folder, not an image file" in _err(capsys)


# 8 ------------------------------------------------------------------------------------------


def test_p8_best_and_early_stopping_use_validation_and_test_is_scored_once(digits_run):
    s = json.loads((digits_run / "summary.json").read_text())
    assert s["splits"]["validation"] == {"name": "digits[val]", "images": 144}
    assert s["splits"]["test"] == {"name": "digits", "images": 359}
    assert s["splits"]["train"]["images"] == 1438 - 144
    rows = [json.loads(x) for x in (digits_run / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: r["val_top1"])
    assert s["best"] == {"epoch": best["epoch"], "top1": best["val_top1"]}  # chosen on val
    assert s["test"]["n"] == 359 and "epoch" in s["test"]["weights"]
    assert "test_top1" not in rows[0]  # no per-epoch look at the test split
    ck = torch.load(digits_run / "best.pt", weights_only=True)
    assert ck["best"]["epoch"] == best["epoch"]


# 9 ------------------------------------------------------------------------------------------


def test_p9_compare_builtins_need_no_memory_and_check_channels(capsys):
    assert main(["compare", "5x5-vs-3x3", "--channels", "-3"]) == 2
    assert "--channels must be at least 1" in _err(capsys)
    # 100,000 channels at 2,000 x 2,000: terabytes of weights were allocated in 0.1
    assert main(["compare", "5x5-vs-3x3", "--channels", "100000", "--size", "2000"]) == 0
    assert "100000x2000x2000" in capsys.readouterr().out


def test_p9_compare_layer_specs_with_fc(capsys):
    assert main(["compare", "conv(8,3),fc(10)", "conv(8,3),gap,fc(10)", "--input", "3x8x8"]) == 0
    out = capsys.readouterr().out
    assert "2,890" in out  # 8*6*6*10 + 10: the fc of A, sized from the shapes
    assert main(["compare", "conv(-3,3)", "conv(8,3)", "--input", "3x8x8"]) == 2
    assert "out_channels must be a whole number >= 1, got -3" in _err(capsys)


# 10 -----------------------------------------------------------------------------------------


def test_p10_a_checkpoint_outside_its_run_is_verified(gray_ckpt, tmp_path, capsys):
    data = bytearray(gray_ckpt.read_bytes())
    # one bit flipped inside a weight tensor's bytes (a byte of the zip's padding would change
    # nothing the checksum covers, nor anything that loads)
    w = torch.load(gray_ckpt, weights_only=True)["model"]["features.0.weight"]
    at = bytes(data).find(w.reshape(-1).view(torch.uint8).numpy().tobytes())
    assert at > 0
    data[at + 5] ^= 0x10
    (tmp_path / "copy.pt").write_bytes(bytes(data))
    assert main(["eval", str(tmp_path / "copy.pt")]) == 2
    assert "corrupt" in _err(capsys)
    (tmp_path / "empty.pt").write_bytes(b"")
    assert main(["eval", str(tmp_path / "empty.pt")]) == 2
    assert "cannot read checkpoint" in _err(capsys)
    torch.save([1, 2], tmp_path / "list.pt")
    assert main(["eval", str(tmp_path / "list.pt")]) == 2
    assert "holds a list, not a dict" in _err(capsys)
    torch.save({"w": torch.zeros(1)}, tmp_path / "plain.pt")
    assert main(["eval", str(tmp_path / "plain.pt")]) == 2
    assert "not a cnnlab training checkpoint" in _err(capsys)


# and the rest of the list ---------------------------------------------------------------------


def test_sigterm_saves_like_ctrl_c(tmp_path):
    import signal
    import subprocess
    import time

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "cnnlab", "train", "lenet5", "--data", "digits", "--epochs",
           "200", "--batch-size", "16", "--threads", "1", "--runs-dir", str(runs),
           "--name", "t", "--no-plots"]  # fmt: skip
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (runs / "t" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.2)  # an epoch has ended: the run is well under way
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "cnnlab train --resume" in err and "Traceback" not in err
    s = json.loads((runs / "t" / "summary.json").read_text())
    assert s["status"] == "interrupted"
    ck = torch.load(runs / "t" / "last.pt", weights_only=True)
    assert ck["step"] > 0


def test_scratch_checks_save_before_training_and_stops_on_divergence(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "m.npz"
    argv = ["scratch", "train", "lenet5", "--data", "digits", "--epochs", "1", "--no-progress"]
    assert main([*argv, "--save", str(missing)]) == 2
    err = _err(capsys)
    assert "does not exist" in err and "mkdir" in err
    assert "epoch" not in capsys.readouterr().out  # refused before training
    assert main([*argv, "--lr", "1e6", "--limit", "256"]) == 2
    assert "the loss became" in _err(capsys)


def test_input_in_the_seeds_order_is_read_with_a_note(capsys):
    assert main(["summary", "lenet5", "--input", "32x32x1"]) == 0
    cap = capsys.readouterr()
    assert "H x W x C" in " ".join(cap.err.split()) and "lenet5" in cap.out


def test_googlenet_weights_without_aux_heads_say_so(tmp_path):
    from cnnlab.errors import ConfigError
    from cnnlab.models import create

    torch.save(create("googlenet", aux_logits=False).state_dict(), tmp_path / "g.pt")
    with pytest.raises(ConfigError) as e:
        create("googlenet", weights=str(tmp_path / "g.pt"))
    assert "aux_logits=False" in e.value.hint


def test_cifar_fast_recipe_defaults_to_the_offline_dataset():
    from cnnlab.training.recipes import get_recipe

    assert get_recipe("cifar-fast").config["data"] == "cifar10-jpeg"


def test_models_details_print_no_rest_markup(capsys):
    assert main(["models", "resnet18", "--no-macs"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out and "resnet18/resnet34" in out
