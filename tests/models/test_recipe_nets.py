"""The recipe nets live in the one model registry: summary, create and train find them."""

from cnnlab.cli import main
from cnnlab.models import create, get_info, list_models


def test_recipe_nets_are_registered(capsys):
    assert {"cifar-fast-net", "fashion-vgg"} <= set(list_models("Recipe nets"))
    assert get_info("cifar-fast-net").input_size == (3, 32, 32)
    assert create("fashion-vgg", num_classes=5)(__import__("torch").zeros(2, 1, 28, 28)).shape == (
        2,
        5,
    )
    assert main(["summary", "cifar-fast-net"]) == 0  # was "unknown model" in 0.1
    assert "cifar-fast-net at 1x3x32x32" in capsys.readouterr().out
