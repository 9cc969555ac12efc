import pytest
import torch
import torch.nn.functional as F

from cnnlab.data import AUGMENT_PRESETS, Augment, mixup
from cnnlab.errors import ConfigError


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (16, 3, 32, 32), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("preset", sorted(AUGMENT_PRESETS))
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_presets_keep_shape_dtype_labels_and_are_reproducible(batch, preset, dtype):
    x = batch if dtype == torch.uint8 else batch.float() / 255
    labels = torch.arange(16) % 10
    out, targets = Augment(preset, seed=3)(x, labels)
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.equal(targets, labels)
    again, _ = Augment(preset, seed=3)(x, labels)
    assert torch.equal(out, again)
    if preset != "none":
        assert not torch.equal(out, x)  # it did something
        other, _ = Augment(preset, seed=4)(x, labels)
        assert not torch.equal(out, other)
    if dtype == torch.float32:
        assert out.min() >= 0 and out.max() <= 1


def test_global_generator_is_used_without_a_seed(batch):
    aug = Augment("strong")
    torch.manual_seed(11)
    a = aug(batch)
    torch.manual_seed(11)
    b = aug(batch)
    assert torch.equal(a, b)


def test_flip_is_an_exact_mirror(batch):
    assert torch.equal(Augment(flip=1.0)(batch), batch.flip(-1))
    out = Augment(flip=0.5, seed=0)(batch)
    mirrored = [torch.equal(o, x.flip(-1)) for o, x in zip(out, batch)]
    same = [torch.equal(o, x) for o, x in zip(out, batch)]
    assert all(m or s for m, s in zip(mirrored, same))
    assert 0 < sum(mirrored) < len(batch)


@pytest.mark.parametrize("mode,fmode", [("zeros", "constant"), ("reflect", "reflect")])
def test_pad_crop_is_a_shifted_window_of_the_padded_image(batch, mode, fmode):
    out = Augment(pad=4, pad_mode=mode, seed=1)(batch)
    padded = F.pad(batch, (4, 4, 4, 4), mode=fmode)
    shifts = set()
    for o, p in zip(out, padded):
        hits = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if torch.equal(o, p[:, dy : dy + 32, dx : dx + 32])
        ]
        assert hits, "output is no window of the padded image"
        shifts.add(hits[0])
    assert len(shifts) > 3  # windows differ from image to image


def test_random_crop_to_smaller_size(batch):
    out = Augment(crop=24, seed=0)(batch)
    assert out.shape == (16, 3, 24, 24)
    o, x = out[0], batch[0]
    assert any(
        torch.equal(o, x[:, dy : dy + 24, dx : dx + 24]) for dy in range(9) for dx in range(9)
    )


def test_scale_jitter_geometry_is_exact_resize(batch):
    # shorter side fixed at 64 and a 64 crop: the warp must be a plain 2x bilinear upscale
    x = batch.float() / 255
    out = Augment(scale_jitter=(64, 64), crop=64, seed=0)(x)
    torch.testing.assert_close(out, F.interpolate(x, scale_factor=2, mode="bilinear"))


def test_resized_crop_of_the_whole_image_is_identity(batch):
    x = batch.float() / 255
    out = Augment(resized_crop=(1.0, 1.0), ratio=(1.0, 1.0), seed=0)(x)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_imagenet_preset_is_the_seed_recipe_for_large_images():
    aug = Augment("imagenet", seed=0)
    cfg = aug.resolve(300)
    assert cfg.scale_jitter == (256.0, 480.0) and cfg.crop == 224 and cfg.flip == 0.5
    big = torch.randint(0, 256, (3, 3, 256, 320), dtype=torch.uint8)
    assert aug(big).shape == (3, 3, 224, 224)
    small = aug.resolve(32)
    assert small.crop == 32 and small.scale_jitter == pytest.approx((256 / 7, 480 / 7))


def test_affine_and_lens_keep_the_centre(batch):
    ones = torch.ones(8, 1, 33, 33)
    out = Augment(rotate=30, shear=10, stretch=0.2, lens=0.3, seed=0)(ones)
    torch.testing.assert_close(out[:, :, 16, 16], torch.ones(8, 1))  # the centre stays put
    assert (out < 0.5).any()  # corners came from outside the image (filled with 0)
    translated = Augment(translate=0.2, seed=0)(batch)
    assert not torch.equal(translated, batch)


def test_colour_jitter(batch):
    gray = torch.full((8, 3, 4, 4), 0.5)
    out = Augment(brightness=0.4, seed=0)(gray)
    f = out[:, 0, 0, 0] / 0.5
    assert (f >= 0.6 - 1e-6).all() and (f <= 1.4 + 1e-6).all() and f.std() > 0
    assert torch.equal(out, out[:, :1, :1, :1].expand_as(out))  # one factor per image
    # saturation leaves gray images alone and moves coloured ones
    g = torch.rand(4, 1, 8, 8).expand(4, 3, 8, 8)
    torch.testing.assert_close(Augment(saturation=0.9, seed=0)(g), g)
    x = batch.float() / 255
    assert not torch.allclose(Augment(saturation=0.9, seed=0)(x), x)
    # contrast scales about each image's mean gray, which stays (no clipping at small factors)
    mid = 0.4 + 0.2 * torch.rand(4, 3, 8, 8)
    out = Augment(contrast=0.3, seed=0)(mid)
    lum = lambda t: (0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]).mean((1, 2))  # noqa: E731
    torch.testing.assert_close(lum(out), lum(mid))


def test_cutout_sets_one_square(batch):
    x = torch.full((32, 1, 16, 16), 200, dtype=torch.uint8)
    out = Augment(cutout=4, cutout_fill=0.0, seed=0)(x)
    cut = out == 0
    counts = cut.flatten(1).sum(1)
    assert counts.max() == 16 and (counts > 0).all()
    for c, m in zip(counts, cut[:, 0]):
        ys, xs = m.nonzero(as_tuple=True)
        assert (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1) == c  # a filled rectangle


def test_mixup_targets_and_images():
    x = torch.rand(8, 3, 4, 4)
    labels = torch.arange(8)  # class i for image i: the targets tell each image's partners
    mixed, targets = mixup(x, labels, num_classes=8, alpha=0.4, generator=torch.Generator())
    assert targets.shape == (8, 8)
    torch.testing.assert_close(targets.sum(1), torch.ones(8))
    expected = targets @ x.flatten(1)  # sum_k target[b, k] * image k
    torch.testing.assert_close(mixed.flatten(1), expected)
    out, soft = Augment("flip", mixup=0.2, seed=0, num_classes=4)(x, labels % 3)
    assert soft.shape == (8, 4) and out.shape == x.shape and soft[:, 3].sum() == 0
    with pytest.raises(ConfigError, match="num_classes"):
        Augment(mixup=0.2)(x, labels)
    with pytest.raises(ConfigError, match="labels"):
        Augment(mixup=0.2)(x)


def test_alternating_flip_complements_across_epochs(batch):
    aug = Augment("none", alternating_flip=True)
    index = torch.arange(100, 116)
    e0 = aug(batch, index=index)
    aug.set_epoch(1)
    e1 = aug(batch, index=index)
    flipped0 = [torch.equal(o, x.flip(-1)) for o, x in zip(e0, batch)]
    flipped1 = [torch.equal(o, x.flip(-1)) for o, x in zip(e1, batch)]
    assert all(a != b for a, b in zip(flipped0, flipped1))
    assert 0 < sum(flipped0) < 16


def test_spec_parsing_and_errors():
    aug = Augment.from_spec("flip-crop,cutout=8,mixup=0.2,scale_jitter=36:68,crop=32")
    cfg = aug.resolve(32)
    assert (cfg.flip, cfg.pad, cfg.cutout, cfg.mixup) == (0.5, 4, 8, 0.2)
    assert cfg.scale_jitter == (36.0, 68.0) and cfg.crop == 32
    assert Augment("cifar").resolve(32) == Augment("flip-crop").resolve(32)
    with pytest.raises(ConfigError, match="flip-crop"):
        Augment("flipcrop")
    with pytest.raises(ConfigError, match="rotate"):
        Augment(rotation=10)
    with pytest.raises(ConfigError, match="probabilities"):
        Augment(flip=2).resolve(32)
    with pytest.raises(ConfigError, match="folds"):
        Augment(lens=1.5).resolve(32)
    with pytest.raises(ConfigError, match="name=value"):
        Augment.from_spec("flip-crop,cutout")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_same_augmentation_on_gpu_as_on_cpu(batch):
    from cnnlab.data import BatchLoader, tta_views

    for preset in ("flip-crop", "strong", "lecture", "imagenet"):
        cpu = Augment(preset, seed=7)(batch)
        gpu = Augment(preset, seed=7)(batch.cuda())
        assert gpu.device.type == "cuda"
        # index ops agree exactly; interpolation may differ by one uint8 level
        assert (gpu.cpu().int() - cpu.int()).abs().max() <= 1
    loader = BatchLoader(batch, torch.arange(16), 4, device="cuda", seed=0)
    x, y = next(iter(loader))
    assert x.is_cuda and y.is_cuda and torch.equal(x.cpu(), batch[y.cpu()])
    assert tta_views(batch.cuda(), "multiscale").shape == (50, 16, 3, 32, 32)


# ---------------------------------------------------------------- vertical flip and hue (seed 000)


def _batch(n=16, c=3, h=8, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_vflip_mirrors_rows_exactly(dtype):
    from cnnlab.data import Augment

    x = _batch(64)
    x = x if dtype == torch.uint8 else x.float() / 255
    y = Augment(vflip=0.5, seed=1)(x)
    assert y.dtype == dtype and y.shape == x.shape
    same = (y == x).flatten(1).all(1)
    mirrored = (y == x.flip(-2)).flatten(1).all(1)
    assert (same | mirrored).all() and 10 < int(mirrored.sum()) < 54  # about half of 64
    assert torch.equal(Augment(vflip=1.0)(x), x.flip(-2))
    assert torch.equal(Augment(vflip=0.5, seed=1)(x), y)  # a seed gives the same draws


def test_hue_matches_torchvision_adjust_hue_per_image():
    import torchvision.transforms.functional as TF

    from cnnlab.data.augment import AugmentConfig, _color, _Draws

    x = _batch(6).float() / 255
    g = torch.Generator().manual_seed(3)
    shifts = -0.2 + 0.4 * torch.rand(_Draws.COLUMNS, 6, generator=g)[0]  # the first column
    out = _color(
        x.clone(), AugmentConfig(hue=0.2), _Draws(6, torch.Generator().manual_seed(3), x.device)
    )
    for i in range(6):
        torch.testing.assert_close(out[i], TF.adjust_hue(x[i], float(shifts[i])), atol=1e-5, rtol=0)


def test_hue_keeps_grey_images_and_brightness_order():
    from cnnlab.data import Augment

    grey = _batch(4, c=1)
    assert torch.equal(Augment(hue=0.5, seed=0)(grey), grey)
    x = _batch(8)
    y = Augment(hue=0.3, seed=0)(x)
    assert y.dtype == torch.uint8 and not torch.equal(y, x)
    # a hue rotation keeps each pixel's max and min channel (HSV's V and chroma), up to rounding
    assert (y.max(1).values.int() - x.max(1).values.int()).abs().max() <= 1
    assert (y.min(1).values.int() - x.min(1).values.int()).abs().max() <= 1


def test_vflip_and_hue_on_every_available_device():
    from cnnlab.data import Augment

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    x = _batch(8)
    ref = Augment("seed000", seed=0)(x)
    for dev in devices:  # draws come from the CPU generator: the same result on any device
        y = Augment("seed000", seed=0)(x.to(dev))
        assert y.device.type == dev and (y.cpu().int() - ref.int()).abs().max() <= 1


def test_vflip_and_hue_bad_values_and_describe():
    from cnnlab.data import Augment

    with pytest.raises(ConfigError, match="hue must be in"):
        Augment(hue=0.7)(_batch(2))
    with pytest.raises(ConfigError, match="vflip"):
        Augment(vflip=1.5)(_batch(2))
    text = Augment("seed000").resolve(32).describe()
    assert "vertical flip p=0.5" in text and "hue 0.05" in text
    assert Augment.from_spec("flip,vflip=0.25,hue=0.1").resolve(32).vflip == 0.25
