"""`cnnlab experiment rcnn-vs-fast`: the experiment framework's interface and run folder."""

import json

import pytest

from cnnlab.cli import main
from cnnlab.teaching.experiments import EXPERIMENTS, get_module, run_experiment
from cnnlab.teaching.experiments._common import Context, Scale


def test_registered_with_claim_and_scales():
    assert "rcnn-vs-fast" in EXPERIMENTS
    m = get_module("rcnn-vs-fast")
    assert m.NAME == "rcnn-vs-fast" and "seed 004" in m.CLAIM
    assert m.QUICK.data == m.FULL.data == "digits-det" and m.QUICK.n_train < m.FULL.n_train


def test_run_gives_rows_plot_and_finding(tmp_path):
    m = get_module("rcnn-vs-fast")
    scale = Scale(data="digits-det", n_train=10, n_test=5, epochs=1, batch_size=4, lr=0.05,
                  extra={"sweep": (10, 40)})  # fmt: skip
    ctx = Context("rcnn-vs-fast", scale, tmp_path, seed=0, data_dir=None, threads=1)
    out = m.run(ctx)
    assert [r["method"] for r in out.rows] == ["R-CNN", "Fast R-CNN"]
    assert out.plot.is_file() and "ms of CNN time per image" in out.finding
    assert out.reproduced in (True, False)


def test_run_experiment_writes_the_framework_folder(tmp_path):
    out = run_experiment("rcnn-vs-fast", quick=True, out=tmp_path / "r", threads=1,
                         overrides=dict(n_train=8, n_test=4, epochs=1, sweep=(10,)))  # fmt: skip
    result = json.loads((out / "result.json").read_text())
    assert result["experiment"] == "rcnn-vs-fast" and result["mode"] == "quick"
    assert result["verdict"] in ("reproduced", "not reproduced")
    assert [r["method"] for r in result["rows"]] == ["R-CNN", "Fast R-CNN"]
    assert (out / result["plot"]).stat().st_size > 5000
    assert "**Claim.**" in (out / "conclusion.md").read_text()
    assert (out / "results.json").is_file()  # the experiment's own numbers, sweep included


def test_cli_refuses_other_data(tmp_path, capsys):
    code = main(["experiment", "rcnn-vs-fast", "--quick", "--data", "digits",
                 "--out", str(tmp_path / "x")])  # fmt: skip
    assert code == 2 and "digits-det" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--list"]])
def test_listed(args, capsys):
    assert main(["experiment", *args]) == 0
    assert "rcnn-vs-fast" in capsys.readouterr().out
