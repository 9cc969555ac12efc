"""The ``cnnlab scratch`` command: gradcheck table, train/save/eval on digits, summary, errors."""

import pytest

from cnnlab.cli import main


def test_gradcheck_prints_table(capsys):
    assert main(["scratch", "gradcheck", "--only", "max"]) == 0
    out = capsys.readouterr().out
    assert "MaxPool2D 3x3" in out and "all pass" in " ".join(out.split())


def test_train_save_eval_summary(tmp_path, capsys):
    path = tmp_path / "m.npz"
    args = [
        "scratch",
        "train",
        "lenet5",
        "--data",
        "digits",
        "--epochs",
        "1",
        "--limit",
        "256",
        "--no-progress",
        "--save",
        str(path),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and path.exists()
    assert main(["scratch", "eval", str(path), "--data", "digits"]) == 0
    assert "digits test accuracy" in " ".join(capsys.readouterr().out.split())
    assert main(["scratch", "summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "[mb, 14, 14, 6]" in out and "61,706" in out


@pytest.mark.parametrize(
    "args,msg",
    [
        (["scratch", "train", "lenet6"], "neither a built-in spec"),
        (
            ["scratch", "train", "lenet5", "--data", "mnist", "--data-dir", "/nonexistent"],
            "not found",
        ),
        (["scratch", "train", "lenet5", "--data", "cifar"], "unknown dataset"),
    ],
)
def test_user_errors_are_one_line(args, msg, capsys):
    assert main(args) == 2
    assert msg in " ".join(capsys.readouterr().err.split())


def test_shape_error_keeps_its_shapes(tmp_path, capsys):
    spec = tmp_path / "bad.json"
    spec.write_text('[["full", {"width": 4}], ["conv", {"ksize": 3, "chn": 2}]]')
    assert main(["scratch", "summary", str(spec)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "needs an image input [h, w, c], got [4]" in err  # not eaten as rich markup
