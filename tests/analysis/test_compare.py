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


@pytest.mark.parametrize(
    ("spec", "says"),
    [("conv(64,3,p=-1)", "p= (padding) must be a whole number >= 0, got -1"),
     ("conv(64,3,s=0)", "s= (stride) must be a whole number >= 1, got 0"),
     ("conv(64,0)", "kernel must be a whole number >= 1, got 0"),
     ("conv(64,3.5)", "kernel must be a whole number >= 1, got 3.5"),
     ("conv(0,3)", "out_channels must be"), ("pool(2,s=0)", "stride"), ("fc(0)", "out must be"),
     ("conv(8,3,g=True)", "groups")],
)  # fmt: skip
def test_layer_spec_numbers_out_of_range_are_refused(spec, says):
    # PyTorch takes a negative padding silently and fails on a zero stride deep inside
    from cnnlab.errors import ConfigError

    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(spec, 3)


def test_a_builtin_with_an_extra_model_is_refused_not_ignored(capsys):
    from cnnlab.cli import main

    assert main(["compare", "--builtin", "5x5-vs-3x3", "resnet18"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'resnet18' would be ignored" in err
