"""Property tests: for random layer configurations our predicted shape equals what PyTorch
actually produces, and where PyTorch refuses a configuration we raise the documented error.
Strict mode raises exactly where PyTorch would silently floor."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnnlab.arithmetic as A
from cnnlab.arithmetic import FlooredSizeWarning
from cnnlab.errors import CnnlabError, ConfigError, ShapeError

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

sizes = st.integers(1, 14)
kernels = st.integers(1, 6)
strides = st.integers(1, 4)
pads = st.integers(0, 4)
dilations = st.integers(1, 3)


def torch_shape(fn, *args, **kwargs):
    """The output's spatial shape, or None when PyTorch refuses the configuration."""
    try:
        return tuple(fn(*args, **kwargs).shape[2:])
    except (RuntimeError, ValueError):
        return None


def ours(fn, *args, **kwargs):
    """(result, error) of one of our functions, with floor warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FlooredSizeWarning)
        try:
            return fn(*args, **kwargs), None
        except CnnlabError as e:
            return None, e


def fits(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) % s == 0


@SETTINGS
@given(
    h=sizes, w=sizes, kh=kernels, kw=kernels, s=strides, p=pads, d=dilations,
    groups=st.sampled_from([1, 2, 3]), cin=st.integers(1, 6), cout=st.integers(1, 6),
)  # fmt: skip
def test_conv2d_matches_pytorch(h, w, kh, kw, s, p, d, groups, cin, cout):
    x = torch.zeros(1, cin, h, w)
    try:
        conv = torch.nn.Conv2d(cin, cout, (kh, kw), s, p, d, groups=groups)
    except ValueError:  # PyTorch refuses channels not divisible by groups
        with pytest.raises(ConfigError, match="is not divisible by groups"):
            A.conv_params(cin, cout, (kh, kw), groups)
        return
    expected = torch_shape(conv, x)
    got, err = ours(A.conv_output_size, (h, w), (kh, kw), s, p, d, strict=False)
    if expected is None:
        assert isinstance(err, ShapeError) and "larger than the padded input" in err.message
        return
    assert got == expected
    weights, bias = A.conv_params(cin, cout, (kh, kw), groups)
    assert (weights, bias) == (conv.weight.numel(), conv.bias.numel())
    # MACs = output elements * (C_in/groups)*K*K, as torch.utils.flop_counter counts (FLOPs/2)
    assert A.conv_macs(cin, cout, *got, (kh, kw), groups) == cout * got[0] * got[1] * (
        conv.weight[0].numel()
    )
    # strict mode: exact where the size is whole, an error showing the numbers where not
    if fits(h, kh, s, p, d) and fits(w, kw, s, p, d):
        assert A.conv_output_size((h, w), (kh, kw), s, p, d) == expected
    else:
        with pytest.raises(ShapeError, match="is not an integer"):
            A.conv_output_size((h, w), (kh, kw), s, p, d)
        with pytest.warns(FlooredSizeWarning, match="floored to"):
            A.conv_output_size((h, w), (kh, kw), s, p, d, strict=False)


@SETTINGS
@given(n=sizes, k=kernels, d=dilations, s=strides, mode=st.sampled_from(["same", "valid"]))
def test_conv_string_padding_matches_pytorch(n, k, d, s, mode):
    x = torch.zeros(1, 1, n, n + 1)
    w = torch.zeros(1, 1, k, k)
    expected = torch_shape(F.conv2d, x, w, stride=s, padding=mode, dilation=d)
    got, err = ours(A.conv_output_size, (n, n + 1), k, s, mode, d, strict=False)
    if expected is None:
        assert err is not None
        if mode == "same":
            assert s > 1 and "needs stride 1" in err.message
    else:
        assert got == expected


@SETTINGS
@given(
    h=sizes, w=sizes, k=kernels, s=strides, p=pads, d=dilations,
    ceil=st.booleans(), kind=st.sampled_from(["max", "avg"]),
)  # fmt: skip
def test_pool2d_matches_pytorch(h, w, k, s, p, d, ceil, kind):
    x = torch.zeros(1, 2, h, w)
    if kind == "max":
        expected = torch_shape(F.max_pool2d, x, k, s, p, d, ceil_mode=ceil)
    else:
        d = 1  # average pooling has no dilation
        expected = torch_shape(F.avg_pool2d, x, k, s, p, ceil_mode=ceil)
    got, err = ours(A.pool_output_size, (h, w), k, s, p, d, ceil_mode=ceil, strict=False)
    if expected is None:
        assert isinstance(err, (ShapeError, ConfigError))
        if p > k // 2:
            assert "more than half the kernel" in err.message
        return
    assert got == expected, (got, expected)
    if not ceil and not (fits(h, k, s, p, d) and fits(w, k, s, p, d)):
        with pytest.raises(ShapeError, match="is not an integer"):
            A.pool_output_size((h, w), k, s, p, d)


@SETTINGS
@given(
    h=sizes, w=sizes, k=kernels, s=strides, p=pads, op=st.integers(0, 3), d=dilations,
    groups=st.sampled_from([1, 2]), cin=st.sampled_from([2, 4]), cout=st.sampled_from([2, 4]),
)  # fmt: skip
def test_conv_transpose2d_matches_pytorch(h, w, k, s, p, op, d, groups, cin, cout):
    x = torch.zeros(1, cin, h, w)
    weight = torch.zeros(cin, cout // groups, k, k)
    expected = torch_shape(
        F.conv_transpose2d, x, weight, stride=s, padding=p, output_padding=op,
        groups=groups, dilation=d,
    )  # fmt: skip
    got, err = ours(A.conv_transpose_output_size, (h, w), k, s, p, op, d)
    if expected is None:
        assert isinstance(err, (ShapeError, ConfigError))
        if op >= s and op >= d:
            assert "must be smaller than the stride" in err.message
        return
    if 0 in expected:  # PyTorch returns an empty map; we call a size of 0 an error
        assert isinstance(err, ShapeError) and "= 0 is not positive" in err.message
        return
    assert got == expected
    assert sum(A.conv_params(cin, cout, k, groups, bias=False)) == weight.numel()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    layers=st.lists(
        st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)), min_size=1, max_size=4
    )
)
def test_receptive_field_equals_gradient_support(layers):
    """Back-propagate from one output unit through convs with positive weights; the extent of
    the non-zero input gradient is the receptive field, and neighbouring units are one jump
    apart."""
    rf, jump = 1, 1
    for k, s, d in layers:
        rf, jump = A.receptive_field_step(rf, jump, k, s, d)
    length = rf + 2 * jump  # room for at least two output units
    x = torch.zeros(1, 1, length, requires_grad=True)
    y = x
    for k, s, d in layers:
        y = F.conv1d(y, torch.ones(1, 1, k), stride=s, dilation=d)
    assert y.shape[-1] >= 2
    (grad0,) = torch.autograd.grad(y[0, 0, 0], x, retain_graph=True)
    (grad1,) = torch.autograd.grad(y[0, 0, 1], x)
    nz0 = grad0[0, 0].nonzero().flatten()
    nz1 = grad1[0, 0].nonzero().flatten()
    assert int(nz0.max() - nz0.min()) + 1 == rf
    assert int(nz1.min() - nz0.min()) == jump
