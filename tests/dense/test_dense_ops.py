"""SPP, anchors and the box coder: the seed's numbers, and torchvision as the reference."""

import pytest
import torch
from torchvision.models.detection._utils import BoxCoder as TorchvisionBoxCoder
from torchvision.models.detection.image_list import ImageList

import cnnlab.dense as D
from cnnlab.arithmetic import adaptive_bin_edges, anchor_boxes, roi_pool_bins, spp_output
from cnnlab.errors import ConfigError, ShapeError


@pytest.mark.parametrize("hw", [(13, 13), (10, 17), (64, 64), (3, 2)])
def test_spp_gives_5376_features_for_any_input_size(hw):
    spp = D.SpatialPyramidPooling((4, 2, 1))
    out = spp(torch.randn(2, 256, *hw))
    assert out.shape == (2, 5376) == (2, spp.output_features(256))
    assert spp_output((256, *hw)).features == 5376


def test_spp_bins_are_the_arithmetic_edges_max_and_avg():
    x = torch.randn(1, 3, 7, 9)
    spp_max = D.SpatialPyramidPooling([(4, 3), 2], mode="max")
    spp_avg = D.SpatialPyramidPooling([(4, 3), 2], mode="avg")
    out_max, out_avg = spp_max(x), spp_avg(x)
    assert out_max.shape == (1, 3 * (12 + 4))
    # recompute every bin from the arithmetic's edges: level (4, 3) then (2, 2), channel-major
    want_max, want_avg = [], []
    for bh, bw in [(4, 3), (2, 2)]:
        for c in range(3):
            for r0, r1 in adaptive_bin_edges(7, bh):
                for c0, c1 in adaptive_bin_edges(9, bw):
                    cell = x[0, c, r0:r1, c0:c1]
                    want_max.append(cell.max())
                    want_avg.append(cell.mean())
    torch.testing.assert_close(out_max[0], torch.stack(want_max))
    torch.testing.assert_close(out_avg[0], torch.stack(want_avg))
    assert "bins=(4x3, 2x2), mode='avg'" in repr(spp_avg)


def test_spp_one_level_of_the_map_size_is_the_identity_and_1x1_is_global_max():
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(D.SpatialPyramidPooling([5])(x), x.flatten(1))
    torch.testing.assert_close(D.SpatialPyramidPooling(1)(x), x.amax(dim=(2, 3)))


def test_spp_bad_input():
    with pytest.raises(ConfigError, match="unknown SPP mode 'min'"):
        D.SpatialPyramidPooling(mode="min")
    with pytest.raises(ConfigError, match="bins must be >= 1"):
        D.SpatialPyramidPooling((4, 0))
    with pytest.raises(ShapeError, match=r"expects \[N, C, H, W\]"):
        D.SpatialPyramidPooling()(torch.randn(3, 8, 8))


def test_seed_anchors_nine_per_position_and_17100_over_38x50():
    base = D.base_anchors()
    assert base.shape == (9, 4)
    w, h = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]
    # ratio-major: (0.5: wide, 1, 2: tall) x sizes (128, 256, 512); areas ~ size^2
    assert (w[:3] > h[:3]).all() and (w[3:6] == h[3:6]).all() and (w[6:] < h[6:]).all()
    assert w[3:6].tolist() == [128, 256, 512]
    ratio = (w * h).sqrt() / torch.tensor([128.0, 256, 512] * 3)
    assert ((ratio - 1).abs() < 0.01).all()
    anchors = D.grid_anchors((38, 50))
    assert anchors.shape == (17_100, 4) and anchor_boxes(feature=(38, 50)).total == 17_100


@pytest.mark.parametrize(
    ("feature", "stride", "sizes", "ratios"),
    [((38, 50), 16, D.SEED_ANCHOR_SIZES, D.SEED_ANCHOR_RATIOS), ((5, 7), 8, (32, 48), (0.5, 1, 3))],
)
def test_grid_anchors_equal_torchvision_anchor_generator(feature, stride, sizes, ratios):
    gen = D.seed_anchor_generator(sizes, ratios)
    image = torch.zeros(1, 3, feature[0] * stride, feature[1] * stride)
    images = ImageList(image, [tuple(image.shape[-2:])])
    fmap = torch.zeros(1, 8, *feature)
    (ref,) = gen(images, [fmap])
    torch.testing.assert_close(D.grid_anchors(feature, stride, sizes, ratios), ref)
    assert gen.num_anchors_per_location() == [len(sizes) * len(ratios)]


def test_box_coder_round_trip_and_equals_torchvision():
    g = torch.Generator().manual_seed(0)
    anchors = D.grid_anchors((4, 5), 16)[:60]
    xy = torch.rand(60, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + torch.rand(60, 2, generator=g) * 200 + 1], dim=1)
    for weights in [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]:
        coder = D.BoxCoder(weights)
        deltas = coder.encode(boxes, anchors)
        torch.testing.assert_close(coder.decode(deltas, anchors), boxes, rtol=1e-5, atol=1e-3)
        ref = TorchvisionBoxCoder(weights)
        torch.testing.assert_close(deltas, ref.encode_single(boxes, anchors))
        torch.testing.assert_close(
            coder.decode(deltas, anchors), ref.decode_single(deltas, anchors), rtol=1e-5, atol=1e-3
        )
    # an anchor that is its own box encodes to zeros; huge tw is clamped, not inf
    torch.testing.assert_close(D.BoxCoder().encode(anchors, anchors), torch.zeros(60, 4))
    far = D.BoxCoder().decode(torch.tensor([[0.0, 0.0, 50.0, 50.0]]), anchors[:1])
    assert torch.isfinite(far).all()


def test_box_coder_bad_input_names_the_box():
    coder = D.BoxCoder()
    anchors = torch.tensor([[0.0, 0, 10, 10], [5, 5, 5, 9]])
    boxes = torch.tensor([[1.0, 1, 9, 9], [0, 0, 4, 4]])
    with pytest.raises(ShapeError, match=r"anchor 1 \[5.0, 5.0, 5.0, 9.0\] has zero"):
        coder.encode(boxes, anchors)
    with pytest.raises(ShapeError, match="differ in shape"):
        coder.encode(boxes[:1], anchors)
    with pytest.raises(ShapeError, match=r"must be \[N, 4\]"):
        coder.decode(torch.zeros(2, 3), anchors)
    with pytest.raises(ConfigError, match="4 positive numbers"):
        D.BoxCoder((1, 1, 1))


def test_torchvision_ops_are_reexported_not_rewritten():
    import torchvision.ops as tvops

    for name in ["roi_pool", "roi_align", "RoIPool", "RoIAlign", "box_iou", "nms",
                 "batched_nms", "box_convert", "box_area", "clip_boxes_to_image"]:  # fmt: skip
        assert getattr(D, name) is getattr(tvops, name)
    # RoI pooling on a feature map from the seed's 600 x 800 image: one 512 x 7 x 7 per RoI
    fmap = torch.randn(1, 512, 38, 50)
    rois = torch.tensor([[0, 64.0, 48, 330, 250], [0, 0, 0, 799, 599]])
    assert D.roi_pool(fmap, rois, (7, 7), 1 / 16).shape == (2, 512, 7, 7)


def test_roi_pool_bins_of_the_arithmetic_are_torchvisions():
    # a map whose value is its flat index: a bin's max is its last cell, -max(-x) its first
    h, w = 11, 13
    index = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
    g = torch.Generator().manual_seed(0)
    rois = [(8.0, 8, 40, 24), (0, 0, 207, 175), (100, 90, 260, 250), (33, 17, 41, 25)]
    for _ in range(20):
        x1, y1 = (torch.rand(2, generator=g) * 200 - 20).tolist()
        rw, rh = (torch.rand(2, generator=g) * 120).tolist()
        rois.append((x1, y1, x1 + rw, y1 + rh))
    boxes = torch.tensor([[0.0, *r] for r in rois])
    hi = D.roi_pool(index, boxes, (3, 4), 1 / 16)[:, 0]
    lo = -D.roi_pool(-index, boxes, (3, 4), 1 / 16)[:, 0]
    for k, roi in enumerate(rois):
        _, rows, cols = roi_pool_bins(roi, (3, 4), h, w, 1 / 16)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                if r0 == r1 or c0 == c1:
                    assert hi[k, i, j] == 0 and lo[k, i, j] == 0  # an empty bin outputs 0
                else:
                    assert hi[k, i, j] == (r1 - 1) * w + (c1 - 1), (roi, i, j)
                    assert lo[k, i, j] == r0 * w + c0, (roi, i, j)
