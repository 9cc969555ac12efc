"""apply_kernel against scipy and torch, seed 000's worked example, kernels and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import signal

from cnnlab.errors import ConfigError, ShapeError
from cnnlab.viz.filters import KERNELS, apply_kernel, filter_tiles, get_kernel, output_size_working

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(7, 9), (12, 10), (5, 5)])
@pytest.mark.parametrize("kshape", [(3, 3), (2, 4), (1, 1)])
def test_equals_scipy_correlate_and_convolve(shape, kshape):
    img = RNG.normal(size=shape)
    k = RNG.normal(size=kshape)
    np.testing.assert_allclose(apply_kernel(img, k), signal.correlate2d(img, k, mode="valid"))
    np.testing.assert_allclose(
        apply_kernel(img, k, flip=True), signal.convolve2d(img, k, mode="valid")
    )


@pytest.mark.parametrize("stride,pad", [(1, 0), (2, 0), (1, 2), (3, 1), (2, 3)])
def test_equals_torch_conv2d_with_stride_and_padding(stride, pad):
    img = RNG.normal(size=(11, 13, 3))
    k = RNG.normal(size=(3, 4))
    got = apply_kernel(img, k, stride=stride, pad=pad)
    x = torch.from_numpy(img).permute(2, 0, 1)[:, None]  # channels as a batch
    w = torch.from_numpy(k)[None, None]
    want = F.conv2d(x, w, stride=stride, padding=pad)[:, 0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # per channel: the same as correlating each channel alone with zero padding
    padded = np.pad(img[:, :, 1], pad)
    np.testing.assert_allclose(
        got[:, :, 1], signal.correlate2d(padded, k, mode="valid")[::stride, ::stride]
    )


def test_flip_with_padding_equals_scipy_full_convolution():
    img = RNG.normal(size=(6, 7))
    k = RNG.normal(size=(3, 3))
    np.testing.assert_allclose(
        apply_kernel(img, k, pad=2, flip=True), signal.convolve2d(img, k, mode="full")
    )


def test_seed000_vertical_bar_filter_weighted_average():
    """Seed 000: a 4x4 filter for a vertical stroke, 'element-wise multiplication and
    average' at every position; it answers to the stroke wherever it is."""
    k = np.array([[0, 1, 1, 0]] * 3 + [[0, 0.9, 0.9, 0]])
    img = np.zeros((8, 10))
    img[2:6, 4:6] = 1.0  # a 4-pixel-tall, 2-wide vertical stroke
    out = apply_kernel(img, k, average=True)
    assert out.shape == (5, 7)
    assert out.max() == pytest.approx((6 * 1.0 + 2 * 0.9) / 16)  # 0.4875
    assert np.unravel_index(out.argmax(), out.shape) == (2, 3)
    moved = np.roll(img, (1, 3), axis=(0, 1))  # the same stroke elsewhere
    out2 = apply_kernel(moved, k, average=True)
    assert out2.max() == pytest.approx(out.max())
    assert np.unravel_index(out2.argmax(), out2.shape) == (3, 6)
    # average = sum / 16
    np.testing.assert_allclose(out * 16, apply_kernel(img, k))


def test_builtin_kernels_behave():
    img = RNG.uniform(0, 255, size=(9, 9))
    np.testing.assert_allclose(apply_kernel(img, "identity", pad=1), img)
    flat = np.full((6, 6), 7.0)
    for name in ("box-blur", "gaussian-blur", "sharpen"):
        np.testing.assert_allclose(apply_kernel(flat, name), 7.0)  # weights sum to 1
    for name in ("outline", "sobel-x", "sobel-y"):
        np.testing.assert_allclose(apply_kernel(flat, name), 0.0, atol=1e-12)  # edges only
    ramp = np.tile(np.arange(6.0), (6, 1))  # brightness grows to the right
    assert (apply_kernel(ramp, "sobel-x") == 8).all()
    assert (apply_kernel(ramp, "sobel-y") == 0).all()
    assert set(KERNELS) == {
        "identity",
        "box-blur",
        "gaussian-blur",
        "sharpen",
        "emboss",
        "outline",
        "sobel-x",
        "sobel-y",
    }


def test_kernel_strings():
    np.testing.assert_array_equal(get_kernel("1,2,3;4,5,6"), [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(get_kernel(" -1 , 0.5 ; 2e-1, 1 "), [[-1, 0.5], [0.2, 1]])
    np.testing.assert_array_equal(get_kernel("3"), [[3]])


@pytest.mark.parametrize(
    "text,needle",
    [
        ("1,2,3;4,5", "ragged rows of 3, 2 numbers"),
        ("1,a;2,3", "'a' is not a number"),
        ("1,2;;3,4", "an empty row"),
        ("sobelx", "unknown kernel 'sobelx'"),
    ],
)
def test_bad_kernels_say_what_is_wrong(text, needle):
    with pytest.raises(ConfigError) as e:
        get_kernel(text)
    assert needle in e.value.message
    if text == "sobelx":
        assert "sobel-x" in e.value.hint


def test_bad_arguments():
    with pytest.raises(ShapeError, match="larger than"):
        apply_kernel(np.zeros((2, 2)), np.ones((3, 3)))
    with pytest.raises(ConfigError, match="stride"):
        apply_kernel(np.zeros((5, 5)), "identity", stride=0)
    with pytest.raises(ShapeError):
        apply_kernel(np.zeros((2, 2, 2, 2)), "identity")


def test_output_size_working_uses_the_lectures_formula():
    lines = output_size_working(427, 640, np.ones((3, 3)), 2, 1)
    assert lines[0] == "output H = (427 - 3 + 2*1)/2 + 1 = 214"
    assert lines[1].endswith("= 320.5 -> floor 320 (as frameworks do)")


def test_filter_tiles_rgb_mean_channels():
    w = torch.randn(5, 3, 4, 4)
    tiles, mode = filter_tiles(w)
    assert mode == "rgb" and tiles.shape == (5, 4, 4, 3)
    assert np.allclose(tiles.min(axis=(1, 2, 3)), 0) and np.allclose(tiles.max(axis=(1, 2, 3)), 1)
    # per-kernel normalisation: scaling one kernel changes nothing
    w2 = w.clone()
    w2[0] *= 100
    np.testing.assert_allclose(filter_tiles(w2)[0], tiles, atol=1e-6)
    tiles, mode = filter_tiles(torch.randn(4, 6, 3, 3))
    assert mode == "mean" and tiles.shape == (4, 3, 3, 1)
    tiles, mode = filter_tiles(torch.randn(4, 6, 3, 3), "channels")
    assert tiles.shape == (24, 3, 3, 1)
    with pytest.raises(ConfigError, match="3 input channels"):
        filter_tiles(torch.randn(4, 6, 3, 3), "rgb")


def test_the_package_exposes_apply_kernel_and_attribute():
    import cnnlab.viz
    from cnnlab.viz import attribute as attribute_module_or_function

    assert cnnlab.viz.apply_kernel is apply_kernel
    assert callable(attribute_module_or_function)
    assert cnnlab.viz.attribute.__name__ == "attribute"
