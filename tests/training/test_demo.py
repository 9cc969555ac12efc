"""`cnnlab demo`, the main job, end to end (one epoch): table, honest accuracy, run folder."""

import json

from cnnlab.cli import main


def test_demo_prints_the_table_and_the_test_accuracy(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["demo", "--epochs", "1", "--runs-dir", str(runs), "--name", "d", "--quiet"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "lenet5 — 1x32x32" in out and "Layer" in out  # the layer table
    assert "unseen test digits" in out and "144 validation digits" in out
    s = json.loads((runs / "d" / "summary.json").read_text())
    assert s["status"] == "completed" and s["test"]["n"] == 359
    assert f"{s['test']['top1']:.2f}%" in out
    for f in ("best.pt", "last.pt", "loss.png", "accuracy.png", "confusion.png", "config.yaml"):
        assert (runs / "d" / f).is_file(), f
