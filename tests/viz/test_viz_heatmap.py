"""Class heat maps: convolutionalize on a larger image; at the training size, the classifier."""

from __future__ import annotations

import torch

from cnnlab.models import create
from cnnlab.viz.heatmap import choose_class, class_map
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
