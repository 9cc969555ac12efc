"""One data model, every output: JSON contract, CSV, markdown, LaTeX, HTML, pandas."""

import csv
import io
import json

LAYER_KEYS = {
    "name",
    "type",
    "input_shape",
    "output_shape",
    "kernel",
    "stride",
    "padding",
    "weights",
    "bias",
    "params",
    "macs",
    "flops",
    "activation_bytes",
    "receptive_field",
    "jump",
}


def test_json_contract(alexnet_summary):
    d = json.loads(alexnet_summary.to_json())
    assert {"model", "input", "convention", "layers", "totals", "not_counted"} <= set(d)
    assert d["model"] == "alexnet" and d["input"] == [3, 227, 227]
    assert d["convention"] == "lecture" and d["mode"] == "eval"
    assert set(d["totals"]) == {"params", "params_raw", "macs", "flops", "activation_bytes"}
    assert d["totals"]["params"] == d["totals"]["params_raw"] == 61_100_840
    assert isinstance(d["not_counted"], list)
    for layer in d["layers"]:
        assert set(layer) >= LAYER_KEYS
    conv1 = d["layers"][0]
    assert conv1["input_shape"] == [3, 227, 227] and conv1["output_shape"] == [64, 56, 56]
    assert conv1["kernel"] == [11, 11] and conv1["receptive_field"] == [11, 11]
    assert conv1["params"] == conv1["weights"] + conv1["bias"] == 23_296
    assert sum(x["macs"] for x in d["layers"]) == d["totals"]["macs"]


def test_csv_parses(alexnet_summary):
    rows = list(csv.DictReader(io.StringIO(alexnet_summary.to_csv())))
    assert len(rows) == len(alexnet_summary.layers) + 1
    assert rows[0]["name"] == "features.0" and rows[0]["output_shape"] == "64x56x56"
    assert int(rows[0]["macs"]) == 72_855_552
    assert rows[-1]["name"] == "Total"
    assert int(rows[-1]["params"]) == alexnet_summary.totals["params"]


def test_markdown_rows(alexnet_summary):
    md = alexnet_summary.to_markdown()
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(table) == 2 + len(alexnet_summary.layers) + 1  # header, rule, rows, totals
    assert table[2].startswith("| features.0 | Conv2d | 3x227x227 | 64 | 11 | 4 | 2 | 64x56x56 |")
    assert "784" in table[2]


def test_html_and_latex_contain_rows(alexnet_summary):
    n = len(alexnet_summary.layers)
    html = alexnet_summary.to_html()
    assert html.count("<tr>") == n + 2 and "features.10" in html
    tex = alexnet_summary.to_latex()
    assert tex.count(r"\\") == n + 2 and r"\begin{tabular}" in tex
    assert "classifier.6" in tex


def test_dataframe_and_text(alexnet_summary):
    df = alexnet_summary.to_dataframe()
    assert len(df) == len(alexnet_summary.layers)
    assert int(df["macs"].sum()) == alexnet_summary.totals["macs"]
    text = alexnet_summary.to_text()
    assert "features.0" in text and "72.9M" in text and "61,100,840" in text
    assert alexnet_summary.to_rich_table().row_count == len(alexnet_summary.layers)
