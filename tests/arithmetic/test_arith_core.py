"""Unit tests of the pure arithmetic: formulas, rounding rules, errors and their messages."""

import ast
import pathlib
import subprocess
import sys
import warnings

import pytest

import cnnlab.arithmetic as A
from cnnlab.arithmetic import FlooredSizeWarning
from cnnlab.errors import ConfigError, ShapeError

PACKAGE = pathlib.Path(A.__file__).parent


def test_package_never_imports_torch():
    code = (
        "import sys, cnnlab.arithmetic, cnnlab.arithmetic.layer, cnnlab.teaching.errata, "
        "cnnlab.cli.shape; assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_torch_import_statement_anywhere_in_the_package():
    # catches lazy imports inside functions, which the subprocess test would not execute
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "torch" or n.startswith("torch.") for n in names), path


# ----------------------------------------------------------------------------- output sizes


def test_lecture_formula():
    assert A.conv_output_size(32, 5) == 28  # seed 000: 32 - 5 + 1
    assert A.conv_output_size(227, 11, stride=4) == 55  # seed 000 AlexNet conv1
    assert A.conv_output_size(227, 11, stride=4, padding=2) == 56  # seed 001
    assert A.conv_output_size((227, 200), (11, 5), (4, 5), (2, 0)) == (56, 40)


def test_numpy_and_whole_float_arguments_are_accepted():
    import numpy as np

    assert A.conv_output_size(np.int64(32), np.int32(5)) == 28
    assert A.conv_macs(3, 64, np.int64(56), 56.0, [11, 11]) == 72_855_552


def test_non_integer_size_raises_with_the_numbers_and_the_fix():
    with pytest.raises(ShapeError) as info:
        A.conv_output_size(32, 5, stride=2)
    err = info.value
    assert "(32 - 5 + 2*0)/2 + 1 = 14.5 is not an integer" in err.message
    assert "--floor" in err.hint and "strict=False" in err.hint and "(-> 14)" in err.hint
    # the suggested stride and input size really fit
    assert "stride 1 (-> 28)" in err.hint and "input size 31 (-> 14)" in err.hint
    assert A.conv_output_size(31, 5, stride=2) == 14


def test_hint_suggests_a_padding_that_fits():
    with pytest.raises(ShapeError) as info:
        A.conv_output_size(227, 11, stride=4, padding=1)
    assert "(227 - 11 + 2*1)/4 + 1 = 55.5 is not an integer" in info.value.message
    assert "padding 0 (-> 55)" in info.value.hint
    assert A.conv_output_size(227, 11, 4, 0) == 55
    # GoogLeNet's stem: 217 + 2P is odd for every P, so no padding is offered, only other fixes
    with pytest.raises(ShapeError) as info:
        A.conv_output_size(224, 7, stride=2, padding=3)
    assert "= 112.5 is not an integer" in info.value.message
    assert "padding" not in info.value.hint.split(";")[0]
    assert "input size 223 (-> 112)" in info.value.hint


def test_strict_false_floors_and_warns_like_pytorch():
    with pytest.warns(FlooredSizeWarning, match=r"112\.5 is not an integer; floored to 112"):
        assert A.conv_output_size(224, 7, 2, 3, strict=False) == 112


def test_warning_points_at_the_caller():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        A.pool_output_size(56, 3, 2, strict=False)
    assert caught and caught[0].filename == __file__


def test_pool_default_stride_is_the_kernel_and_ceil_mode_rule():
    assert A.pool_output_size(224, 2) == 112
    assert A.pool_output_size(56, 3, 2, ceil_mode=True) == 28  # 27.5 -> 28
    # ceil would give 4, but the 4th window would start at 6 = input 5 + left pad 1: dropped
    assert A.pool_output_size(5, 2, 2, padding=1, ceil_mode=True) == 3
    assert A.pool_output_size(6, 3, 2, padding=1, ceil_mode=True) == 4  # 3.5 -> 4, kept


def test_pool_padding_limit():
    with pytest.raises(ConfigError, match="more than half the kernel 3"):
        A.pool_output_size(9, 3, 1, padding=2)
    with pytest.raises(ConfigError, match="no 'same'"):
        A.pool_output_size(9, 3, 1, padding="same")


def test_dilation_uses_the_effective_kernel():
    assert A.effective_kernel(3, 2) == 5
    assert A.conv_output_size(28, 3, 1, 2, dilation=2) == 28
    with pytest.raises(ShapeError, match=r"\(10 - 5 \+ 2\*0\)/2 \+ 1 = 3.5"):
        A.conv_output_size(10, 3, 2, 0, 2)


def test_kernel_larger_than_padded_input():
    with pytest.raises(ShapeError, match=r"kernel 5 is larger than the padded input 3 \+ 0"):
        A.conv_output_size(3, 5)
    with pytest.raises(ShapeError, match=r"effective kernel 3\*\(3 - 1\) \+ 1 = 7"):
        A.conv_output_size(5, 3, dilation=3)
    assert A.conv_output_size(3, 5, padding=1) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=0, kernel=3), "input size must be >= 1"),
        (dict(n=8, kernel=0), "kernel must be >= 1"),
        (dict(n=8, kernel=3, stride=0), "stride must be >= 1"),
        (dict(n=8, kernel=3, padding=-1), "padding must be >= 0"),
        (dict(n=8, kernel=3, dilation=0), "dilation must be >= 1"),
        (dict(n=8, kernel=2.5), "kernel must be a whole number"),
        (dict(n=8, kernel=True), "kernel must be a whole number"),
        (dict(n=8, kernel=3, padding="full"), "unknown padding 'full'"),
        (dict(n=(8, 8), kernel=(3, 3, 3)), "different lengths"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        A.conv_output_size(**kwargs)


def test_same_and_valid_padding():
    assert A.resolve_padding("valid", 3) == 0
    assert A.resolve_padding("same", 3) == 1
    assert A.resolve_padding("same", 3, 2) == 2
    assert A.resolve_padding("same", 4) == (1, 2)  # even: the extra pixel goes after, as PyTorch
    assert A.resolve_padding("same", (3, 4)) == (1, (1, 2))
    assert A.resolve_padding(((1, 2), 3), (3, 3)) == ((1, 2), 3)
    assert A.conv_output_size(10, 4, padding="same") == 10
    assert A.conv_output_size((10, 7), (4, 3), padding="same", dilation=(1, 3)) == (10, 7)
    assert A.conv_output_size(10, 4, padding="valid") == 7
    with pytest.raises(ConfigError, match="padding='same' needs stride 1"):
        A.conv_output_size(10, 3, stride=2, padding="same")


def test_transposed_conv():
    assert A.conv_transpose_output_size(14, 4, 2, 1) == 28  # the DCGAN/U-Net doubling
    assert A.conv_transpose_output_size(7, 3, 2, 1, output_padding=1) == 14
    assert A.conv_transpose_output_size((7, 5), 3, 2, 1, 1, (1, 2)) == (14, 12)
    with pytest.raises(ConfigError, match="output_padding 2 must be smaller than the stride 2"):
        A.conv_transpose_output_size(7, 3, 2, 0, output_padding=2)
    with pytest.raises(ShapeError, match="= -1 is not positive"):
        A.conv_transpose_output_size(1, 1, 1, 1)


# ----------------------------------------------------------------------------- counts


def test_params_and_macs():
    assert A.conv_params(3, 64, 11) == (23_232, 64)
    assert A.conv_params(3, 64, (11, 11), bias=False) == (23_232, 0)
    assert A.conv_params(64, 128, 3, groups=64) == (128 * 1 * 9, 128)
    assert A.conv_params(32, 32, 3, groups=32) == (288, 32)  # depthwise
    assert A.linear_params(9216, 4096) == (37_748_736, 4096)
    assert A.conv_macs(3, 64, 56, 56, 11) == 72_855_552
    assert A.conv_macs(64, 64, 28, 28, 3, groups=2) == 64 * 28 * 28 * 32 * 9
    assert A.conv_transpose_macs(64, 32, 14, 14, 4) == 64 * 14 * 14 * 32 * 16
    assert A.linear_macs(4096, 1000) == 4_096_000
    assert A.pool_flops(64, 27, 27, 3) == 419_904


def test_groups_must_divide_channels():
    with pytest.raises(
        ConfigError, match=r"in_channels 3 is not divisible by groups 2 \(3/2 = 1.5"
    ):
        A.conv_params(3, 64, 3, groups=2)
    with pytest.raises(ConfigError, match="out_channels 9 is not divisible by groups 2"):
        A.conv_macs(4, 9, 5, 5, 3, groups=2)


@pytest.mark.parametrize(
    "dtype, nbytes",
    [
        ("float32", 800),
        ("fp32", 800),
        ("float16", 400),
        ("half", 400),
        ("bfloat16", 400),
        ("bf16", 400),
        ("float64", 1600),
        ("double", 1600),
        ("int8", 200),
        ("uint8", 200),
        ("int64", 1600),
        ("bool", 200),
        ("int4", 100),
        ("torch.float16", 400),
    ],
)
def test_activation_bytes_by_dtype(dtype, nbytes):
    assert A.activation_bytes(200, dtype) == nbytes


def test_activation_bytes_takes_torch_and_numpy_dtypes():
    import numpy as np
    import torch

    assert A.activation_bytes(10, torch.bfloat16) == 20
    assert A.activation_bytes(10, torch.float8_e4m3fn) == 10
    assert A.activation_bytes(10, np.float64) == 80
    assert A.activation_bytes(10, np.dtype("int16")) == 20
    assert A.activation_bytes(3, "int4") == 2  # sub-byte dtypes round up to whole bytes


def test_unknown_dtype_suggests():
    with pytest.raises(ConfigError, match="unknown dtype 'flaot32'") as info:
        A.activation_bytes(10, "flaot32")
    assert "float32" in info.value.hint


# ----------------------------------------------------------------------------- receptive field


def test_receptive_field_seed000_table_corrected():
    # seed 000: a 7x7 layer then two 3x3 layers, strides 1, 1, 2. The third layer's field grows
    # by (3 - 1) * jump_in, and jump_in = 1*1 = 1 (its own stride 2 only affects later layers)
    assert A.receptive_field([(7, 1), (3, 1), (3, 2)]) == [(7, 1), (9, 1), (11, 2)]
    # a 4th 3x3 layer sees 11 + 2*2 = 15; seed 000's R_in + (K-1)*S would say 13 for S = 1
    assert A.receptive_field_step(11, 2, 3, 1) == (15, 2)


def test_receptive_field_stacks_of_3x3_and_dilation():
    # seed 002: three 3x3 convs see 7x7, five see 11x11
    assert A.receptive_field([(3, 1)] * 3)[-1] == (7, 1)
    assert A.receptive_field([(3, 1)] * 5)[-1] == (11, 1)
    # dilations 1, 2, 4 (the context module): 3, 7, 15
    assert [r for r, _ in A.receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)])] == [3, 7, 15]
    assert A.receptive_field_step((1, 1), (1, 1), (3, 5), (2, 1)) == ((3, 5), (2, 1))


def test_alexnet_receptive_field_is_195():
    layers = [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)]
    assert A.receptive_field(layers)[-1] == (195, 32)


def test_docstring_examples_run():
    import doctest

    import cnnlab.arithmetic.core as core

    for module in (A, core):
        assert doctest.testmod(module).failed == 0
