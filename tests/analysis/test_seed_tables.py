"""Seed 001's tables reproduced from real torchvision models, and flop_counter agreement."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.analysis import summary


def kb(row):
    return round(row.activation_bytes / 1024)


# (row index in torchvision's AlexNet summary, output C x H x W, KB, params k, MMAC) per seed 001;
# conv4 is 149.5 MMAC (the seed prints 145), fc params include the bias (37,753k not 37,749k).
ALEXNET_SEED = [
    ("features.0", [64, 56, 56], 784, 23, 73),  # conv1
    ("features.2", [64, 27, 27], 182, 0, 0),  # pool1
    ("features.3", [192, 27, 27], 547, 307, 224),  # conv2
    ("features.5", [192, 13, 13], 127, 0, 0),  # pool2
    ("features.6", [384, 13, 13], 254, 664, 112),  # conv3
    ("features.8", [256, 13, 13], 169, 885, 150),  # conv4 (erratum: not 145)
    ("features.10", [256, 13, 13], 169, 590, 100),  # conv5
    ("features.12", [256, 6, 6], 36, 0, 0),  # pool5
    ("(flatten)", [9216], 36, 0, 0),  # flatten
    ("classifier.1", [4096], 16, 37753, 38),  # fc6
    ("classifier.4", [4096], 16, 16781, 17),  # fc7
    ("classifier.6", [1000], 4, 4097, 4),  # fc8
]


@pytest.mark.parametrize("name,out,kbytes,params_k,mmac", ALEXNET_SEED)
def test_alexnet_matches_seed_001(alexnet_summary, name, out, kbytes, params_k, mmac):
    row = alexnet_summary.layer(name)
    assert row.output_shape == out
    assert kb(row) == kbytes
    assert round(row.params / 1000) == params_k
    assert round(row.macs / 1e6) == mmac


def test_alexnet_exact_numbers(alexnet_summary):
    s = alexnet_summary
    conv1 = s.layer("features.0")
    assert (conv1.weights, conv1.bias, conv1.macs) == (64 * 3 * 11 * 11, 64, 72_855_552)
    assert (conv1.kernel, conv1.stride, conv1.padding, conv1.filters) == (
        [11, 11],
        [4, 4],
        [2, 2],
        64,
    )
    assert conv1.activation_bytes == 64 * 56 * 56 * 4 == 802_816
    assert s.layer("features.8").macs == 256 * 13 * 13 * 384 * 9 == 149_520_384
    assert s.layer("classifier.1").params == 9216 * 4096 + 4096 == 37_752_832
    # lecture FLOPs of a pooling row: (C*H'*W') * (K*K), seed 001's 0.4 MFLOP for pool1
    assert s.layer("features.2").flops == 64 * 27 * 27 * 9 == 419_904
    # torchvision's extra rows: adaptive pooling (identity at 6x6) and dropout are shown
    assert s.layer("avgpool").output_shape == [256, 6, 6]
    assert s.layer("avgpool").kernel == [1, 1]
    assert s.layer("classifier.0").type == "Dropout"
    assert s.layer("classifier.0").macs == 0


def test_googlenet_stem_matches_seed_001(tv_meta):
    s = summary(tv_meta("googlenet"), (3, 224, 224))
    conv1, pool1 = s.layer("conv1.conv"), s.layer("maxpool1")
    conv2, conv3, pool2 = s.layer("conv2.conv"), s.layer("conv3.conv"), s.layer("maxpool2")
    assert (conv1.output_shape, kb(conv1), round(conv1.macs / 1e6)) == ([64, 112, 112], 3136, 118)
    assert (pool1.output_shape, kb(pool1)) == ([64, 56, 56], 784)
    assert round(pool1.flops / 1e6) == 2  # seed: max-pool flop 2 M = 64*56*56*9
    assert (conv2.output_shape, round(conv2.params / 1000), round(conv2.macs / 1e6)) == (
        [64, 56, 56],
        4,
        13,
    )
    assert (conv3.output_shape, kb(conv3), round(conv3.macs / 1e6)) == ([192, 56, 56], 2352, 347)
    assert round(conv3.params / 1000) == 111
    assert (pool2.output_shape, kb(pool2)) == ([192, 28, 28], 588)
    # torchvision's BasicConv2d has bias=False and a BatchNorm: the seed's 9k includes a bias
    assert (conv1.weights, conv1.bias) == (9408, 0)
    assert s.layer("conv1.bn").params == 128


def test_vgg16_head_matches_seed_001(tv_meta):
    s = summary(tv_meta("vgg16"), (3, 224, 224))
    flat, fc6 = s.layer("(flatten)"), s.layer("classifier.0")
    fc7, fc8 = s.layer("classifier.3"), s.layer("classifier.6")
    assert (flat.output_shape, kb(flat)) == ([25088], 98)
    assert fc6.params == 102_764_544 and round(fc6.macs / 1e6) == 103
    assert fc7.params == 16_781_312 and round(fc7.macs / 1e6) == 17
    assert fc8.params == 4_097_000 and round(fc8.macs / 1e6) == 4
    assert (kb(fc6), kb(fc8)) == (16, 4)


@pytest.mark.parametrize("name,size", [("alexnet", 227), ("googlenet", 224), ("resnet50", 224)])
def test_totals_equal_flop_counter_and_numel(tv_meta, name, size):
    model = tv_meta(name)
    s = summary(model, (3, size, size))
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model.eval()(torch.empty(1, 3, size, size, device="meta"))
    assert s.totals["macs"] * 2 == fc.get_total_flops()
    assert s.with_convention("pytorch").totals["flops"] == fc.get_total_flops()
    assert s.totals["params"] == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in s.layers) == s.totals["params"]  # every param in one row
    assert s.coverage == 1.0 and not s.not_counted
