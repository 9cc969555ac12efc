"""The ERRATA table: well-formed, and every right value recomputed by cnnlab.arithmetic."""

import pathlib
import re

import pytest

import cnnlab.arithmetic as A
from cnnlab.arithmetic.errata import ERRATA, by_id, errata

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "errata.md"

# each erratum's right value, computed by the library (not copied from the table)
RECOMPUTED = {
    "001-alexnet-conv4-macs": lambda: A.conv_macs(384, 256, 13, 13, 3),
    "001-alexnet-fc6-params": lambda: sum(A.linear_params(256 * 6 * 6, 4096)),
    "001-alexnet-fc7-params": lambda: sum(A.linear_params(4096, 4096)),
    "001-alexnet-fc8-params": lambda: sum(A.linear_params(4096, 1000)),
    "001-vgg-padding": lambda: A.resolve_padding("same", 3),
    "001-vgg16-fc6-params": lambda: sum(A.linear_params(512 * 7 * 7, 4096)),
    "001-vgg16-fc7-params": lambda: sum(A.linear_params(4096, 4096)),
    "001-vgg16-fc8-params": lambda: sum(A.linear_params(4096, 1000)),
    "001-googlenet-fc-memory": lambda: A.activation_bytes(1000, "float32"),
    "001-googlenet-conv1-floor": lambda: A.conv_output_size(224, 7, 2, 3, strict=False),
    "000-receptive-field-recurrence": lambda: A.receptive_field([(7, 1), (3, 1), (3, 2)])[-1][0],
    "000-alexnet-conv1-params": lambda: sum(A.conv_params(3, 96, 11)),
    "000-alexnet-conv2-params": lambda: sum(A.conv_params(96, 256, 5, groups=2)),
    "000-alexnet-conv3-params": lambda: sum(A.conv_params(256, 384, 3)),
    "000-alexnet-conv4-params": lambda: sum(A.conv_params(384, 384, 3, groups=2)),
    "000-alexnet-conv5-params": lambda: sum(A.conv_params(384, 256, 3, groups=2)),
    "000-alexnet-fc6-params": lambda: sum(A.linear_params(9216, 4096)),
    "000-alexnet-fc7-params": lambda: sum(A.linear_params(4096, 4096)),
    "000-alexnet-fc8-params": lambda: sum(A.linear_params(4096, 1000)),
    "002-zfnet-conv1-stride": lambda: 2,  # a fact from the ZFNet paper, not a computation
    "002-gap-fc-weights": lambda: A.linear_params(7 * 7 * 1024, 1024)[0],
    "004-yolo-b-times-5": lambda: A.yolo_output(S=7, B=2, C=20).outputs,
    "004-bottleneck-30pct": lambda: (
        A.conv_params(128, 32, 1, bias=False)[0] + A.conv_params(32, 128, 3, bias=False)[0]
    ),
}


def test_table_is_well_formed():
    ids = [e.id for e in ERRATA]
    assert len(ids) == len(set(ids))
    for e in ERRATA:
        assert e.seed in {"000", "001", "002", "003", "004"} and e.id.startswith(e.seed)
        assert e.kind in {"arithmetic", "rounding", "config", "fact"}
        assert e.place and e.printed and e.correct and e.why
        assert e.printed != e.correct


@pytest.mark.parametrize("erratum", [e for e in ERRATA if e.value is not None], ids=lambda e: e.id)
def test_every_value_is_recomputed(erratum):
    assert RECOMPUTED[erratum.id]() == erratum.value


# the unit each wrong cell is printed in (seed 001 prints params in k and MACs in M)
PRINTED_UNIT = {
    "001-alexnet-conv4-macs": 10**6,
    "001-alexnet-fc6-params": 1000,
    "001-alexnet-fc7-params": 1000,
    "001-alexnet-fc8-params": 1000,
    "001-vgg16-fc6-params": 1000,
    "001-vgg16-fc7-params": 1000,
    "001-vgg16-fc8-params": 1000,
    "000-alexnet-conv1-params": 1000,
    "000-alexnet-conv2-params": 1000,
    "000-alexnet-conv3-params": 1000,
    "000-alexnet-conv4-params": 1000,
    "000-alexnet-conv5-params": 1000,
    "000-alexnet-fc6-params": 1000,
    "000-alexnet-fc7-params": 1000,
    "000-alexnet-fc8-params": 1000,
    "002-gap-fc-weights": 10**6,
}


@pytest.mark.parametrize("erratum_id", sorted(PRINTED_UNIT))
def test_printed_cell_differs_from_the_right_value_in_its_unit(erratum_id):
    e = by_id(erratum_id)
    printed = float(re.match(r"[0-9][0-9,.]*", e.printed).group().replace(",", ""))
    right = e.value / PRINTED_UNIT[erratum_id]
    assert abs(right - printed) >= 0.05, (right, printed)
    assert f"{e.value:,}" in e.correct  # the exact right number is spelled out


def test_receptive_field_example_in_the_seed_is_self_contradictory():
    e = by_id("000-receptive-field-recurrence")
    assert 9 + (3 - 1) * 2 == 13 != 11  # the seed's own expression
    assert A.receptive_field_step(9, 1, 3, 2) == (e.value, 2)


def test_lookup_helpers():
    assert {e.seed for e in errata(seed="001")} == {"001"}
    assert all(e.kind == "fact" for e in errata(kind="fact"))
    with pytest.raises(KeyError, match="known: 001-alexnet-conv4-macs"):
        by_id("nope")


def test_docs_mention_every_erratum():
    text = DOCS.read_text()
    missing = [e.id for e in ERRATA if e.id not in text]
    assert not missing, f"docs/errata.md lacks {missing}"
