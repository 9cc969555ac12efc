"""Loading torchvision state-dict files: same outputs, clear refusals (nothing downloaded)."""

import pytest
import torch
import torchvision
from torch import nn

from cnnlab.errors import ConfigError, DataError
from cnnlab.models import create, load_weights
from cnnlab.models.weights import KEY_MAPS, register_key_map


def _randomise_bn(model):
    # Fresh BN layers are the identity in eval mode; give them real statistics first.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize(
    "name, size", [("alexnet", 224), ("vgg16", 112), ("vgg16_bn", 112)]
)  # VGG's adaptive pool makes any size >= 32 valid; 112 keeps the test cheap
def test_torchvision_state_dict_gives_the_same_outputs(name, size, tmp_path):
    torch.manual_seed(0)
    tv = getattr(torchvision.models, name)().eval()
    _randomise_bn(tv)
    path = tmp_path / f"{name}.pth"
    torch.save(tv.state_dict(), path)
    ours = create(name, weights=path).eval()
    assert type(ours).__module__.startswith("cnnlab.models")
    assert all(p.requires_grad and p.device.type == "cpu" for p in ours.parameters())
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv(x), atol=1e-5, rtol=1e-4)


def test_wrong_architecture_names_the_key_and_both_shapes(tmp_path):
    path = tmp_path / "lenet5.pth"
    torch.save(create("lenet5").state_dict(), path)
    with pytest.raises(ConfigError) as e:
        create("lenet5_1998", c3_table=False, weights=path)
    msg = str(e.value)
    # In the 1998 net features.2 is S2 (trainable subsampling, weight of shape (6,)); the modern
    # net's file has no features.2 (a max-pool there): the first problem in model order is named.
    assert "'features.2.weight'" in msg and "missing" in msg and "(6)" in msg
    torch.save(create("lenet5").state_dict(), path)
    with pytest.raises(ConfigError, match=r"'features.0.weight' has shape \(6, 1, 5, 5\) in "
                       r"the file but \(6, 3, 5, 5\) in the model"):  # fmt: skip
        create("lenet5", in_channels=3, weights=path)


def test_only_the_head_differs_hints_num_classes(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(create("lenet5", num_classes=7).state_dict(), path)
    with pytest.raises(ConfigError, match="num_classes=7"):
        create("lenet5", weights=path)
    assert create("lenet5", num_classes=7, weights=path).classifier[-1].out_features == 7


def test_unexpected_key_is_named(tmp_path):
    sd = create("lenet5").state_dict()
    sd["extra.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(ConfigError, match=r"unexpected key 'extra.weight' \(3\)"):
        create("lenet5", weights=tmp_path / "w.pth")


def test_missing_corrupt_and_pickled_files(tmp_path):
    with pytest.raises(DataError, match="not found") as e:
        create("lenet5", weights=tmp_path / "nope.pth")
    assert "state_dict" in e.value.hint
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="corrupt"):
        create("lenet5", weights=tmp_path / "bad.pth")
    torch.save(create("lenet5"), tmp_path / "whole.pth")  # a pickled module, not a state dict
    with pytest.raises(DataError, match="pickled") as e:
        create("lenet5", weights=tmp_path / "whole.pth")
    assert "state_dict()" in e.value.hint
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(DataError, match="does not hold a state dict"):
        create("lenet5", weights=tmp_path / "list.pth")


def test_wrapped_checkpoints_and_dataparallel_prefix(tmp_path):
    ref = create("lenet5_1998").eval()
    sd = ref.state_dict()
    x = torch.randn(1, 1, 32, 32)
    for i, obj in enumerate([
        {"state_dict": sd, "epoch": torch.tensor(3)},
        {"model": sd},
        {"module." + k: v for k, v in sd.items()},
    ]):  # fmt: skip
        torch.save(obj, tmp_path / f"{i}.pth")
        m = create("lenet5_1998", weights=tmp_path / f"{i}.pth").eval()
        with torch.no_grad():
            assert torch.equal(m(x), ref(x))


class _Renamed(nn.Module):
    """A model whose names differ from the file's: the class hook maps them."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 2)

    @staticmethod
    def torchvision_key_map(key):
        return None if key.startswith("aux.") else key.replace("fc.", "body.")


def test_key_map_hooks(tmp_path):
    src = nn.Linear(3, 2)
    sd = {"fc.weight": src.weight.detach(), "fc.bias": src.bias.detach()}
    sd["aux.weight"] = torch.zeros(5)  # dropped by the hook (returns None)
    torch.save(sd, tmp_path / "w.pth")
    m = load_weights(_Renamed(), tmp_path / "w.pth")
    assert torch.equal(m.body.weight, src.weight)
    # The registry-name hook runs first; here it renames, then the class hook is a no-op.
    torch.save({"x.weight": src.weight.detach(), "x.bias": src.bias.detach()}, tmp_path / "x.pth")
    register_key_map("_renamed_test", lambda k: k.replace("x.", "fc."))
    try:
        m = load_weights(_Renamed(), tmp_path / "x.pth", name="_renamed_test")
        assert torch.equal(m.body.bias, src.bias)
    finally:
        KEY_MAPS.pop("_renamed_test")
