"""`cnnlab models --chart ilsvrc`: cited errors, depth and params measured from the zoo."""

import subprocess
import sys

import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.models import create
from cnnlab.viz.ilsvrc import ILSVRC, check_chart, ilsvrc_rows, plot_ilsvrc


@pytest.fixture(scope="module")
def rows():
    return ilsvrc_rows()


def test_every_entry_is_cited_and_the_errors_fall(rows):
    assert [r["year"] for r in rows] == sorted(r["year"] for r in rows)
    assert all(r["source"] for r in rows)
    top5 = [r["top5"] for r in rows]
    assert top5 == sorted(top5, reverse=True)
    named = {r["entry"]: r for r in rows}
    assert named["AlexNet"]["top5"] == 16.4 and named["VGG"]["top5"] == 7.3  # seed 000's figures


def test_depth_and_params_come_from_the_zoo(rows):
    named = {r["entry"]: r for r in rows}
    assert [named[n]["depth"] for n in ("AlexNet", "VGG", "GoogLeNet", "ResNet")] == [
        8,
        16,
        22,
        152,
    ]
    with torch.device("meta"):
        resnet = create("resnet152")
        with_aux = create("googlenet_paper")
    assert named["ResNet"]["params"] == sum(p.numel() for p in resnet.parameters())
    aux = sum(p.numel() for p in with_aux.parameters())
    assert named["GoogLeNet"]["params"] < aux  # test-time network: auxiliary heads dropped
    assert sum(e.model is None for e in ILSVRC) == 4  # pre-CNN winners, 2016, 2017


def test_plot_writes_a_png(rows, tmp_path):
    path = plot_ilsvrc(rows, tmp_path / "chart.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_cli_chart_and_bad_names(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["models", "--chart", "ilsvrc", "-o", "chart.png"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "chart.png").is_file() and "Table 7" in out and "152" in out
    assert main(["models", "--chart", "ilsvrc", "-o", "chart.jpg"]) == 2
    assert "PNG" in capsys.readouterr().err
    assert main(["models", "-o", "x.png"]) == 2
    assert "--chart" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.png"]  # nothing half-written
    with pytest.raises(ConfigError, match="did you mean: ilsvrc"):
        check_chart("ilsrvc")


def test_cli_unknown_chart_through_subprocess(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "cnnlab", "models", "--chart", "imagenet", "-o", "c.png"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "unknown chart 'imagenet'" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "c.png").exists()
