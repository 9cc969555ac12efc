"""The registry: names, metadata, options, and the errors a user meets."""

import pytest
import torch

import cnnlab.models as zoo
from cnnlab.errors import ConfigError, ShapeError
from cnnlab.models import create, get_info, list_models, model_options, register_model
from cnnlab.models.registry import VARIANTS, families, registration_order

MINE = ["LeNet", "AlexNet", "ZFNet", "VGG", "NIN"]


def test_torchvision_names_and_paper_names_are_registered():
    names = set(list_models())
    for n in ["alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg16_bn", "vgg19_bn"]:
        assert n in names
    for n in ["lenet5", "lenet5_1998", "alexnet2012", "zfnet", "zfnet_fig3", "vgg11_lrn",
              "vgg16_c", "nin", "nin_cifar", "vgg16_cifar", "vgg16_bn_cifar"]:  # fmt: skip
        assert n in names


@pytest.mark.parametrize("family", MINE)
def test_metadata_is_complete_and_consistent(family, meta_shape):
    names = list_models(family)
    assert names and set(names) <= set(registration_order())
    for name in names:
        info = get_info(name)
        assert info.family == family and info.variant in VARIANTS
        assert 1990 < info.year < 2030 and str(info.year) in info.paper
        assert info.description and info.builder.__doc__
        opts = model_options(name)
        assert opts["num_classes"] == info.num_classes and "in_channels" in opts
        assert opts["in_channels"] == info.input_size[0]
        # The default input gives (N, default classes) -- every model, on meta.
        assert meta_shape(name, info.input_size) == (2, info.num_classes)
        if info.variant == "cifar":
            assert info.input_size == (3, 32, 32) and info.num_classes == 10
            assert meta_shape(name, (3, 32, 32), num_classes=100) == (2, 100)
        elif info.variant == "mnist":  # LeNet-5: the CIFAR input is in_channels=3 at 32x32
            assert meta_shape(name, (3, 32, 32), in_channels=3, num_classes=10) == (2, 10)
        elif family == "VGG":  # the adaptive pool accepts 32x32 (1x1 maps, replicated)
            assert meta_shape(name, (3, 32, 32), num_classes=10) == (2, 10)
        else:  # ImageNet-only models refuse 32x32 clearly, naming the input they need
            with pytest.raises(ShapeError, match="shrinks to nothing") as e:
                meta_shape(name, (3, 32, 32), num_classes=10)
            assert "x".join(map(str, info.input_size)) in e.value.hint


def test_families_listed_in_registration_order():
    assert families()[:5] == MINE


def test_unknown_name_suggests_close_names():
    with pytest.raises(ConfigError, match="unknown model 'vgg61'") as e:
        create("vgg61")
    assert "vgg16" in e.value.hint
    with pytest.raises(ConfigError) as e:
        get_info("lenet")
    assert "lenet5" in e.value.hint
    with pytest.raises(ConfigError, match="cnnlab models"):
        get_info("qqqqqqqqqq")


def test_unknown_option_names_the_options_the_family_has():
    with pytest.raises(ConfigError, match="has no option 'c3table'") as e:
        create("lenet5_1998", c3table=False)
    assert "c3_table=True" in e.value.hint and "output='linear'" in e.value.hint
    assert "did you mean: c3_table" in str(e.value)
    with pytest.raises(ConfigError, match="'batch_norm'") as e:
        create("vgg16", batch_norm=True)
    assert "num_classes=1000" in e.value.hint and "dropout=0.5" in e.value.hint


def test_options_reach_the_builder():
    with torch.device("meta"):
        m = create("vgg11", num_classes=7, in_channels=1, dropout=0.1)
    assert m.features[0].in_channels == 1 and m.classifier[-1].out_features == 7
    assert m.classifier[2].p == 0.1


def test_register_model_rejects_duplicates_and_bad_variants():
    with pytest.raises(RuntimeError, match="twice"):
        register_model("lenet5", family="LeNet", paper="x 1998", year=1998,
                       input_size=(1, 32, 32))(lambda: None)  # fmt: skip
    with pytest.raises(ValueError, match="variant"):
        register_model("x", family="X", paper="x", year=2000, input_size=(1, 2, 2),
                       variant="svhn")  # fmt: skip


def test_package_exports():
    assert callable(zoo.convolutionalize) and callable(zoo.load_weights)
    assert set(zoo.__all__) >= {"create", "list_models", "get_info", "convolutionalize"}


def test_an_option_of_the_wrong_type_is_refused_not_taken_as_truthy():
    """-O relu_after_pool=maybe reached the builder as the string 'maybe' (truthy: silently
    True); options with a bool / int / float / str default must be given as one."""
    with pytest.raises(ConfigError, match="relu_after_pool='maybe': expected a bool") as e:
        create("lenet5", relu_after_pool="maybe")
    assert "true or false" in e.value.hint
    with pytest.raises(ConfigError, match="num_classes=True: expected an int"):
        create("lenet5", num_classes=True)  # a bool is not a class count
    with pytest.raises(ConfigError, match="num_classes=2.5"):
        create("lenet5", num_classes=2.5)
    assert create("lenet5", relu_after_pool=True, num_classes=3).classifier[-1].out_features == 3
