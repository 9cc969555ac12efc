"""cnnlab.viz.attribute equals Captum's own call for each method; its errors."""

from __future__ import annotations

import pytest
import torch
from captum import attr

from cnnlab.errors import ConfigError
from cnnlab.viz.attribute import METHODS, attribute


@pytest.fixture
def x():
    return torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_deconv_guided_saliency_equal_captum(tiny, x):
    for method, engine, kw in (
        ("deconv", attr.Deconvolution, {}),
        ("guided", attr.GuidedBackprop, {}),
        ("saliency", attr.Saliency, {"abs": True}),
    ):
        got = attribute(tiny, x, method, target=2)
        # Captum directly (on a model without in-place ReLUs, which its hooks need)
        ref_model = type(tiny)()
        ref_model.load_state_dict(tiny.state_dict())
        ref_model.features[1].inplace = False
        want = engine(ref_model.eval()).attribute(x.clone().requires_grad_(), target=2, **kw)
        assert got.shape == x.shape
        torch.testing.assert_close(got, want.detach(), msg=method)
        assert got.abs().sum() > 0
    # the model's in-place ReLU is back as it was
    assert tiny.features[1].inplace is True


def test_saliency_is_the_absolute_input_gradient(tiny, x):
    xg = x.clone().requires_grad_()
    tiny(xg)[:, 1].sum().backward()
    torch.testing.assert_close(attribute(tiny, x, "saliency", target=1), xg.grad.abs())


def test_gradcam_equals_captum_upsampled(tiny, x):
    got = attribute(tiny, x, "gradcam", target=0)
    layer = tiny.features[3]  # the last conv: the default layer
    cam = attr.LayerGradCam(tiny, layer).attribute(x, target=0)
    want = attr.LayerAttribution.interpolate(cam, (16, 16), "bilinear")
    assert got.shape == (2, 1, 16, 16)
    torch.testing.assert_close(got, want.detach())
    torch.testing.assert_close(
        attribute(tiny, x, "gradcam", 0, layer="features.0"),
        attr.LayerAttribution.interpolate(
            attr.LayerGradCam(tiny, tiny.features[0]).attribute(x, target=0), (16, 16), "bilinear"
        ).detach(),
    )


def test_occlusion_equals_captum(tiny, x):
    got = attribute(tiny, x, "occlusion", target=3, window=4, stride=2)
    want = attr.Occlusion(tiny).attribute(
        x, target=3, sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), baselines=0
    )
    assert got.shape == x.shape
    torch.testing.assert_close(got, want)


def test_default_target_is_the_predicted_class(tiny, x):
    pred = int(tiny(x[:1]).argmax(1))
    torch.testing.assert_close(
        attribute(tiny, x[:1], "saliency"), attribute(tiny, x[:1], "saliency", target=pred)
    )


def test_unknown_method_and_layer(tiny, x):
    with pytest.raises(ConfigError) as e:
        attribute(tiny, x, "gradcamm")
    assert "gradcam" in e.value.hint
    assert set(METHODS) == {"deconv", "guided", "saliency", "gradcam", "occlusion"}
    with pytest.raises(ConfigError) as e:
        attribute(tiny, x, "gradcam", 0, layer="features.9")
    assert e.value.hint.startswith("layers, closest first: features.")
