"""`cnnlab export` on bad inputs (found by fuzzing): an --input the model cannot take, and a file
name whose ending names the other format."""

from __future__ import annotations

import pytest

from cnnlab.cli import main
from cnnlab.export import read_metadata


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def test_an_input_too_small_is_the_summary_shape_error(tmp_path, capsys):
    out = tmp_path / "e.onnx"
    assert main(["summary", "lenet5", "--input", "1x4x4"]) == 2
    want = _err(capsys)
    assert main(["export", "lenet5", "--input", "1x4x4", "-o", str(out)]) == 2
    err = _err(capsys)
    assert err == want  # one check, shared with summary and draw
    assert "layer features.0 (Conv2d 1->6, 5x5) got input 1x4x4" in err and "hint:" in err
    assert "Traceback" not in err and not out.exists()


def test_wrong_channels_name_the_layer(tmp_path, capsys):
    assert main(["export", "lenet5", "--input", "3x32x32", "-o", str(tmp_path / "e.onnx")]) == 2
    assert "expects 1 input channels, not 3" in _err(capsys)


@pytest.mark.parametrize(
    ("fmt", "name", "says", "hint"),
    [
        ("onnx", "e.pt", "e.pt names a TorchScript file, but the format is onnx", "e.onnx"),
        ("onnx", "e.PTH", "names a TorchScript file", "e.onnx"),
        (
            "torchscript",
            "e.onnx",
            "e.onnx names an ONNX file, but the format is torchscript",
            "e.pt",
        ),  # fmt: skip
    ],
)
def test_an_ending_of_the_other_format_is_refused(tmp_path, capsys, fmt, name, says, hint):
    assert main(["export", "lenet5", "-f", fmt, "-o", str(tmp_path / name)]) == 2
    err = _err(capsys)
    assert says in err and f"name the file {hint}" in err
    assert not (tmp_path / name).exists()


def test_other_endings_are_written_as_before(tmp_path):
    assert main(["export", "lenet5", "-f", "torchscript", "-o", str(tmp_path / "e.pth")]) == 0
    assert read_metadata(tmp_path / "e.pth")["cnnlab.model"] == "lenet5"
    assert main(["export", "lenet5", "-f", "onnx", "-o", str(tmp_path / "e.bin")]) == 0
    assert (tmp_path / "e.bin").stat().st_size > 0
