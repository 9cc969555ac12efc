"""convolutionalize: the FC head as convolutions gives the same logits, then heat maps."""

import pytest
import torch
import torchvision

from cnnlab.errors import ConfigError, ShapeError
from cnnlab.models import convolutionalize, create
from cnnlab.models.convolutionalize import FullyConvolutional


def _check(model, size, bigger, atol=1e-5, batch=2):
    torch.manual_seed(0)
    model.eval()
    fcn = convolutionalize(model)
    assert isinstance(fcn, FullyConvolutional)
    assert not any(isinstance(m, torch.nn.Linear) for m in fcn.modules())
    x = torch.randn(batch, *size)
    with torch.no_grad():
        logits, maps = model(x), fcn(x)
        heat = fcn(torch.randn(1, size[0], *bigger))
    assert maps.shape == (*logits.shape, 1, 1)
    assert torch.allclose(maps.flatten(1), logits, atol=atol, rtol=1e-4)
    return heat


@pytest.mark.parametrize("name", ["lenet5", "lenet5_1998"])
def test_lenet(name):
    heat = _check(create(name), (1, 32, 32), (64, 48))
    # 64x48 input: the conv part gives 13x9 (modern) / 9x5 (1998) positions of a 32x32 window
    # moved by 4 pixels (the product of the strides).
    assert heat.shape[:2] == (1, 10)
    assert heat.shape[2:] == ((64 - 32) // 4 + 1, (48 - 32) // 4 + 1)


def test_lenet_heat_map_entries_are_window_logits():
    model = create("lenet5").eval()
    fcn = convolutionalize(model)
    x = torch.randn(1, 1, 40, 40)
    with torch.no_grad():
        heat = fcn(x)
        # Position (i, j) is the original network applied to the 32x32 crop at (4i, 4j).
        for i, j in [(0, 0), (1, 2), (2, 2)]:
            crop = x[:, :, 4 * i : 4 * i + 32, 4 * j : 4 * j + 32]
            assert torch.allclose(heat[:, :, i, j], model(crop), atol=1e-5)


def test_alexnet_drops_the_adaptive_pool():
    # torchvision's own AlexNet (cnnlab's `alexnet` has the same modules; test_weights shows
    # they compute the same function).
    model = torchvision.models.alexnet(num_classes=10)
    heat = _check(model, (3, 224, 224), (288, 320))
    # 288 -> 8x8 conv maps, a 6x6 kernel slides to 3 positions; 320 -> 9 -> 4 positions.
    assert heat.shape == (1, 10, 3, 4)
    assert not any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in
                   convolutionalize(model).modules())  # fmt: skip


def test_vgg():
    model = create("vgg11", num_classes=10)
    heat = _check(model, (3, 224, 224), (256, 256), batch=1)
    assert heat.shape == (1, 10, 2, 2)  # 256/32 = 8 maps -> 2 positions of the 7x7 kernel


def test_original_model_is_untouched_and_mode_is_kept():
    model = create("lenet5").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fcn = convolutionalize(model)
    assert fcn.training
    with torch.no_grad():
        next(fcn.head.parameters()).add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_refusals_name_the_problem():
    with pytest.raises(ConfigError, match="RBFOutput"):
        convolutionalize(create("lenet5_1998", output="rbf"))
    with pytest.raises(ConfigError, match="already fully convolutional"):
        convolutionalize(create("nin_cifar"))
    with pytest.raises(ConfigError, match="no `features`"):
        convolutionalize(torch.nn.Linear(3, 4))
    bn_head = create("lenet5")
    bn_head.classifier.insert(1, torch.nn.BatchNorm1d(120))
    with pytest.raises(ConfigError, match=r"classifier\[1\] \(BatchNorm1d\)"):
        convolutionalize(bn_head)
    fcn = convolutionalize(create("lenet5")).eval()
    with pytest.raises(ShapeError, match="smaller"), torch.no_grad():
        fcn(torch.randn(1, 1, 24, 24))


def test_input_size_probe():
    # A head whose flattened shape is not square needs input_size; it is probed on meta.
    model = create("lenet5").eval()
    model.features.append(torch.nn.ZeroPad2d((0, 1, 0, 0)))  # 16x5x5 -> 16x5x6
    model.classifier[0] = torch.nn.Linear(16 * 5 * 6, 120)
    with pytest.raises(ConfigError, match="input_size"):
        convolutionalize(model)
    fcn = convolutionalize(model, input_size=(1, 32, 32)).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fcn(x).flatten(1), model(x), atol=1e-5)
    with pytest.raises(ShapeError, match="reads 480"):
        convolutionalize(model, input_size=(1, 36, 36))
