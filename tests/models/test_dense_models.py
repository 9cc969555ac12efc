"""FCN, YOLO v1 and Faster R-CNN in the zoo: the paper's numbers, pinned."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

from cnnlab.models import create, list_models
from cnnlab.models.fcn import bilinear_kernel, bilinear_upsampler
from cnnlab.models.yolo import YoloLoss, decode, encode_targets

DENSE = [
    "fcn32s",
    "fcn16s",
    "fcn8s",
    "fcn8s_small",
    "yolov1",
    "yolov1_small",
    "fasterrcnn",
    "fasterrcnn_small",
]


def test_registered():
    names = set(list_models())
    assert set(DENSE) <= names


@pytest.mark.parametrize("name", ["fcn32s", "fcn16s", "fcn8s"])
def test_paper_fcn_output_equals_input_size(name):
    with torch.device("meta"):  # shapes only: the VGG-16 nets are large
        model = create(name).eval()
        for h, w in ((64, 64), (97, 131), (500, 375)):
            assert model(torch.zeros(1, 3, h, w)).shape == (1, 21, h, w)


@pytest.mark.parametrize("name", ["fcn32s_small", "fcn16s_small", "fcn8s_small"])
def test_small_fcn_output_equals_input_size(name):
    model = create(name).eval()
    for h, w in ((64, 64), (50, 77)):
        with torch.no_grad():
            assert model(torch.zeros(2, 1, h, w)).shape == (2, 11, h, w)


def test_fcn8s_skip_layers_and_frozen_final_upsampling():
    with torch.device("meta"):
        m, m32 = create("fcn8s"), create("fcn32s")
    assert m.features[0].padding == (100, 100) and m.head[0].kernel_size == (7, 7)
    assert m.upscore.kernel_size == (16, 16) and m.upscore.stride == (8, 8)
    assert not m.upscore.weight.requires_grad and m.upscore2.weight.requires_grad
    assert m32.upscore.kernel_size == (64, 64) and not hasattr(m32, "score_pool4")
    # new score layers start at zero (paper section 4.3), unless trained from scratch
    small = create("fcn8s_small")
    assert small.score_pool3.weight.abs().sum() > 0
    from cnnlab.models.fcn import FCN, _small_features

    zero = FCN(_small_features(1, [8, "M", 8, "M", 8, "M", 8, "M", 8, "M"]), 3, head_width=8,
               head_kernel=3, batch_norm=True)  # fmt: skip
    for layer in (zero.score_fr, zero.score_pool4, zero.score_pool3):
        assert layer.weight.abs().sum() == 0 and layer.bias.abs().sum() == 0


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_init_reproduces_bilinear_upsampling(factor):
    torch.manual_seed(0)
    x = torch.randn(1, 3, 9, 11)
    up = bilinear_upsampler(3, factor, padding=factor // 2)(x)
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert up.shape == ref.shape
    f = factor  # borders differ: the transposed conv pads with zeros, interpolate clamps
    torch.testing.assert_close(up[..., f:-f, f:-f], ref[..., f:-f, f:-f])


def test_bilinear_kernel_is_per_channel():
    k = bilinear_kernel(2, 4)
    assert k[0, 1].abs().sum() == 0 and k[0, 0].sum() == pytest.approx(4.0)


def test_depthwise_bilinear_upsampler_equals_the_full_one():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 7)
    full, dw = (bilinear_upsampler(5, 8, padding=4, depthwise=d) for d in (False, True))
    assert dw.groups == 5 and dw.weight.shape == (5, 1, 16, 16)
    assert full.weight.shape == (5, 5, 16, 16)
    torch.testing.assert_close(dw(x), full(x))


def test_small_fcn_final_upsampling_is_fixed_depthwise_and_float32_under_autocast():
    torch.manual_seed(0)
    m = create("fcn8s_small").eval()
    assert m.upscore.groups == 11 and not m.upscore.weight.requires_grad
    torch.testing.assert_close(m.upscore.weight, bilinear_kernel(11, 16, depthwise=True))
    x = torch.randn(2, 1, 64, 64)
    seen = []
    m.upscore.register_forward_hook(lambda mod, args, out: seen.append(args[0].dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x)
    # the layers before run in bf16; the fixed bilinear map gets float32 scores
    assert seen == [torch.float32] and out.dtype == torch.float32 and out.shape == (2, 11, 64, 64)
    with torch.no_grad():
        ref = m(x)
    assert (out.argmax(1) == ref.argmax(1)).float().mean() > 0.95


def test_yolov1_paper_head_is_7x7x30():
    with torch.device("meta"):
        m = create("yolov1").eval()
        out = m(torch.zeros(1, 3, 448, 448))
    assert tuple(out.shape) == (1, 7, 7, 30)
    assert m.classifier[1].in_features == 1024 * 7 * 7
    convs = [x for x in m.features if isinstance(x, torch.nn.Conv2d)]
    assert len(convs) == 24


def _targets():
    return [
        {
            "boxes": torch.tensor([[10.0, 12, 40, 50], [60, 5, 90, 30]]),
            "labels": torch.tensor([3, 7]),
        },
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]


def test_yolo_encode_decode_round_trip():
    t = _targets()
    grid = encode_targets(t, 7, 10, (96, 96))
    assert grid.shape == (2, 7, 7, 15) and grid[..., 4].sum() == 2
    # the centre of box 0 is (25, 31): cell column 25/96*7 = 1.82 -> 1, row 31/96*7 = 2.26 -> 2
    assert grid[0, 2, 1, 4] == 1 and grid[0, 2, 1, 5 + 3] == 1
    for pred in (grid, torch.cat([grid[..., :5], grid[..., :5], grid[..., 5:]], -1)):
        out = decode(pred, 2, 10, (96, 96))
        assert len(out[1]["boxes"]) == 0
        order = out[0]["labels"].argsort()
        torch.testing.assert_close(out[0]["boxes"][order], t[0]["boxes"])
        assert out[0]["labels"][order].tolist() == [3, 7]


def test_yolo_loss_zero_for_perfect_prediction_and_weights():
    grid = encode_targets(_targets(), 7, 10, (96, 96))
    second = torch.zeros_like(grid[..., :5])  # a zero-size box, "no object": IoU 0
    perfect = torch.cat([grid[..., :5], second, grid[..., 5:]], -1)
    loss = YoloLoss(7, 2, 10)
    assert loss(perfect, grid).item() == pytest.approx(0.0, abs=1e-6)
    assert (loss.lambda_coord, loss.lambda_noobj) == (5.0, 0.5)

    def iou_after(bad):  # the responsible box's IoU with the truth: its confidence target
        a = decode(bad[:1], 2, 10, (96, 96), score_threshold=0.5)[0]["boxes"]
        return box_iou(a[a[:, 0] < 50], torch.tensor([[10.0, 12, 40, 50]])).item()

    # x off by 0.1 cell: lambda_coord * 0.1^2, plus (1 - IoU)^2 for the confidence; batch of 2
    bad = perfect.clone()
    bad[0, 2, 1, 0] += 0.1
    expect = (5 * 0.01 + (1 - iou_after(bad)) ** 2) / 2
    assert loss(bad, grid).item() == pytest.approx(expect, rel=1e-4)
    # sqrt(w) off by 0.05: lambda_coord * 0.05^2 whatever the box's size
    bad = perfect.clone()
    bad[0, 2, 1, 2] += 0.05
    expect = (5 * 0.0025 + (1 - iou_after(bad)) ** 2) / 2
    assert loss(bad, grid).item() == pytest.approx(expect, rel=1e-4)
    # a confidence of 1 in an empty cell costs lambda_noobj; a wrong class score 1 costs 1
    bad = perfect.clone()
    bad[1, 0, 0, 4] = 1.0
    assert loss(bad, grid).item() == pytest.approx(0.5 / 2, rel=1e-4)
    bad = perfect.clone()
    bad[0, 2, 1, 10 + 4] = 1.0
    assert loss(bad, grid).item() == pytest.approx(1 / 2, rel=1e-4)


def test_yolov1_small_default_grid_is_12_cells_of_8_pixels():
    m = create("yolov1_small").eval()
    with torch.no_grad():
        assert m(torch.rand(1, 1, 96, 96)).shape == (1, 12, 12, 20)
    # the body's stride is 8 and its first convolution already halves the image
    assert m.features[0].stride == (2, 2)
    assert m.pool(m.features(torch.rand(1, 1, 96, 96))).shape[-2:] == (12, 12)


@pytest.mark.parametrize(("head", "grid"), [("conv", 12), ("conv", 6), ("fc", 7)])
def test_yolov1_small_trains_one_step(head, grid):
    torch.manual_seed(0)
    m = create("yolov1_small", head=head, grid=grid, hidden=64)
    x = torch.rand(2, 1, 96, 96)
    out = m(x)
    assert out.shape == (2, grid, grid, 20)
    loss = YoloLoss(grid, 2, 10)(out, encode_targets(_targets(), grid, 10, (96, 96)))
    loss.backward()
    assert torch.isfinite(loss) and m.features[0].weight.grad.abs().sum() > 0


def test_fasterrcnn_small_rpn_heads_and_anchors():
    m = create("fasterrcnn_small")
    assert m.rpn.head.cls_logits.out_channels == 18
    assert m.rpn.head.bbox_pred.out_channels == 36
    assert m.rpn.anchor_generator.num_anchors_per_location() == [9]
    m.train()
    t = [{"boxes": b["boxes"], "labels": b["labels"] + 1} for b in _targets()]
    losses = m(list(torch.rand(2, 1, 96, 96)), t)  # an image without objects is allowed
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    m.eval()
    with torch.no_grad():
        out = m(torch.rand(1, 1, 96, 96))
    assert set(out[0]) == {"boxes", "scores", "labels"}


def test_paper_rpn_head_equals_two_way_softmax():
    from cnnlab.models.rcnn_parts import PaperRPNHead

    torch.manual_seed(0)
    head = PaperRPNHead(8, 9)
    x = torch.randn(1, 8, 5, 6)
    logits, deltas = head([x])
    pair = head.cls_logits(head.conv(x)).view(1, 9, 2, 5, 6)
    soft = pair.softmax(2)[:, :, 1]
    torch.testing.assert_close(torch.sigmoid(logits[0]), soft)
    assert deltas[0].shape == (1, 36, 5, 6)


def test_fasterrcnn_paper_configuration():
    with torch.device("meta"):
        m = create("fasterrcnn")
    gen = m.rpn.anchor_generator
    assert gen.sizes == ((128, 256, 512),) and gen.aspect_ratios == ((0.5, 1.0, 2.0),)
    assert m.backbone.out_channels == 512
    assert m.rpn.head.cls_logits.out_channels == 18 and m.rpn.head.bbox_pred.out_channels == 36
    assert m.roi_heads.box_head.fc6.out_features == 4096


def test_summary_shows_rpn_channels():
    from cnnlab.analysis import summary

    s = summary(create("fasterrcnn_small"), (1, 96, 96))
    rows = {r.name: r for r in s.layers}
    assert rows["rpn.head.cls_logits"].output_shape == [18, 12, 12]
    assert rows["rpn.head.bbox_pred"].output_shape == [36, 12, 12]


@pytest.mark.parametrize("name", ["fcn8s_small", "yolov1_small"])
def test_summary_small_forms(name):
    from cnnlab.analysis import summary

    s = summary(create(name), (1, 64, 64) if "fcn" in name else (1, 96, 96))
    assert s.totals["macs"] > 0


def test_sppnet_5376_features_for_any_input_size():
    with torch.device("meta"):
        m = create("sppnet").eval()
        assert m.classifier[0].in_features == 5376  # 21 bins x 256 maps
        for h, w in ((224, 224), (180, 260)):
            fmap = m.features(torch.zeros(1, 3, h, w))
            assert fmap.shape[1] == 256
            assert m.spp(fmap).shape == (1, 5376)
            assert m(torch.zeros(2, 3, h, w)).shape == (2, 1000)


def test_importing_the_zoo_does_not_import_torchvision(fresh_python):
    # torchvision's ops import torch._dynamo: 1.5-2 s that every command building any zoo model
    # paid; the detection families import torchvision when a detection model is built
    code = (
        "import sys, cnnlab.models as M, cnnlab.dense as D; "
        "m = M.create('resnet18'); assert D.SpatialPyramidPooling; "
        "assert 'torchvision' not in sys.modules, 'imported torchvision'; "
        "assert D.roi_pool.__module__.startswith('torchvision'); "
        "M.create('fasterrcnn_small'); assert 'torchvision' in sys.modules"
    )
    fresh_python(code)
