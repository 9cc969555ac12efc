"""The lecture notes' tables, recomputed: every cell the seeds get right is pinned, every cell
they get wrong must equal the erratum's value and differ from what the seed prints."""

import warnings

import pytest

import cnnlab.arithmetic as A
from cnnlab.arithmetic import FlooredSizeWarning, LayerSpec, compute_layer
from cnnlab.errors import ShapeError
from cnnlab.teaching.errata import by_id


def chain(specs, *, strict=False):
    """Compute rows layer after layer, feeding each output shape, RF and jump to the next."""
    rows, shape, rf, jump = [], None, 1, 1
    for spec in specs:
        if shape is not None and spec.input_shape == ():
            spec = LayerSpec(**{**spec.__dict__, "input_shape": shape})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FlooredSizeWarning)
            row = compute_layer(spec, strict=strict, rf=rf, jump=jump)
        rows.append(row)
        shape = row.output_shape
        if row.receptive_field:
            rf, jump = row.receptive_field, row.jump
    return rows


def L(kind, filters=None, kernel=None, stride=None, pad=0, name="", input_shape=()):
    return LayerSpec(kind, input_shape, filters, kernel, stride, pad, name=name)


# seed 001, AlexNet (torchvision widths), input 3x227x227. Columns as the seed prints them:
# out C, out H/W, memory (KB), params (k), flop (M); None where the seed leaves the cell empty.
ALEXNET = [
    (L("conv", 64, 11, 4, 2, "conv1", (3, 227, 227)), 64, 56, 784, 23, 73),
    (L("maxpool", None, 3, 2, 0, "pool1"), 64, 27, 182, 0, 0),
    (L("conv", 192, 5, 1, 2, "conv2"), 192, 27, 547, 307, 224),
    (L("maxpool", None, 3, 2, 0, "pool2"), 192, 13, 127, 0, 0),
    (L("conv", 384, 3, 1, 1, "conv3"), 384, 13, 254, 664, 112),
    (L("conv", 256, 3, 1, 1, "conv4"), 256, 13, 169, 885, 145),
    (L("conv", 256, 3, 1, 1, "conv5"), 256, 13, 169, 590, 100),
    (L("maxpool", None, 3, 2, 0, "pool5"), 256, 6, 36, 0, 0),
    (L("fc", 4096, name="fc6"), 4096, None, 16, 37_749, 38),
    (L("fc", 4096, name="fc7", input_shape=(4096,)), 4096, None, 16, 16_777, 17),
    (L("fc", 1000, name="fc8", input_shape=(4096,)), 1000, None, 4, 4_096, 4),
]
# cells the seed gets wrong -> erratum id
ALEXNET_ERRATA = {
    ("conv4", "flop"): "001-alexnet-conv4-macs",
    ("fc6", "params"): "001-alexnet-fc6-params",
    ("fc7", "params"): "001-alexnet-fc7-params",
    ("fc8", "params"): "001-alexnet-fc8-params",
}


def check_seed_table(table, errata_cells):
    rows = chain([spec for spec, *_ in table])
    checked_errata = set()
    for row, (_, c, hw, mem, params_k, flop_m) in zip(rows, table):
        assert row.output_shape[0] == c, row.name
        if hw is not None:
            assert row.output_shape[1:] == (hw, hw), row.name
        assert round(row.activation_bytes / 1024) == mem, row.name
        cells = {"params": (row.params / 1000, params_k), "flop": (row.flops / 1e6, flop_m)}
        for column, (exact, printed) in cells.items():
            erratum_id = errata_cells.get((row.name, column))
            if erratum_id is None:
                assert round(exact) == printed, (row.name, column, exact)
            else:  # the seed is wrong here: we match the erratum, not the seed
                erratum = by_id(erratum_id)
                value = row.params if column == "params" else row.macs
                assert value == erratum.value
                assert round(exact) != printed and str(printed) in erratum.says.replace(",", "")
                checked_errata.add(erratum_id)
    assert checked_errata == set(errata_cells.values())
    return rows


def test_alexnet_table_seed001():
    rows = {r.name: r for r in check_seed_table(ALEXNET, ALEXNET_ERRATA)}
    # the exact numbers the seed works out step by step
    conv1 = rows["conv1"]
    assert conv1.output_shape == (64, 56, 56)
    assert conv1.activation_elements == 200_704 and conv1.activation_bytes == 802_816
    assert (conv1.weights, conv1.bias, conv1.params) == (23_232, 64, 23_296)
    assert conv1.macs == 72_855_552
    pool1 = rows["pool1"]
    assert pool1.activation_bytes / 1024 == 182.25 and pool1.flops == 419_904
    conv2 = rows["conv2"]
    assert (conv2.activation_bytes / 1024, conv2.params, conv2.macs) == (
        546.75,
        307_392,
        223_948_800,
    )
    assert rows["pool2"].activation_bytes / 1024 == 126.75
    assert (rows["conv3"].params, rows["conv3"].macs) == (663_936, 112_140_288)
    assert (rows["conv4"].params, rows["conv4"].macs) == (884_992, 149_520_384)
    assert (rows["conv5"].params, rows["conv5"].macs) == (590_080, 99_680_256)
    assert rows["pool5"].output_shape == (256, 6, 6) and rows["pool5"].activation_bytes == 36_864
    fc6 = rows["fc6"]
    assert fc6.input_shape == (256, 6, 6) and "flatten 256*6*6 = 9,216" in fc6.working[0]
    assert (fc6.params, fc6.macs) == (37_752_832, 37_748_736)
    assert (rows["fc7"].params, rows["fc8"].params) == (16_781_312, 4_097_000)
    assert rows["fc8"].activation_bytes / 1024 == 3.90625
    # receptive field through the whole feature extractor
    assert rows["pool5"].receptive_field == (195, 195) and rows["pool5"].jump == (32, 32)
    assert sum(r.params for r in rows.values()) == 61_100_840


def test_alexnet_totals_match_torch():
    """Our per-layer sums equal torchvision's numel() and torch.utils.flop_counter's MACs."""
    import torch
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = torchvision.models.alexnet()
        x = torch.empty(1, 3, 227, 227)
    with FlopCounterMode(display=False) as counter:
        model(x)
    rows = chain([spec for spec, *_ in ALEXNET])
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())
    assert sum(r.macs for r in rows) == counter.get_total_flops() // 2


# seed 001 GoogLeNet stem (input 3x224x224): the sizes only work out by flooring
GOOGLENET_STEM = [
    (L("conv", 64, 7, 2, 3, "conv1", (3, 224, 224)), 64, 112, 3136, 9, 118),
    (L("maxpool", None, 3, 2, 1, "pool1"), 64, 56, 784, 0, 2),
    (L("conv", 64, 1, 1, 0, "conv2"), 64, 56, 784, 4, 13),
    (L("conv", 192, 3, 1, 1, "conv3"), 192, 56, 2352, 111, 347),
    (L("maxpool", None, 3, 2, 1, "pool2"), 192, 28, 588, 0, 1),
]


def test_googlenet_stem_seed001():
    rows = check_seed_table(GOOGLENET_STEM, {})
    assert (rows[0].params, rows[0].macs) == (9_472, 118_013_952)
    assert rows[1].flops == 1_806_336 and rows[4].flops == 1_354_752
    assert (rows[2].params, rows[2].macs) == (4_160, 12_845_056)
    assert (rows[3].params, rows[3].macs) == (110_784, 346_816_512)
    # erratum 001-googlenet-conv1-floor: the stem conv is 112.5 before flooring
    with pytest.raises(ShapeError, match=r"\(224 - 7 \+ 2\*3\)/2 \+ 1 = 112.5"):
        chain([GOOGLENET_STEM[0][0]], strict=True)
    assert by_id("001-googlenet-conv1-floor").value == rows[0].output_shape[1]


def test_googlenet_gap_and_vgg16_head_seed001():
    gap = chain(
        [
            L("avgpool", None, 7, 1, 0, "gap", (1024, 7, 7)),
            L("fc", 1000, name="fc"),
        ],
        strict=True,
    )
    assert gap[0].output_shape == (1024, 1, 1) and gap[0].activation_bytes == 4096
    assert round(gap[0].flops / 1e6) == 0 and gap[0].params == 0
    fc = gap[1]
    assert (fc.params, fc.macs) == (1_025_000, 1_024_000)  # seed: 1025 k, 1 M
    # seed prints memory 0 for this fc; 1000 float32 outputs are 3.9 KB
    assert fc.activation_bytes == by_id("001-googlenet-fc-memory").value == 4000
    assert round(fc.activation_bytes / 1024) == 4

    vgg = chain(
        [
            L("fc", 4096, name="fc6", input_shape=(512, 7, 7)),
            L("fc", 4096, name="fc7"),
            L("fc", 1000, name="fc8"),
        ]
    )
    assert vgg[0].input_shape == (512, 7, 7) and "= 25,088" in vgg[0].working[0]
    assert round(25088 * 4 / 1024) == 98  # the seed's flatten row
    assert [r.params for r in vgg] == [102_764_544, 16_781_312, 4_097_000]
    assert [round(r.macs / 1e6) for r in vgg] == [103, 17, 4]
    assert [round(r.activation_bytes / 1024) for r in vgg] == [16, 16, 4]
    assert vgg[0].params == by_id("001-vgg16-fc6-params").value
    # the fc head costs 100x GoogLeNet's single fc
    assert vgg[0].params // fc.params == 100


def test_seed001_why_convolutions_and_vgg_rules():
    # 32x32x3, six 5x5 filters -> 28x28x6 with 5*5*3*6 + 6 = 456 params; FC would need ~14M
    assert A.conv_output_size(32, 5) == 28
    assert sum(A.conv_params(3, 6, 5)) == 456
    assert sum(A.linear_params(32 * 32 * 3, 28 * 28 * 6)) == 14_455_392
    # one 5x5 vs two 3x3 (C -> C): 25C^2 vs 18C^2 weights and 25C^2HW vs 18C^2HW MACs
    C, H, W = 64, 28, 28
    assert A.conv_params(C, C, 5, bias=False)[0] == 25 * C * C
    assert 2 * A.conv_params(C, C, 3, bias=False)[0] == 18 * C * C
    assert A.conv_macs(C, C, H, W, 5) == 25 * C * C * H * W
    assert 2 * A.conv_macs(C, C, H, W, 3) == 18 * C * C * H * W
    # halve H and W, double C: memory 4HWC -> 2HWC, weights 9C^2 -> 36C^2, FLOPs 36HWC^2 both
    assert C * (2 * H) * (2 * W) == 4 * H * W * C and (2 * C) * H * W == 2 * H * W * C
    assert A.conv_macs(C, C, 2 * H, 2 * W, 3) == 36 * H * W * C * C
    assert A.conv_macs(2 * C, 2 * C, H, W, 3) == 36 * H * W * C * C
    assert A.conv_params(2 * C, 2 * C, 3, bias=False)[0] == 36 * C * C


def test_seed001_bottleneck_is_a_tenth():
    # the 1x1 'bottleneck' example: 28x28x192 -> 5x5 conv, 32 filters (120M MACs), or 1x1 to 16
    # channels first (12.4M): about a tenth, as the seed says
    direct = A.conv_macs(192, 32, 28, 28, 5)
    reduced = A.conv_macs(192, 16, 28, 28, 1) + A.conv_macs(16, 32, 28, 28, 5)
    assert (direct, reduced) == (120_422_400, 12_443_648)
    assert round(direct / reduced) == 10


def test_seed000_alexnet_sizes_mlp_and_inception():
    # AlexNet, 96-filter version, input 227, no padding in conv1
    sizes = [
        A.conv_output_size(227, 11, 4),
        A.pool_output_size(55, 3, 2),
        A.conv_output_size(27, 5, 1, 2),
        A.pool_output_size(27, 3, 2),
        A.conv_output_size(13, 3, 1, 1),
        A.pool_output_size(13, 3, 2),
    ]
    assert sizes == [55, 27, 27, 13, 13, 6]
    # the paper's 224 does not fit: (224 - 11)/4 + 1 = 54.25
    with pytest.raises(ShapeError, match="54.25 is not an integer"):
        A.conv_output_size(224, 11, 4)
    # 784-2048-1024-10 MLP: 3,716,106 parameters
    assert sum(sum(A.linear_params(a, b)) for a, b in [(784, 2048), (2048, 1024), (1024, 10)]) == (
        3_716_106
    )
    # naive Inception on 28x28x256: branches 128 + 192 + 96 + 256 (pool) = 672 channels
    branches = [(128, 1, 0), (192, 3, 1), (96, 5, 2)]
    assert all(A.conv_output_size(28, k, 1, p) == 28 for _, k, p in branches)
    assert A.pool_output_size(28, 3, 1, 1) == 28
    assert sum(c for c, _, _ in branches) + 256 == 672
    weights = [A.conv_params(256, c, k, bias=False)[0] for c, k, _ in branches]
    assert weights == [1 * 1 * 256 * 128, 3 * 3 * 256 * 192, 5 * 5 * 256 * 96]
    assert sum(A.conv_macs(256, c, 28, 28, k) for c, k, _ in branches) == 854_196_224


def test_seed002_and_004_numbers():
    # seed 002: 3x3 x3 -> 27 weights per channel pair vs 49 for 7x7, same 7x7 field
    assert 3 * A.conv_params(1, 1, 3, bias=False)[0] == 27
    assert A.conv_params(1, 1, 7, bias=False)[0] == 49
    assert A.receptive_field([(3, 1)] * 3)[-1][0] == A.receptive_field([(7, 1)])[-1][0] == 7
    assert A.linear_params(7 * 7 * 1024, 1024, bias=False)[0] == 51_380_224
    # seed 004: 3x3x128x64 = 73,728; AlexNet conv1 split over two GPUs = 35k (weights)
    assert A.conv_params(128, 64, 3, bias=False)[0] == 73_728
    assert 2 * A.conv_params(3, 48, 11, bias=False)[0] == 34_848
    # RPN heads: 2*9 + 4*9 = 54 channels of 1x1 convs
    assert A.conv_params(512, 2 * 9, 1)[0] + A.conv_params(512, 4 * 9, 1)[0] == 512 * 54
