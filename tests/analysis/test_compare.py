"""The lectures' comparisons: symbolic formulas agree with the measured summaries."""

import inspect

import pytest

from cnnlab.analysis.compare import BUILTINS, builtin, parse_spec

SIZED = [n for n, f in BUILTINS.items() if "size" in inspect.signature(f).parameters]


@pytest.mark.parametrize(
    "name,channels,size",
    [(n, None, None) for n in BUILTINS] + [(n, 24, 10) for n in SIZED],
)
def test_formulas_match_measurement(name, channels, size):
    cmp = builtin(name, channels, size)
    assert cmp.formulas and all(f.ok for f in cmp.formulas), [
        (f.quantity, f.expected_a, f.measured_a, f.expected_b, f.measured_b) for f in cmp.formulas
    ]


def test_seed_numbers():
    c, h = 64, 56
    five = builtin("5x5-vs-3x3", c, h)
    assert (five.a.totals["params"], five.b.totals["params"]) == (25 * c * c, 18 * c * c)
    assert five.b.totals["macs"] == 18 * c * c * h * h
    seven = builtin("7x7-vs-3x3", c, h)
    assert seven.a.totals["params"] // (c * c) == 49 and seven.b.totals["params"] // (c * c) == 27
    assert seven.a.layers[-1].receptive_field == seven.b.layers[-1].receptive_field == [7, 7]
    inc = builtin("inception")
    assert inc.a.layers[-1].output_shape == [672, 28, 28]  # seed 000: 128+192+96+256
    assert inc.a.totals["macs"] == 28 * 28 * 256 * (128 + 9 * 192 + 25 * 96)  # 854 M
    assert inc.b.totals["macs"] < inc.a.totals["macs"] / 3
    gap = builtin("fc-vs-gap")
    assert gap.a.layer("1").params == 102_764_544 and gap.b.totals["params"] == 1_025_000
    hd = builtin("halve-double", c, 28)
    assert hd.a.totals["macs"] == hd.b.totals["macs"] == 36 * 28 * 28 * c * c
    assert hd.a.totals["activation_bytes"] == 2 * hd.b.totals["activation_bytes"]


def test_layer_spec_parsing():
    net = parse_spec("conv(8,3,s=2,p=1),bn,relu,pool(2),gap,fc(10)", 3)
    kinds = [type(m).__name__ for m in net]
    assert kinds == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "AdaptiveAvgPool2d",
        "Flatten",
        "LazyLinear",
    ]
    with pytest.raises(Exception, match="unknown layer 'convv'"):
        parse_spec("convv(8,3)", 3)
