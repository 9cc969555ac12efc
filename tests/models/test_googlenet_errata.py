"""docs/errata.md's table of GoogLeNet Table 1 slips: every computed cell from the zoo model."""

import pathlib
import re

import pytest
import torch

from cnnlab.analysis import summary
from cnnlab.models import create

DOC = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "errata.md").read_text()
ROWS = {  # doc row label -> module names in googlenet_paper
    "conv 7x7/2": ["conv1"],
    "conv 3x3/1 (with its 1x1 reduce)": ["conv2", "conv3"],
    **{f"inception ({n})": [f"inception{n}"] for n in ("3a", "3b", "4a", "4b", "4c")},
    **{f"inception ({n})": [f"inception{n}"] for n in ("4d", "4e", "5a", "5b")},
    "linear": ["fc"],
}


@pytest.fixture(scope="module")
def measured():
    with torch.device("meta"):
        m = create("googlenet_paper", aux_logits=False)
    s = summary(m, (3, 224, 224))
    out = {}
    for label, mods in ROWS.items():
        weights = sum(
            p.numel() for n in mods for k, p in getattr(m, n).named_parameters() if "weight" in k
        )
        macs = sum(r.macs for r in s.layers if r.name.split(".")[0].split(" ")[0] in mods)
        out[label] = (weights / 1024, macs / 1e6)
    return out, s.totals["macs"]


def _doc_row(label):
    line = next(x for x in DOC.splitlines() if x.startswith(f"| {label} |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    return cells[1], float(cells[2].rstrip("K")), cells[3], float(cells[4].rstrip("M"))


@pytest.mark.parametrize("label", list(ROWS))
def test_every_computed_cell_is_the_zoo_models(label, measured):
    per_row, _ = measured
    _, params_k, _, ops_m = _doc_row(label)
    k, m = per_row[label]
    assert params_k == pytest.approx(k, abs=0.051) and ops_m == pytest.approx(m, abs=0.051)


def test_slips_named_are_the_ones_off_by_more_than_3_percent(measured):
    per_row, total = measured
    for label in ROWS:
        printed_k, _, printed_m, _ = _doc_row(label)
        k, m = per_row[label]
        off = max(
            abs(float(printed_k.rstrip("K")) / k - 1), abs(float(printed_m.rstrip("M")) / m - 1)
        )
        verdict = next(x for x in DOC.splitlines() if x.startswith(f"| {label} |"))
        assert ("slip" in verdict) == (off > 0.03), label
    assert f"{total:,}" in DOC and re.search(r"sums to 1,502M", DOC)
    printed_ops = sum(float(_doc_row(label)[2].rstrip("M")) for label in ROWS)
    assert printed_ops == 1502
