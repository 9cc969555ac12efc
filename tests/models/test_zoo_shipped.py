"""The zoo table shipped with the package (`cnnlab models` cold start) and the count of
GoogLeNet without its auxiliary heads."""

import json

import pytest

from cnnlab.analysis import zoo
from cnnlab.analysis.zoo import params_without_aux, zoo_table
from cnnlab.cli import main


def test_googlenet_counts_with_and_without_aux_heads():
    assert params_without_aux("googlenet") == 6_624_904  # torchvision's documented count
    assert params_without_aux("resnet18") is None  # no auxiliary heads to drop
    (row,) = zoo_table(["googlenet"], macs=False)
    assert (row["params"], row["params_no_aux"]) == (13_004_888, 6_624_904)


def test_cli_marks_and_explains_the_aux_count(capsys):
    assert main(["models", "--family", "GoogLeNet", "--no-macs"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "13,004,888*" in out and "googlenet 13,004,888 with, 6,624,904 without" in out
    assert main(["models", "googlenet", "--no-macs"]) == 0
    assert "params without aux heads 6,624,904" in " ".join(capsys.readouterr().out.split())
    assert main(["models", "--family", "ResNet", "--no-macs", "--format", "csv"]) == 0
    header, first = capsys.readouterr().out.splitlines()[:2]
    assert header.endswith(",params_no_aux") and first.endswith(",")  # empty: no aux heads


def test_the_shipped_table_holds_the_zoo():
    shipped = json.loads(zoo.SHIPPED.read_text())
    for name in ("lenet5_1998", "alexnet", "vgg16", "googlenet", "resnet152", "densenet121"):
        assert {"key", "params", "macs", "params_no_aux"} <= set(shipped[name]), name
    assert shipped["googlenet"]["params_no_aux"] == 6_624_904
    assert shipped["lenet5_1998"]["macs"] == 326_520  # the paper's C3 count


def test_shipped_entries_are_used_without_measuring(monkeypatch, tmp_path):
    names = ["lenet5", "alexnet"]
    table = zoo.write_shipped_table(tmp_path / "shipped.json", names)
    monkeypatch.setattr(zoo, "SHIPPED", table)
    fresh = zoo_table(names, cache=False)

    def no_trace(name):
        raise AssertionError(f"{name} was traced although the shipped table has it")

    monkeypatch.setattr(zoo, "measure", no_trace)
    rows = zoo_table(names)  # an empty $CNNLAB_CACHE (conftest): only the shipped table
    assert [(r["params"], r["macs"]) for r in rows] == [(r["params"], r["macs"]) for r in fresh]
    assert not (tmp_path / "cache" / "zoo-table.json").exists()  # nothing measured, nothing cached


def test_stale_shipped_entry_is_measured_and_cached(monkeypatch, tmp_path):
    fake = tmp_path / "shipped.json"
    fake.write_text(json.dumps({"lenet5": {"key": "old", "params": 1, "macs": 1}}))
    monkeypatch.setattr(zoo, "SHIPPED", fake)
    (row,) = zoo_table(["lenet5"])
    assert row["params"] == 61_706
    assert json.loads((tmp_path / "cache" / "zoo-table.json").read_text())["lenet5"]["params"] == (
        61_706
    )


@pytest.mark.parametrize("name", ["googlenet_paper", "googlenet_cifar"])
def test_every_aux_builder_has_the_smaller_count(name):
    n = params_without_aux(name)
    (row,) = zoo_table([name], macs=False)
    assert n is not None and n < row["params"]
