"""Class heat maps: convolutionalize on a larger image; at the training size, the classifier."""

from __future__ import annotations

import pytest
import torch

from cnnlab.models import create
from cnnlab.viz.heatmap import choose_class, class_map, pooled_head_map
from cnnlab.viz.source import Source, _imagenet_pipeline


def _lenet_source():
    torch.manual_seed(0)
    model = create("lenet5").eval()
    return Source(model, "lenet5", (1, 32, 32), _imagenet_pipeline(1, (32, 32)), (32, 32))


def test_class_map_at_the_training_size_is_the_classifier_softmax():
    src = _lenet_source()
    x = torch.rand(1, 1, 32, 32)
    probs, _ = class_map(src, x)
    assert probs.shape == (10, 1, 1)
    torch.testing.assert_close(probs[:, 0, 0], torch.softmax(src.model(x), 1)[0])


def test_class_map_on_a_larger_image_slides_the_classifier():
    src = _lenet_source()
    x = torch.rand(1, 1, 48, 64)
    probs, _ = class_map(src, x)
    # LeNet-5's jump is 4: (48 - 32)/4 + 1 = 5 rows, (64 - 32)/4 + 1 = 9 columns
    assert probs.shape == (10, 5, 9)
    torch.testing.assert_close(probs.sum(0), torch.ones(5, 9))
    # position (2, 3) is the classifier on the 32x32 window at (8, 12)
    window = x[:, :, 8:40, 12:44]
    torch.testing.assert_close(probs[:, 2, 3], torch.softmax(src.model(window), 1)[0])
    k = choose_class(probs)
    assert probs[k].max() == probs.flatten(1).amax()


def _gap_source(name, size=64):
    torch.manual_seed(0)
    model = create(name).eval()
    return Source(model, name, (3, size, size), _imagenet_pipeline(3, (size, size)), (size, size))


def test_global_pool_network_gets_its_head_at_every_position_cam():
    # ResNet: GAP + linear fc, so the positions' logits average to the model's own logits
    src = _gap_source("resnet18")
    x = torch.rand(1, 3, 96, 128)
    logits = pooled_head_map(src.model, x)
    assert logits.shape == (1, 1000, 3, 4)  # stride 32
    with torch.inference_mode():
        torch.testing.assert_close(logits.mean((2, 3)), src.model(x), rtol=1e-4, atol=1e-4)
    probs, how = class_map(src, x)
    assert probs.shape == (1000, 3, 4) and "CAM" in how
    torch.testing.assert_close(probs, torch.softmax(logits, 1)[0])


def test_densenet_functional_pool_and_nin_class_maps():
    # DenseNet pools with F.adaptive_avg_pool2d (no module to hook): still found
    src = _gap_source("densenet121")
    x = torch.rand(1, 3, 64, 96)
    logits = pooled_head_map(src.model, x)
    with torch.inference_mode():
        torch.testing.assert_close(logits.mean((2, 3)), src.model(x), rtol=1e-4, atol=1e-4)
    # NIN's last conv already outputs one map per class: the map is that output itself
    nin = create("nin").eval()
    x = torch.rand(1, 3, 96, 96)
    with torch.inference_mode():
        maps = nin.features(x)
    logits = pooled_head_map(nin, x)
    assert logits.shape == maps.shape and logits.shape[:2] == (1, 1000)
    torch.testing.assert_close(logits, maps)


def test_model_without_fc_head_or_global_pool_is_a_clear_error():
    from cnnlab.errors import ConfigError

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(5)
    )
    model(torch.zeros(1, 3, 8, 8))
    src = Source(model.eval(), "plain", (3, 8, 8), _imagenet_pipeline(3, (8, 8)), (8, 8))
    with pytest.raises(ConfigError, match="nor does it end in a global pooling layer") as e:
        class_map(src, torch.rand(1, 3, 8, 8))
    assert "NIN, GoogLeNet, ResNet, DenseNet" in e.value.hint
