"""Seed 004's detection arithmetic: SPP 5,376, RoI pooling 25,088, YOLO 7x7x30, 9 anchors."""

import math

import pytest

import cnnlab.arithmetic as A
from cnnlab.errors import ConfigError, ShapeError


@pytest.mark.parametrize("hw", [(13, 13), (64, 64), (10, 17), (2, 3)])
def test_spp_is_5376_for_any_input_size(hw):
    row = A.spp_output((256, *hw), (4, 2, 1))
    assert row.features == 5376 and row.per_level == [4096, 1024, 256]
    assert row.output_shape == (5376,)
    assert "features = (16 + 4 + 1) x 256 = 21 x 256 = 5,376, whatever H and W are" in row.working


def test_spp_levels_may_be_rectangular_and_edges_are_shown():
    row = A.spp_output((8, 7, 9), [(4, 3), 2])
    assert row.bins == [(4, 3), (2, 2)] and row.features == 8 * (12 + 4)
    text = "\n".join(row.working)
    assert "bin size H: 7/4 = 1.75 cells" in text and "[0,2) [1,4) [3,6) [5,7)" in text
    assert "bin size W: 9/3 = 3 cells" in text
    # SPPnet's window/stride recipe breaks at 7 cells / 4 bins: window 2, stride 1 -> 6 bins
    assert any("gives 6 bins, not 4" in n for n in row.notes)


def test_adaptive_bin_edges_cover_the_map_and_overlap_by_at_most_one():
    for size in range(1, 30):
        for bins in range(1, 9):
            edges = A.adaptive_bin_edges(size, bins)
            assert edges[0][0] == 0 and edges[-1][1] == size and len(edges) == bins
            for (a0, a1), (b0, b1) in zip(edges, edges[1:]):
                assert a0 < a1 <= b1 and a0 <= b0 <= a1 and a1 - b0 <= 1


def test_roi_pool_is_25088_per_roi_and_names_vgg_fc6():
    row = A.roi_pool_output((512, 38, 50), (7, 7))
    assert row.features == 25_088 and row.output_shape == (512, 7, 7)
    assert "output per RoI: C x 7 x 7 = 512 x 7 x 7 = 25,088 features" in row.working
    assert any("VGG-16's pool5" in n for n in row.notes)


def test_roi_pool_with_a_roi_shows_cells_and_bins():
    row = A.roi_pool_output((512, 38, 50), 7, roi=(64, 48, 330, 250), stride=16)
    # 330/16 = 20.625 -> 21, 250/16 = 15.625 -> 16 (rounded as torchvision's roi_pool)
    assert row.roi_cells == (4, 3, 21, 16)
    assert row.row_edges[0] == (3, 5) and row.col_edges[-1] == (19, 22)
    assert (
        "RoI on the map: 14 x 18 cells (ends inclusive); bin = 14/7 x 18/7 = 2 x 2.5714 cells"
        in (row.working)
    )
    # a RoI half off the map has empty bins, and a tiny one repeats cells
    off = A.roi_pool_output((8, 4, 4), 2, roi=(40, 40, 120, 120), stride=16)
    assert any("empty" in n for n in off.notes)
    tiny = A.roi_pool_output((8, 10, 10), 7, roi=(16, 16, 32, 32), stride=16)
    assert any("repeat cells" in n for n in tiny.notes)
    with pytest.raises(ShapeError, match="x2 < x1"):
        A.roi_pool_output((8, 4, 4), 2, roi=(5, 5, 1, 9))


def test_roi_pool_rounds_halves_away_from_zero_like_c():
    cells, _, _ = A.roi_pool_bins((8, 24, 40, 56), (1, 1), 10, 10, 1 / 16)
    assert cells == (
        1,
        2,
        3,
        4,
    )  # 0.5 -> 1, 1.5 -> 2, 2.5 -> 3, 3.5 -> 4 (Python would give 0, 2, 2, 4)


def test_yolo_is_7x7x30_and_the_cell_layout():
    row = A.yolo_output(7, 2, 20)
    assert row.output_shape == (7, 7, 30) and row.outputs == 1470 and row.per_cell == 30
    assert row.boxes_per_image == 98
    assert row.layout == [
        (0, 5, "box 1: x, y, w, h, confidence"),
        (5, 10, "box 2: x, y, w, h, confidence"),
        (10, 30, "20 class probabilities Pr(class | object), one set per cell"),
    ]
    assert row.fc_params == 4096 * 1470 + 1470
    assert "per cell: B*5 + C = 2*5 + 20 = 30" in row.working
    assert A.yolo_output(S=13, B=5, C=80).output_shape == (13, 13, 105)
    with pytest.raises(ConfigError, match="B must be >= 1"):
        A.yolo_output(7, 0, 20)


def test_seed_anchors_and_rpn_heads():
    row = A.anchor_boxes((128, 256, 512), (0.5, 1, 2), feature=(38, 50), stride=16)
    assert row.per_position == 9 and row.total == 17_100 and row.positions == 1900
    assert (row.rpn_cls_channels, row.rpn_reg_channels) == (18, 36)
    assert row.rpn_params == 512 * 18 + 18 + 512 * 36 + 36
    for an in row.anchors:
        assert an["width"] * an["height"] == pytest.approx(an["size"] ** 2)
        assert an["height"] / an["width"] == pytest.approx(an["ratio"])
    assert [a["ratio"] for a in row.anchors[:3]] == [0.5] * 3  # ratio-major, as torchvision
    assert row.anchors[0]["box"] == [-91, -45, 91, 45]
    assert "anchors: H x W x A = 38 x 50 x 9 = 17,100" in row.working
    assert A.anchor_boxes().feature is None and A.anchor_boxes().total is None


def test_anchor_shape_and_bad_anchors():
    w, h = A.anchor_shape(128, 2)
    assert (w, h) == pytest.approx((128 / math.sqrt(2), 128 * math.sqrt(2)))
    with pytest.raises(ConfigError, match="must be positive"):
        A.anchor_shape(128, 0)
    with pytest.raises(ConfigError, match="at least one size"):
        A.anchor_boxes(sizes=())


def test_bad_feature_maps():
    with pytest.raises(ShapeError, match="needs a feature map C x H x W"):
        A.spp_output((256, 13))
    with pytest.raises(ConfigError, match="input size must be >= 1"):
        A.roi_pool_output((0, 3, 3))
    with pytest.raises(ConfigError, match="at least one pyramid level"):
        A.spp_output((1, 2, 2), [])


def test_records_serialise_to_plain_json():
    import json

    for row in [A.spp_output((4, 5, 6)), A.roi_pool_output((4, 5, 6), roi=(0, 0, 3, 3)),
                A.yolo_output(), A.anchor_boxes(feature=(2, 3))]:  # fmt: skip
        d = json.loads(json.dumps(row.to_dict()))
        assert d["working"] == row.working
