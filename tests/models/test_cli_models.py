"""`cnnlab models`: the table in every format, one model's details, the errors."""

import json

import pytest

from cnnlab.analysis.zoo import zoo_table
from cnnlab.cli import main


def _run(capsys, *argv):
    code = main(["models", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_table_for_a_family(capsys):
    code, out, _ = _run(capsys, "--family", "lenet", "--format", "json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == {"lenet5", "lenet5_1998"}
    r = rows["lenet5_1998"]
    assert (r["family"], r["year"], r["variant"], r["input"]) == ("LeNet", 1998, "mnist", "1x32x32")
    assert r["params"] == 60_850
    # MACs: C1 117,600 + C3 150,000 (Table I's 60 kernels, not the dense 6->16 conv that runs
    # with zeros off the table) + C5 48,000 + F6 10,080 + out 840 = 326,520. The subsampling
    # layers' one multiply per window is not a conv/FC MAC.
    assert r["macs"] == 326_520
    assert rows["lenet5"]["macs"] == 416_520  # 117,600 + 240,000 + 48,000 + 10,080 + 840


def test_csv_markdown_and_rich_table(capsys):
    code, out, _ = _run(capsys, "--family", "NIN", "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("name,family,paper,year,variant,input,classes")
    assert any(l.startswith("nin_cifar,NIN,") and ",966986," in l for l in lines)
    code, out, _ = _run(capsys, "--family", "NIN", "--format", "markdown")
    assert "| nin_cifar | NIN |" in out and "966,986" in out
    code, out, _ = _run(capsys, "--family", "NIN")
    assert code == 0 and "nin_cifar" in out and "7,595,176" in out


def test_variant_filter_and_no_macs(capsys):
    code, out, _ = _run(capsys, "--variant", "cifar", "--family", "VGG", "--no-macs",
                        "--format", "json")  # fmt: skip
    rows = json.loads(out)
    assert code == 0 and rows and all(r["variant"] == "cifar" for r in rows)
    assert all(r["macs"] is None and r["params"] > 0 for r in rows)


def test_one_model_details(capsys):
    code, out, _ = _run(capsys, "alexnet2012")
    assert code == 0
    assert "60,965,224" in out and "groups = 2" in out and "227" in out
    assert "Krizhevsky" in out and "LRN" in out  # the family notes (deviations) are shown
    code, out, _ = _run(capsys, "lenet5_1998", "--format", "json")
    d = json.loads(out)
    assert d["options"]["c3_table"] is True and d["params"] == 60_850
    assert "1,516" in d["family_doc"]
    code, out, _ = _run(capsys, "--family", "LeNet", "--format", "json")
    assert code == 0


def test_grouped_c3_counts_the_papers_connections():
    # With c3_grouped=True the summary sees three grouped convs: C3 costs the paper's 150,000
    # multiply-adds (Table I: 60 kernels x 25 x 10x10), so the net totals 326,520.
    import torch

    from cnnlab.analysis import summary
    from cnnlab.models import create

    with torch.device("meta"):
        m = create("lenet5_1998", c3_grouped=True)
    assert summary(m, (1, 32, 32)).totals["macs"] == 117_600 + 150_000 + 48_000 + 10_080 + 840


def test_errors_exit_2_with_hints(capsys):
    code, _, err = _run(capsys, "vgg61")
    assert code == 2 and "unknown model" in err and "vgg16" in err
    code, _, err = _run(capsys, "--family", "vg")
    assert code == 2 and "VGG" in err
    code, _, err = _run(capsys, "--variant", "svhn")
    assert code == 2 and "cifar" in err


def test_cache_is_used_and_invalidated(tmp_path, monkeypatch):
    from cnnlab.analysis import zoo

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(zoo, "SHIPPED", tmp_path / "no-shipped-table.json")  # the user cache only
    first = zoo_table(["lenet5"])[0]
    cache = tmp_path / "zoo-table.json"
    stored = json.loads(cache.read_text())
    assert stored["lenet5"]["macs"] == first["macs"] == 416_520
    # A cached entry with the right fingerprint is trusted (no re-measure) ...
    stored["lenet5"]["params"] = 1
    cache.write_text(json.dumps(stored))
    assert zoo_table(["lenet5"])[0]["params"] == 1
    assert zoo_table(["lenet5"], cache=False)[0]["params"] == 61_706
    # ... one whose fingerprint does not match (other source/torch/version) is re-measured.
    stored["lenet5"]["key"] = "stale"
    cache.write_text(json.dumps(stored))
    assert zoo_table(["lenet5"])[0]["params"] == 61_706
    cache.write_text("{not json")
    assert zoo_table(["lenet5"])[0]["params"] == 61_706


@pytest.mark.parametrize("flag", ["--help"])
def test_help_has_examples(flag, capsys):
    with pytest.raises(SystemExit) as e:
        main(["models", flag])
    assert e.value.code == 0
    assert "cnnlab models --family VGG" in capsys.readouterr().out
