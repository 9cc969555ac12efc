"""Bad inputs found by fuzzing: 16-bit PNGs, detect/segment options and output folders, and the
one-model CSV of `cnnlab models`. Each case asserts what the user sees (exit status, message)
and what is (or is not) written."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _gray(seed: int = 0, size: int = 32) -> np.ndarray:
    return (np.random.RandomState(seed).rand(size, size) * 255).astype(np.uint8)


def _save16(arr8: np.ndarray, path) -> None:
    # the same picture at 16 bits: v * 257 maps 0..255 onto 0..65535 (255 -> 65535)
    Image.fromarray(arr8.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode == "I;16"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, digits_lenet5):
    return digits_lenet5(tmp_path_factory.mktemp("clf") / "runs", "c") / "last.pt"


# ------------------------------------------------------------------------------ 16-bit PNGs


def test_read_images_scales_16bit_pngs_to_8bit(tmp_path):
    from cnnlab.training.inference import read_images

    a = _gray()
    Image.fromarray(a).save(tmp_path / "g8.png")
    _save16(a, tmp_path / "g16.png")
    x = read_images([tmp_path / "g8.png", tmp_path / "g16.png"], (1, 32, 32))  # used to fail
    assert x.dtype == torch.uint8 and x.shape == (2, 1, 32, 32)
    assert torch.equal(x[0], x[1]) and torch.equal(x[0, 0], torch.from_numpy(a))
    rgb = read_images([tmp_path / "g16.png"], (3, 16, 16))  # resized, gray -> RGB, still uint8
    assert rgb.dtype == torch.uint8 and rgb.shape == (1, 3, 16, 16)


def _probabilities(out: str) -> list[str]:
    return [line for line in out.splitlines() if "%" in line]


def test_predict_reads_a_16bit_png_as_its_8bit_twin(classifier, tmp_path, capsys):
    a = _gray(1)
    Image.fromarray(a).save(tmp_path / "g8.png")
    _save16(a, tmp_path / "g16.png")
    assert main(["predict", str(classifier), str(tmp_path / "g8.png")]) == 0
    want = _probabilities(capsys.readouterr().out)
    assert main(["predict", str(classifier), str(tmp_path / "g16.png")]) == 0
    assert _probabilities(capsys.readouterr().out) == want and want
    # an 8-bit and a 16-bit file in one call: a RuntimeError from torch.stack before
    assert (
        main(["predict", str(classifier), str(tmp_path / "g8.png"), str(tmp_path / "g16.png")]) == 0
    )
    both = _probabilities(capsys.readouterr().out)
    assert both == want + want


# ----------------------------------------------------------------------- detect / segment


def _dense_run(root, model, task, canvas):
    from cnnlab.data.synthetic import make_digit_scenes
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.trainer import train

    kw = dict(canvas=canvas, count=(1, 2), scale=(14, 22), task=task)
    tr = make_digit_scenes(32, seed=0, **kw)
    te = make_digit_scenes(8, seed=1, split="test", **kw)
    options = {"grid": canvas // 16} if "yolo" in model else {}
    c = TrainConfig(model=model, data=f"digits-{task[:3]}", model_options=options, epochs=1,
                    batch_size=16, optimizer="adamw", lr=1e-3, runs_dir=str(root), name=model,
                    quiet=True, threads=1)  # fmt: skip
    return train(c, train_set=tr, eval_set=te, test_set=te, progress=False).run_dir


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense")
    torch.manual_seed(0)
    img = root / "scene.png"
    Image.fromarray(np.stack([_gray(2, 64)] * 3, -1)).save(img)
    return {
        "yolo": _dense_run(root, "yolov1_small", "detection", 64),
        "fcn": _dense_run(root, "fcn8s_small", "segmentation", 32),
        "img": img,
    }


@pytest.mark.parametrize("score", ["nan", "inf", "2", "-0.1"])
def test_detect_min_score_must_be_a_probability(dense, tmp_path, capsys, score):
    out = tmp_path / "d.png"
    assert main(["detect", str(dense["yolo"]), str(dense["img"]), "-o", str(out),
                 f"--min-score={score}"]) == 2  # fmt: skip
    err = _err(capsys)
    assert "--min-score must be a number from 0 to 1" in err and "hint:" in err
    assert not out.exists()


def test_detect_bounds_of_min_score_are_accepted(dense, tmp_path, capsys):
    for score in ("0", "1"):
        assert main(["detect", str(dense["yolo"]), str(dense["img"]), "-o",
                     str(tmp_path / f"{score}.png"), "--min-score", score]) == 0  # fmt: skip
        assert (tmp_path / f"{score}.png").stat().st_size > 0
    assert "boxes at score >= 1.0" in capsys.readouterr().out


@pytest.mark.parametrize("cmd", ["detect", "segment"])
def test_missing_output_folders_are_created(dense, tmp_path, capsys, cmd):
    run = dense["yolo" if cmd == "detect" else "fcn"]
    out = tmp_path / "new" / "deeper" / "x.png"
    assert main([cmd, str(run), str(dense["img"]), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # rich may break a long path anywhere at the terminal's width: compare without spaces
    assert f"wrote{out}" in "".join(capsys.readouterr().out.split())


def test_a_refused_run_leaves_no_new_folder(dense, tmp_path, capsys):
    out = tmp_path / "new" / "x.png"
    assert main(["detect", str(dense["yolo"]), str(tmp_path / "nope.png"), "-o", str(out)]) == 2
    assert "does not exist" in _err(capsys)
    assert not (tmp_path / "new").exists()


def test_a_file_in_the_way_of_the_output_folder(dense, tmp_path, capsys):
    (tmp_path / "afile").write_text("in the way\n")
    out = tmp_path / "afile" / "sub" / "x.png"
    assert main(["segment", str(dense["fcn"]), str(dense["img"]), "-o", str(out)]) == 2
    assert "afile is a file, not a folder" in _err(capsys)
    assert (tmp_path / "afile").read_text() == "in the way\n"


# -------------------------------------------------------------------- models NAME --format csv


def test_one_model_csv_has_two_fields_a_row(capsys):
    assert main(["models", "lenet5", "--format", "csv", "--no-cache"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows and all(len(r) == 2 for r in rows), rows
    got = dict(rows)
    assert got["paper"] == "LeCun et al., 1998"  # quoted in the file: it holds a comma
    assert got["params"] == "61706" and got["name"] == "lenet5"  # plain, as the list's CSV
