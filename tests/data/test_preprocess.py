import io

import pytest
import torch

from cnnlab.data import Preprocessor
from cnnlab.errors import ConfigError, ShapeError


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 8, 6), generator=g, dtype=torch.uint8)
    x[:, 0] //= 2  # channels with different statistics
    x[:, 2] = (x[:, 2] // 4) + 100
    return x


def test_mean_image_makes_training_mean_image_zero(images):
    pre = Preprocessor("mean-image").fit(images)
    assert pre.mean.shape == (3, 8, 6)
    out = pre(images)
    assert out.dtype == torch.float32
    assert out.mean(0).abs().max() < 1e-5
    # a per-pixel mean differs from the per-channel one: not every pixel of the mean is equal
    assert pre.mean[0].std() > 0


def test_channel_mean_zeroes_three_channel_means(images):
    pre = Preprocessor("channel-mean").fit(images)
    assert pre.mean.shape == (3,)
    out = pre(images)
    assert out.mean((0, 2, 3)).abs().max() < 1e-5
    # only a shift: the spread of each channel is unchanged
    torch.testing.assert_close(out.std((0, 2, 3)), (images / 255.0).std((0, 2, 3)))


def test_standardize_gives_mean_0_std_1_per_channel(images):
    pre = Preprocessor("standardize").fit(images)
    out = pre(images)
    assert out.mean((0, 2, 3)).abs().max() < 1e-5
    torch.testing.assert_close(out.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    expected = (images / 255.0).permute(1, 0, 2, 3).reshape(3, -1)
    torch.testing.assert_close(pre.mean, expected.mean(1))
    torch.testing.assert_close(pre.std, expected.std(1, unbiased=False))


def test_none_only_scales_to_unit_range(images):
    out = Preprocessor("none").fit(images)(images)
    torch.testing.assert_close(out, images.float() / 255)


def test_float_input_is_taken_as_unit_range(images):
    pre = Preprocessor("standardize").fit(images)
    torch.testing.assert_close(pre(images.float() / 255), pre(images))


@pytest.mark.parametrize("mode", ["standardize", "channel-mean", "mean-image"])
def test_normalising_leaves_the_callers_batch_alone(images, mode):
    # a uint8 batch is normalised in its float copy, in place; a float batch is not touched
    pre = Preprocessor(mode).fit(images)
    mean, std = pre._stats(images.float())
    unit = images.float() / 255
    expected = (unit - mean) / std if std is not None else unit - mean
    before = images.clone()
    assert torch.equal(pre(images), expected)  # the same operations, the same rounding
    assert torch.equal(images, before)
    floats = unit.clone()
    assert torch.equal(pre(floats), expected)
    assert torch.equal(floats, unit)


def test_fit_in_chunks_equals_fit_at_once(images):
    unit = images.double() / 255  # float input: the chunked sums (uint8 takes histograms)
    a = Preprocessor("standardize").fit(unit, chunk=7)
    b = Preprocessor("standardize").fit(unit, chunk=4096)
    torch.testing.assert_close(a.mean, b.mean)
    torch.testing.assert_close(a.std, b.std)


@pytest.mark.parametrize("mode", ["channel-mean", "standardize"])
def test_uint8_histogram_fit_equals_float_sums(images, mode):
    fast = Preprocessor(mode).fit(images)  # per-channel 256-bin histograms
    slow = Preprocessor(mode).fit(images.double() / 255)  # float64 sums over chunks
    torch.testing.assert_close(fast.mean, slow.mean, atol=1e-7, rtol=0)
    if mode == "standardize":
        torch.testing.assert_close(fast.std, slow.std, atol=1e-7, rtol=0)
    else:
        assert fast.std is None


@pytest.mark.parametrize("mode", ["mean-image", "channel-mean", "standardize", "none"])
def test_state_round_trip_through_weights_only_checkpoint(images, mode):
    pre = Preprocessor(mode).fit(images)
    buf = io.BytesIO()
    torch.save({"preprocess": pre.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["preprocess"]
    restored = Preprocessor.from_state_dict(state)
    assert restored.mode == mode
    torch.testing.assert_close(restored(images), pre(images))
    torch.testing.assert_close(restored.inverse(restored(images)), images / 255.0)


def test_mean_image_resized_for_other_sizes_equals_mean_of_resized(images):
    import torch.nn.functional as F

    pre = Preprocessor("mean-image").fit(images)
    small = F.interpolate(images.float() / 255, size=(4, 3), mode="bilinear", antialias=True)
    out = pre(small)
    assert out.shape == small.shape
    assert out.mean(0).abs().max() < 1e-5  # resizing is linear, so the means commute


def test_errors():
    with pytest.raises(ConfigError, match="standardize"):
        Preprocessor("standardise")
    with pytest.raises(ConfigError, match="not fitted"):
        Preprocessor("standardize")(torch.zeros(1, 3, 2, 2))
    pre = Preprocessor("channel-mean").fit(torch.zeros(2, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ShapeError, match="3-channel"):
        pre(torch.zeros(1, 1, 2, 2))
