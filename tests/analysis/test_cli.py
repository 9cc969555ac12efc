"""`cnnlab summary` / `cnnlab compare` from the command line: output and bad input."""

import csv
import io
import json

import pytest

from cnnlab.cli import main

NET_PY = """
import torch.nn as nn

def small():
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 15 * 15, 10))
"""


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("name", ["alexnet", "torchvision:alexnet"])  # zoo, torchvision
def test_summary_alexnet_table(capsys, name):
    rc, out, err = run(capsys, "summary", name, "--input", "3x227x227")
    assert rc == 0 and err == ""
    conv1 = next(ln for ln in out.splitlines() if ln.strip().startswith("features.0 "))
    for cell in ("3x227x227", "64x56x56", "784", "23,232", "72.9M"):
        assert cell in conv1
    conv4 = next(ln for ln in out.splitlines() if ln.strip().startswith("features.8 "))
    assert "149.5M" in conv4  # seed 001 prints 145
    assert err == "" and "Total" in out and "coverage: 100.0%" in out


def test_summary_formats_and_output_file(capsys, tmp_path):
    rc, out, _ = run(
        capsys, "summary", "torchvision:resnet18", "-i", "3x64x64", "-f", "json", "-c", "fvcore"
    )
    d = json.loads(out)
    assert rc == 0 and d["convention"] == "fvcore" and d["input"] == [3, 64, 64]
    target = tmp_path / "r.csv"
    rc, out, _ = run(
        capsys, "summary", "torchvision:resnet18", "-i", "3x64x64", "-f", "csv", "-o", str(target)
    )
    assert rc == 0 and out == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert rows[0]["name"] == "conv1"


def test_user_factory_from_file(capsys, tmp_path):
    f = tmp_path / "net.py"
    f.write_text(NET_PY)
    rc, out, _ = run(capsys, "summary", f"{f}:small", "--input", "3x32x32", "-f", "markdown")
    assert rc == 0 and "| 3 | Linear | 1800 | 10 |" in out


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["summary", "alexnte"], "did you mean: alexnet"),
        (["summary", "resnet18", "--input", "3by224"], "CxHxW"),
        (["summary", "resnet18", "--input", "224"], "3x224x224"),
        (["summary", "nope.module:build"], "cannot import 'nope.module'"),
        (["compare", "--builtin", "5x5-vs-3"], "did you mean: 5x5-vs-3x3"),
        (["compare", "resnet18"], "compare needs two models"),
    ],
)
def test_bad_input_exit_2_without_traceback(capsys, argv, expect):
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert expect in err
    assert "Traceback" not in out + err


def test_model_failing_on_input_names_layer_and_fix(capsys, tmp_path):
    f = tmp_path / "net.py"
    f.write_text(NET_PY)
    rc, _, err = run(capsys, "summary", f"{f}:small", "--input", "3x40x40")
    err = " ".join(err.split())  # rich wraps long lines
    assert rc == 2 and "Traceback" not in err
    assert "layer 3 (Linear 1800->10) got input 2888" in err
    assert "use --input 3x32x32" in err


def test_compare_builtin_and_models(capsys):
    rc, out, _ = run(
        capsys, "compare", "5x5-vs-3x3", "--channels", "32", "--size", "14", "-f", "json"
    )
    d = json.loads(out)
    assert rc == 0 and all(f["ok"] for f in d["formulas"])
    assert d["formulas"][0]["measured_a"] == 25 * 32 * 32
    rc, out, _ = run(
        capsys, "compare", "torchvision:resnet18", "torchvision:resnet34", "-i", "3x64x64"
    )
    assert rc == 0 and "params" in out and "layer3.2.conv1" in out and "only B" in out
    rc, out, _ = run(
        capsys,
        "compare",
        "conv(16,5,p=2)",
        "conv(16,3,p=1),conv(16,3,p=1)",
        "-i",
        "16x8x8",
        "-f",
        "markdown",
    )
    assert rc == 0 and f"| params | {16 * 16 * 25 + 16:,} | {2 * (16 * 16 * 9 + 16):,} |" in out


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["summary", "--help"])
    out = capsys.readouterr().out
    assert "cnnlab summary alexnet --input 3x227x227" in out
