"""The 1x1, bottleneck and conv-vs-fc comparisons: seed 001's numbers, measured."""

import subprocess
import sys

import pytest
import torch

from cnnlab.analysis.compare import LocallyConnected2d, builtin
from cnnlab.cli import main
from cnnlab.errors import ConfigError


def test_one_by_one_seed_figures():
    cmp = builtin("1x1")
    assert cmp.a.layers[0].output_shape == [1, 6, 6] and cmp.a.totals["params"] == 32
    assert cmp.a.totals["macs"] == 6 * 6 * 32
    assert cmp.b.layers[-1].output_shape == [32, 28, 28]
    assert (cmp.b.totals["params"], cmp.b.totals["macs"]) == (6144, 4_816_896)
    assert "differ by 0.0e+00" in cmp.notes[0]  # conv2d == per-pixel dot product, measured
    small = builtin("1x1", channels=64, size=7)
    assert small.b.totals["macs"] == 7 * 7 * 32 * 64


def test_bottleneck_is_seed_120_4m_against_12_4m():
    cmp = builtin("bottleneck")
    assert cmp.a.totals["macs"] == 120_422_400  # 28*28*32 * 5*5*192
    assert cmp.b.totals["macs"] == 12_443_648  # 28*28*16*192 + 28*28*32 * 5*5*16
    assert round(cmp.a.totals["macs"] / 1e6, 1) == 120.4
    assert round(cmp.b.totals["macs"] / 1e6, 1) == 12.4
    assert cmp.a.layers[-1].output_shape == cmp.b.layers[-1].output_shape == [32, 28, 28]


def test_conv_vs_fc_456_against_14_455_392_with_locally_connected_between():
    cmp = builtin("conv-vs-fc")
    assert cmp.a.totals["params"] == 456 and cmp.b.totals["params"] == 14_455_392
    assert cmp.a.layers[-1].output_shape == cmp.b.layers[-1].output_shape == [6, 28, 28]
    assert cmp.middle.totals["params"] == 357_504 == 456 * 784
    assert cmp.middle.totals["macs"] == cmp.a.totals["macs"] == 352_800
    assert "measured 357,504, ok" in cmp.notes[0]
    assert cmp.to_dict()["middle"]["totals"]["params"] == 357_504


def test_locally_connected_is_a_conv_when_its_filters_are_tied():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 6, 5)
    local = LocallyConnected2d(3, 6, 5, 4)
    with torch.no_grad():  # the same filter at every one of the 4x4 positions
        w = conv.weight.reshape(6, -1).T  # [C*K*K, C_out], unfold's order
        local.weight.copy_(w.expand(16, *w.shape))
        local.bias.copy_(conv.bias[:, None, None].expand(6, 4, 4))
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(local(x), conv(x))
    with torch.no_grad():  # untie one position: only that output pixel changes
        local.weight[5] += 1
    diff = (local(x) - conv(x)).abs().amax((0, 1))
    assert (diff.flatten() > 1e-3).nonzero().flatten().tolist() == [5]


def test_fixed_size_comparison_refuses_size_options():
    with pytest.raises(ConfigError, match="takes no --channels"):
        builtin("conv-vs-fc", channels=3)


def test_cli_builtins_and_unknown_name(capsys):
    assert main(["compare", "bottleneck", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "120,422,400" in out and "12,443,648" in out and "MISMATCH" not in out
    assert main(["compare", "1x2"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown built-in comparison '1x2'" in err and "1x1" in err
    assert main(["compare", "--builtin", "conv-vs-fcc"]) == 2
    assert "conv-vs-fc" in capsys.readouterr().err


def test_cli_unknown_comparison_through_subprocess():
    r = subprocess.run(
        [sys.executable, "-m", "cnnlab", "compare", "bottlenek"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "bottleneck" in r.stderr
