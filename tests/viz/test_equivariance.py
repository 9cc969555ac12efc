"""Translation equivariance of a filter (seed 000) and max pooling's smaller change."""

import numpy as np
import pytest

from cnnlab.errors import ConfigError, ShapeError
from cnnlab.viz.equivariance import plot_shift_equivariance, shift, shift_equivariance

SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)


def blobs(h=40, w=48, seed=0):
    """A smooth test image: a few Gaussian blobs, non-zero up to the borders."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = 0.2 + np.zeros((h, w))
    for cy, cx, s in zip(rng.uniform(0, h, 6), rng.uniform(0, w, 6), rng.uniform(2, 6, 6)):
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return img


def test_shift_moves_content_and_fills_zeros():
    x = np.arange(1.0, 13).reshape(3, 4)
    s = shift(x, 1, -1)  # right 1, up 1
    assert s.tolist() == [[0, 5, 6, 7], [0, 9, 10, 11], [0, 0, 0, 0]]
    assert np.array_equal(shift(x, 0, 0), x)


@pytest.mark.parametrize("dx,dy", [(1, 0), (0, 1), (3, -2), (-5, 4)])
@pytest.mark.parametrize("kernel", [SOBEL, np.arange(20.0).reshape(4, 5) - 9])
def test_filter_of_shifted_equals_shifted_filter_inside(dx, dy, kernel):
    img = blobs()
    r = shift_equivariance(img, kernel, dx, dy)
    assert r.equivariant and r.interior_error < 1e-12
    assert r.border_error > 1e-3  # the identity really is only away from the borders
    # the interior, by hand: f(T x)[i, j] == f(x)[i - dy, j - dx]
    rows, cols = np.where(r.interior)
    np.testing.assert_allclose(r.f_of_shifted[rows, cols], r.filtered[rows - dy, cols - dx])
    kh, kw = kernel.shape
    h, w = img.shape
    assert r.interior.sum() == (h - kh + 1 - abs(dy)) * (w - kw + 1 - abs(dx))


def test_channels_are_filtered_alone():
    img = np.stack([blobs(seed=1), -blobs(seed=1)], axis=2)  # H x W x C, as cnnlab filter reads
    r = shift_equivariance(img, "sobel-x", 2, 1)
    assert r.filtered.shape == img.shape
    np.testing.assert_allclose(r.filtered[:, :, 0], -r.filtered[:, :, 1])
    assert r.equivariant


@pytest.mark.parametrize("dx,dy", [(1, 0), (0, 1), (1, 1)])
def test_max_pooled_map_changes_less_under_small_shifts(dx, dy):
    r = shift_equivariance(blobs(64, 64, seed=3), SOBEL, dx, dy, pool=2)
    assert 0 < r.pooled_change < r.conv_change
    assert r.pooled.shape == (32, 32)


def test_shift_larger_than_the_image_is_a_clear_error():
    with pytest.raises(ShapeError, match=r"a shift of \(40, 0\) leaves no pixel") as e:
        shift_equivariance(blobs(20, 30), SOBEL, 40, 0)
    assert "|dx| < 28" in e.value.hint
    with pytest.raises(ShapeError, match="leaves no pixel"):  # inside the image, but no interior
        shift_equivariance(blobs(20, 30), SOBEL, 0, 18)
    with pytest.raises(ConfigError, match="kernel"):
        shift_equivariance(blobs(), np.ones(3), 1, 1)


def test_plot(tmp_path):
    r = shift_equivariance(blobs(), SOBEL, 2, 1)
    path = plot_shift_equivariance(r, tmp_path / "shift.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["shift.png"]  # no temp file left behind


def test_filter_agrees_with_torch_conv2d():
    """'same' filtering is cross-correlation with zero padding, as torch computes it."""
    import torch

    img, k = blobs(), np.arange(15.0).reshape(3, 5) - 7
    r = shift_equivariance(img, k, 0, 1)
    ref = torch.nn.functional.conv2d(
        torch.tensor(img)[None, None], torch.tensor(k)[None, None], padding="same"
    )[0, 0]
    np.testing.assert_allclose(r.filtered, ref.numpy(), atol=1e-12)


def _png(tmp_path):
    from PIL import Image

    path = tmp_path / "blobs.png"
    Image.fromarray((blobs(40, 48) / blobs(40, 48).max() * 255).astype(np.uint8)).save(path)
    return path


def test_cli_filter_shift(tmp_path, capsys):
    from cnnlab.cli import main

    img, out = _png(tmp_path), tmp_path / "shift.png"
    assert main(["filter", str(img), "--kernel", "sobel-x", "--shift", "2,-1", "-o", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "max difference 0.00e+00" in text and "(equal)" in text and "(less)" in text
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "extra,msg",
    [
        (["--shift", "60,0"], "leaves no pixel away from the borders"),
        (["--shift", "2"], "malformed --shift"),
        (["--shift", "1,1", "--stride", "2"], "--stride and --pad do not apply"),
        (["--shift", "1,1", "--pool", "0"], "pool must be"),
        (["--pool", "2"], "without --shift it does nothing"),
    ],
)
def test_cli_filter_shift_bad_input(extra, msg, tmp_path, capsys):
    from cnnlab.cli import main

    out = tmp_path / "o.png"
    assert main(["filter", str(_png(tmp_path)), "-k", "sobel-x", *extra, "-o", str(out)]) == 2
    assert msg in " ".join(capsys.readouterr().err.split())
    assert not out.exists()


def test_cli_shift_larger_than_the_image_has_no_traceback(tmp_path):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "cnnlab", "filter", str(_png(tmp_path)), "-k", "outline",
         "--shift", "0,500", "-o", str(tmp_path / "o.png")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr and "|dy| < 38" in r.stderr
