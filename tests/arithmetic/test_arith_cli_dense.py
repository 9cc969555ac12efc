"""`cnnlab shape --type spp|roipool|yolo` and `cnnlab anchors`: output forms and bad input."""

import json
import subprocess
import sys

import pytest

from cnnlab.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def test_the_four_commands_of_the_issue_as_json(capsys):
    code, out, _ = run(capsys, "shape", "--type", "spp", "--bins", "4,2,1",
                       "--input", "256x13x13", "--format", "json")  # fmt: skip
    assert code == 0
    d = json.loads(out)
    assert d["type"] == "spp" and d["features"] == 5376 and d["bins"] == [[4, 4], [2, 2], [1, 1]]
    code, out, _ = run(capsys, "shape", "--type", "roipool", "--out", "7x7",
                       "--input", "512x38x50", "--format", "json")  # fmt: skip
    d = json.loads(out)
    assert code == 0 and d["output_shape"] == [512, 7, 7] and d["features"] == 25088
    code, out, _ = run(capsys, "shape", "--type", "yolo", "--S", "7", "--B", "2", "--C", "20",
                       "--format", "json")  # fmt: skip
    d = json.loads(out)
    assert code == 0 and d["output_shape"] == [7, 7, 30] and d["layout"][2][:2] == [10, 30]
    code, out, _ = run(capsys, "anchors", "--sizes", "128,256,512", "--ratios", "0.5,1,2",
                       "--feature", "38x50", "--stride", "16", "--format", "json")  # fmt: skip
    d = json.loads(out)
    assert code == 0 and d["total"] == 17100 and d["per_position"] == 9
    assert (d["rpn_cls_channels"], d["rpn_reg_channels"]) == (18, 36)
    assert len(d["anchors"]) == 9 and d["anchors"][4]["box"] == [-128, -128, 128, 128]


def test_text_and_markdown_show_the_working(capsys):
    code, out, _ = run(capsys, "shape", "--type", "spp", "--input", "256x10x17")
    assert code == 0 and "5,376" in out and "[0,3) [2,5) [5,8) [7,10)" in out
    code, out, _ = run(capsys, "shape", "--type", "yolo")  # the paper's S, B, C by default
    assert code == 0 and "7x7x30" in out and "[10:30] 20 class probabilities" in out
    code, out, _ = run(capsys, "anchors", "--format", "markdown")
    assert code == 0 and "| RPN objectness | 18 |" in out and "| RPN box offsets | 36 |" in out
    code, out, _ = run(capsys, "shape", "--type", "roipool", "--input", "512x38x50",
                       "--roi", "64,48,330,250", "--stride", "16")  # fmt: skip
    assert code == 0 and "bin rows: [3,5) [5,7)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["shape", "--type", "spp", "--bins", "4,0,1", "--input", "256x13x13"], "malformed --bins"),
        (["shape", "--type", "spp"], "--type spp needs --input CxHxW"),
        (["shape", "--type", "spp", "--input", "256"], "needs a feature map CxHxW"),
        (
            ["shape", "--type", "spp", "--input", "8x4x4", "--kernel", "3"],
            "--kernel does not apply",
        ),
        (
            ["shape", "--type", "yolo", "--input", "3x448x448"],
            "--input does not apply to --type yolo",
        ),
        (["shape", "--type", "yolo", "--S", "0"], "S must be >= 1"),
        (["shape", "--type", "yolo", "--rf-in", "3"], "--rf-in does not apply to --type yolo"),
        (
            ["shape", "--input", "3x8x8", "--filters", "4", "--kernel", "3", "--bins", "4"],
            "--bins applies to --type spp",
        ),
        (["shape", "--type", "roipool", "--input", "8x4x4", "--roi", "1,2,3"], "malformed --roi"),
        (["shape", "--type", "roipool", "--input", "8x4x4", "--stride", "16"], "needs --roi"),
        (["shape", "--type", "roipool", "--input", "8x4x4", "--roi", "0,0,nan,5"], "malformed"),
        (["anchors", "--ratios", "0.5,inf"], "malformed --ratios"),
        (["shape", "--filters", "4", "--kernel", "3"], "--type conv needs --input"),
        (["anchors", "--ratios", "0.5,-1"], "malformed --ratios"),
        (["anchors", "--feature", "38x"], "malformed --feature"),
    ],
)
def test_bad_input_is_one_message_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_real_cli_exit_codes():
    ok = subprocess.run(
        [sys.executable, "-m", "cnnlab", "anchors", "--feature", "38x50", "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0 and json.loads(ok.stdout)["total"] == 17100
    argv = ["shape", "--type", "spp", "--bins", "x", "--input", "8x4x4"]
    bad = subprocess.run(
        [sys.executable, "-m", "cnnlab", *argv],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "malformed --bins" in bad.stderr
    assert "Traceback" not in bad.stderr and bad.stdout == ""


def test_a_roi_may_start_at_pixel_zero(capsys):
    # the image's corner is a coordinate like any other (it was refused as "not positive")
    code, out, _ = run(capsys, "shape", "--type", "roipool", "--input", "256x13x13", "--roi",
                       "0,0,5,5", "--stride", "16", "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["roi"] == [0.0, 0.0, 5.0, 5.0]
