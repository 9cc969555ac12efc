import pytest
import torch

from cnnlab.data import iter_tta_views, tta_predict, tta_view_count, tta_views
from cnnlab.data.tta import SEED_SCALES, default_scales
from cnnlab.errors import ConfigError, ShapeError


@pytest.fixture(scope="module")
def batch():
    return torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32) / 6144


@pytest.mark.parametrize(
    "mode,count,size",
    [
        ("none", 1, 32),
        ("flip", 2, 32),
        ("flip-shift", 6, 32),
        ("10crop", 10, 28),
        ("multiscale", 50, 32),
    ],
)
def test_view_counts_and_shapes(batch, mode, count, size):
    views = tta_views(batch, mode)
    assert views.shape == (count, 2, 3, size, size)
    assert tta_view_count(mode) == count
    u8 = tta_views((batch * 255).round().to(torch.uint8), mode)
    assert u8.dtype == torch.uint8 and u8.shape == views.shape


def test_flip_views(batch):
    views = tta_views(batch, "flip")
    assert torch.equal(views[0], batch) and torch.equal(views[1], batch.flip(-1))


def test_flip_shift_views_are_the_image_and_one_pixel_shifts_each_mirrored(batch):
    v = tta_views(batch, "flip-shift")
    assert torch.equal(v[0], batch) and torch.equal(v[1], batch.flip(-1))
    # content moved one pixel down-right (up-left edge reflected), then one pixel up-left
    assert torch.equal(v[2][..., 1:, 1:], batch[..., :-1, :-1])
    assert torch.equal(v[2][..., 0, 1:], batch[..., 1, :-1])  # reflect: row 1 mirrored in
    assert torch.equal(v[4][..., :-1, :-1], batch[..., 1:, 1:])
    assert torch.equal(v[3], v[2].flip(-1)) and torch.equal(v[5], v[4].flip(-1))


def test_flip_shift_needs_two_pixels():
    with pytest.raises(ShapeError, match="2x2"):
        tta_views(torch.zeros(1, 1, 1, 5), "flip-shift")


def test_ten_crops_are_the_corners_and_the_centre_then_mirrored(batch):
    c = 24
    views = tta_views(batch, "10crop", crop=c)
    x, m = batch, batch.flip(-1)
    for offset, img in ((0, x), (5, m)):
        assert torch.equal(views[offset + 0], img[..., :c, :c])  # top left
        assert torch.equal(views[offset + 1], img[..., :c, -c:])  # top right
        assert torch.equal(views[offset + 2], img[..., -c:, :c])  # bottom left
        assert torch.equal(views[offset + 3], img[..., -c:, -c:])  # bottom right
        assert torch.equal(views[offset + 4], img[..., 4:28, 4:28])  # centre
    assert len({v.numpy().tobytes() for v in views}) == 10  # ten different views


def test_multiscale_follows_the_seed_protocol(batch):
    assert default_scales(224) == SEED_SCALES == (224, 256, 384, 480, 640)
    assert default_scales(28) == (28, 32, 48, 60, 80)
    groups = list(iter_tta_views(batch, "multiscale"))
    assert len(groups) == 5 and all(g.shape == (10, 2, 3, 32, 32) for g in groups)
    # the smallest scale equals the crop: its crops are the whole image (and mirror)
    assert all(torch.equal(v, batch) for v in groups[0][:5])
    assert all(torch.equal(v, batch.flip(-1)) for v in groups[0][5:])
    # larger scales zoom in: their centre crop differs from the image
    assert not torch.allclose(groups[4][4], batch)
    custom = tta_views(batch, "multiscale", crop=16, scales=(16, 24, 40))
    assert custom.shape == (30, 2, 3, 16, 16)
    with pytest.raises(ShapeError, match="smaller than the crop"):
        tta_views(batch, "multiscale", crop=32, scales=(24, 32))


def test_tta_predict_averages_softmax_over_views(batch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 28 * 28, 5))
    probs = tta_predict(model, batch, "10crop")
    views = tta_views(batch, "10crop")
    expected = torch.stack([model(v).softmax(-1) for v in views]).mean(0)
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(probs.sum(1), torch.ones(2))
    doubled = tta_predict(model, batch, "10crop", preprocess=lambda v: v * 2)
    assert not torch.allclose(doubled, probs)


def test_unknown_mode():
    with pytest.raises(ConfigError, match="10crop"):
        tta_views(torch.zeros(1, 1, 8, 8), "10-crop")
