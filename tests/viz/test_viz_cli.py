"""The viz commands through the real CLI: pictures written, bad input is one message, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnlab.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


def cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def _is_png(path) -> bool:
    return Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_filter_prints_size_working_and_writes_the_figure(tmp_path):
    out = tmp_path / "o.png"
    r = cli(
        "filter",
        "sample:china",
        "--kernel",
        "sobel-x",
        "--stride",
        "2",
        "--pad",
        "1",
        "-o",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "output H = (427 - 3 + 2*1)/2 + 1 = 214" in r.stdout
    assert "cross-correlation" in r.stdout and "--flip" in r.stdout
    assert _is_png(out)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--kernel", "1,2;3"], "ragged rows"),
        (["--kernel", "1,x;2,3"], "'x' is not a number"),
        (["--kernel", "blurr"], "unknown kernel 'blurr'"),
        (["--kernel", "outline", "--stride", "0"], "stride must be"),
    ],
)
def test_filter_bad_kernels_exit_2_without_traceback(tmp_path, args, message):
    out = tmp_path / "o.png"
    r = cli("filter", "sample:flower", *args, "-o", str(out))
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_filter_corrupt_image_and_list(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "o.png"
    r = cli("filter", str(bad), "--kernel", "outline", "-o", str(out))
    assert r.returncode == 2 and "cannot decode image" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
    assert main(["filter", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "sobel-y" in listed and "1/16" in listed


def test_filter_flip_and_average_in_process(tmp_path, capsys):
    assert (
        main(
            [
                "filter",
                "sample:china",
                "-k",
                "1,2;3,4",
                "--flip",
                "--average",
                "--gray",
                "-o",
                str(tmp_path / "f.svg"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "true convolution" in text and "divided by the kernel's 4 cells" in text
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")


def test_viz_filters_features_attribute_on_a_factory(tmp_path, capsys, png):
    fac = "tests.viz.conftest:tiny_net"
    assert main(["viz", "filters", fac, "--input", "3x16x16", "-o", str(tmp_path / "f.png")]) == 0
    assert _is_png(tmp_path / "f.png")
    img = png(np.random.default_rng(0).integers(0, 255, (40, 40, 3)))
    assert (
        main(
            ["viz", "features", fac, str(img), "--input", "3x16x16", "-o", str(tmp_path / "m.png")]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "features.2: 6x8x8  RF 4, jump 2" in text
    for method in ("deconv", "gradcam", "occlusion"):
        assert (
            main(
                [
                    "viz",
                    "attribute",
                    fac,
                    str(img),
                    "--input",
                    "3x16x16",
                    "--method",
                    method,
                    "--target",
                    "1",
                    "-o",
                    str(tmp_path / f"{method}.png"),
                ]
            )
            == 0
        )
        assert _is_png(tmp_path / f"{method}.png")


def test_viz_on_a_run_folder(tmp_path, tiny_run, capsys, png):
    run = str(tiny_run)
    digit = png(np.pad(np.full((20, 6), 255), ((6, 6), (13, 13))))  # a "1", 32x32
    assert main(["viz", "filters", run, "-o", str(tmp_path / "f.png")]) == 0
    assert main(["viz", "features", run, str(digit), "-o", str(tmp_path / "m.png")]) == 0
    assert (
        main(
            [
                "viz",
                "attribute",
                run,
                str(digit),
                "--method",
                "guided",
                "-o",
                str(tmp_path / "a.png"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "viz",
                "heatmap",
                run,
                "sample:flower",
                "--size",
                "64",
                "--class",
                "3",
                "-o",
                str(tmp_path / "h.png"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "note: RGB image converted to grayscale for a 1-channel model" in text
    assert "class map 9x" in text  # (64 - 32)/4 + 1 = 9 rows
    assert (
        main(
            [
                "viz",
                "top-patches",
                run,
                "--layer",
                "features.3",
                "--unit",
                "0",
                "--data",
                "digits",
                "--limit",
                "200",
                "-o",
                str(tmp_path / "t.png"),
            ]
        )
        == 0
    )
    assert _is_png(tmp_path / "t.png")
    assert "rows" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["viz", "filters", "lenet5", "--layer", "features.1"], "is a ReLU, not a convolution"),
        (["viz", "filters", "lenet5", "--layer", "feature.0"], "layers, closest first: features.0"),
        (
            ["viz", "attribute", "lenet5", "sample:china", "--method", "lrp"],
            "unknown attribution method 'lrp'",
        ),
        (
            ["viz", "heatmap", "lenet5", "sample:china", "--size", "20"],
            "smaller than the 32x32 model's training size accepts",
        ),
        (["viz", "features", "nosuchmodel", "sample:china"], "unknown model 'nosuchmodel'"),
    ],
)
def test_viz_errors_exit_2(tmp_path, args, message):
    out = tmp_path / "o.png"
    r = cli(*args, "-o", str(out))
    assert r.returncode == 2, r.stderr
    assert message in " ".join(r.stderr.split()) and "Traceback" not in r.stderr
    assert not out.exists()


def test_draw_and_report_commands(tmp_path, tiny_run, capsys):
    assert main(["draw", "resnet18", "-o", str(tmp_path / "r.svg")]) == 0
    assert "feature maps drawn" in capsys.readouterr().out
    assert (
        main(
            [
                "draw",
                "tests.viz.conftest:tiny_net",
                "--input",
                "3x16x16",
                "-o",
                str(tmp_path / "t.png"),
            ]
        )
        == 0
    )
    assert _is_png(tmp_path / "t.png")
    r = cli("draw", "resnet18", "-o", str(tmp_path / "r.txt"))
    assert r.returncode == 2 and ".svg or .png" in r.stderr
    out = tmp_path / "rep.html"
    assert main(["report", str(tiny_run), "-o", str(out)]) == 0
    assert '<section id="mistakes">' in out.read_text()
    r = cli("report", str(tmp_path / "missing-run"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_demo_writes_filters_feature_maps_and_report(tmp_path):
    assert (
        main(["demo", "--epochs", "0.3", "--runs-dir", str(tmp_path), "--name", "d", "--quiet"])
        == 0
    )
    run = tmp_path / "d"
    for name in ("filters.png", "features.png"):
        assert _is_png(run / name)
    page = (run / "report.html").read_text()
    assert '<section id="filters">' in page and '<section id="features">' in page


def test_heatmap_of_a_net_without_fc_head_or_global_pool_exits_2(tmp_path):
    (tmp_path / "plain.py").write_text(
        "import torch.nn as nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 5))\n"
    )
    out = tmp_path / "h.png"
    r = cli("viz", "heatmap", f"{tmp_path / 'plain.py'}:build", "sample:china", "--input",
            "3x32x32", "--size", "48", "-o", str(out))  # fmt: skip
    assert r.returncode == 2, r.stderr
    text = " ".join(r.stderr.split())
    assert "nor does it end in a global pooling layer" in text and "GoogLeNet, ResNet" in text
    assert "Traceback" not in r.stderr and not out.exists()
