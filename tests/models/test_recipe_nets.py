"""The recipe nets live in the one model registry: summary, create and train find them."""

import pytest

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


def test_cifar_fast_net_airbench_options():
    import torch

    from cnnlab.models import create

    torch.manual_seed(0)
    m = create("cifar-fast-net", dirac=True, bn_weight=False, head_std=0.5)
    g = m.groups[0]
    x = torch.randn(2, 24, 8, 8)
    # dirac: the first c_in filters of the first conv pass their input channels through
    torch.testing.assert_close(g.conv1(x)[:, :24], x)
    assert not any(bn.weight.requires_grad for bn in m.modules() if hasattr(bn, "running_mean"))
    assert abs(m.fc.weight.std().item() - 0.5) < 0.05
    plain = create("cifar-fast-net")
    assert all(bn.weight.requires_grad for bn in plain.modules() if hasattr(bn, "running_mean"))
    assert not torch.allclose(plain.groups[0].conv1(x)[:, :24], x)


@pytest.mark.parametrize("bad", ["abc", 0, -1.0, True])
def test_cifar_fast_net_head_std_must_be_a_positive_number(bad):
    from cnnlab.errors import ConfigError
    from cnnlab.models import create

    with pytest.raises(ConfigError, match="head_std"):
        create("cifar-fast-net", head_std=bad)


def test_an_option_whose_default_is_none_is_type_checked_by_its_annotation():
    from cnnlab.errors import ConfigError
    from cnnlab.models import create

    with pytest.raises(ConfigError, match=r"head_std='wide': expected a float") as e:
        create("cifar-fast-net", head_std="wide")
    assert "leave it out" in e.value.hint
    create("cifar-fast-net", head_std=None)  # its default
    create("cifar-fast-net", head_std=1)  # an int is a float here
