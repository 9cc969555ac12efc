"""Feature maps, stage ends, SOURCE and layer resolution, images and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError, DataError, ShapeError
from cnnlab.viz.features import feature_maps, stage_ends
from cnnlab.viz.images import read_image, to_model_channels
from cnnlab.viz.source import check_image_size, get_conv, get_layer, load_source


def test_stage_ends_of_resnet18_are_its_stages():
    from torchvision.models import resnet18

    model = resnet18().eval()
    s = cnnlab.summary(model, (3, 224, 224))
    assert stage_ends(s, model) == ["relu", "layer1", "layer2", "layer3", "layer4"]


def test_feature_maps_shapes_and_receptive_fields_match_the_summary(tiny):
    x = torch.randn(1, 3, 16, 16)
    s = cnnlab.summary(tiny, (3, 16, 16))
    maps = feature_maps(tiny, x, ["features.2", "features"], s)
    assert maps["features.2"].shape == (6, 8, 8)
    assert maps["features.2"].receptive_field == tuple(s.layer("features.2").receptive_field)
    assert maps["features"].shape == (8, 4, 4)  # a container: its last row's output
    assert maps["features"].receptive_field == tuple(s.layer("features.4").receptive_field)
    torch.testing.assert_close(maps["features"].output, tiny.features(x)[0])


def test_unknown_layer_lists_layers_closest_first(tiny):
    with pytest.raises(ConfigError) as e:
        get_layer(tiny, "features.33")
    assert "no layer 'features.33'" in e.value.message
    assert e.value.hint.startswith("layers, closest first: features.3")


def test_filters_of_a_layer_that_is_not_a_conv_names_the_convs(tiny):
    with pytest.raises(ConfigError) as e:
        get_conv(tiny, "features.2")
    assert "is a MaxPool2d, not a convolution" in e.value.message
    assert "features.0" in e.value.hint and "features.3" in e.value.hint
    assert get_conv(tiny, None)[0] == "features.0"


def test_sample_images_and_file_errors(tmp_path, png):
    assert read_image("sample:china").shape == (427, 640, 3)
    assert read_image("sample:flower").dtype == np.uint8
    with pytest.raises(DataError, match="unknown sample image 'chna'") as e:
        read_image("sample:chna")
    assert "china" in e.value.hint
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match="cannot decode image"):
        read_image(bad)
    with pytest.raises(DataError, match="does not exist"):
        read_image(tmp_path / "nope.jpg")
    gray = read_image(png(np.full((5, 6), 9)))
    assert gray.shape == (5, 6, 1)


def test_grayscale_image_for_an_rgb_model_is_converted_with_a_note(png):
    img = read_image(png(np.arange(64 * 64).reshape(64, 64) % 256))
    rgb, note = to_model_channels(img, 3)
    assert rgb.shape == (64, 64, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    assert note == "grayscale image converted to RGB for an RGB model"
    src = load_source("resnet18")
    x, shown = src.prepare(img)
    assert x.shape == (1, 3, 224, 224) and shown.shape == (224, 224, 3)
    assert "grayscale image converted to RGB for an RGB model" in src.notes
    assert "resnet18 has random weights (no --weights FILE given)" in src.notes


def test_image_smaller_than_the_model_accepts():
    with pytest.raises(ShapeError) as e:
        check_image_size(np.zeros((20, 40, 3)), (32, 32))
    assert "20x40, smaller than the 32x32" in e.value.message


def test_sources_zoo_with_weights_factory_and_checkpoint(tmp_path, tiny_run):
    from cnnlab.models import create

    sd_path = tmp_path / "lenet.pth"
    torch.manual_seed(5)
    ref = create("lenet5")
    torch.save(ref.state_dict(), sd_path)
    src = load_source("lenet5", weights=str(sd_path))
    assert not src.notes and src.input_size == (1, 32, 32)
    torch.testing.assert_close(src.model.features[0].weight, ref.features[0].weight)
    fac = load_source("tests.viz.conftest:tiny_net", input_size="3x16x16")
    assert fac.kind == "factory" and fac.input_size == (3, 16, 16)
    run = load_source(str(tiny_run))
    assert run.kind == "run" and run.classes == [str(i) for i in range(10)]
    ck = load_source(str(tiny_run / "last.pt"))
    assert ck.kind == "checkpoint"
    with pytest.raises(ConfigError, match="--weights is for a model name"):
        load_source(str(tiny_run), weights=str(sd_path))
    with pytest.raises(DataError, match="not a cnnlab training checkpoint") as e:
        load_source(str(sd_path))
    assert "--weights" in e.value.hint
    with pytest.raises(DataError, match="holds no best.pt or last.pt"):
        load_source(str(tmp_path))


def test_image_modes_decode_to_gray_or_rgb_uint8(tmp_path):
    from PIL import Image

    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png").shape == (4, 5, 3)
    assert (read_image(tmp_path / "rgba.png")[..., 0] == 200).all()  # alpha dropped, not mixed
    deep = np.full((3, 4), 0xABCD, np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # 16-bit gray: the top 8 bits
    img = read_image(tmp_path / "deep.png")
    assert img.dtype == np.uint8 and img.shape == (3, 4, 1) and (img == 0xAB).all()
    pal = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).convert("P")
    pal.save(tmp_path / "pal.gif")
    assert read_image(tmp_path / "pal.gif").shape == (3, 4, 3)


def test_resize_equals_torchvision_resize():
    from torchvision.transforms.v2 import functional as TF

    from cnnlab.viz.images import resize

    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 256, (1, 3, 61, 90), dtype=torch.uint8, generator=g)
    for hw in [(32, 32), (100, 70)]:
        assert torch.equal(resize(t, hw), TF.resize(t, list(hw), antialias=True))


def test_viz_features_imports_neither_torchvision_nor_dynamo(tmp_path, fresh_python):
    # each costs 1.5-3 s of a command's start-up on a 2-core CPU (issue 8's speed targets)
    code = (
        "import sys; from cnnlab.cli import main; "
        f"main(['viz', 'features', 'lenet5', 'sample:flower', '-o', r'{tmp_path / 'f.png'}']); "
        "bad = [m for m in ('torchvision', 'torch._dynamo') if m in sys.modules]; "
        "assert not bad, bad"
    )
    fresh_python(code)
    assert (tmp_path / "f.png").stat().st_size > 1000
