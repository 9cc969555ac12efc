"""R-CNN vs Fast R-CNN (seed 004): the mechanics on small inputs, and a tiny end-to-end run."""

import json

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.metrics.detection import detection_map
from cnnlab.teaching.experiments import rcnn_vs_fast as rvf


def test_label_regions_uses_rcnn_thresholds():
    gt = torch.tensor([[10.0, 10, 30, 30]])
    props = torch.tensor(
        [[10.0, 10, 30, 30], [12.0, 12, 32, 32], [10.0, 10, 22, 30], [60.0, 60, 80, 80]]
    )  # IoU 1, 0.68, 0.6, 0: all but the last are positives; IoU in [0.3, 0.5) left out
    boxes, labels = rvf.label_regions(props, gt, torch.tensor([7]))
    assert labels.tolist() == [7, 7, 7, 7, rvf.BACKGROUND]  # the ground truth comes first
    mid = torch.tensor([[10.0, 10, 18, 30]])  # IoU 0.4
    assert len(rvf.label_regions(mid, gt, torch.tensor([7]))[0]) == 1  # only the gt box
    b, lab = rvf.label_regions(props, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert (lab == rvf.BACKGROUND).all() and len(b) == 4


def test_sliding_windows_stay_inside_the_image():
    w = rvf.sliding_windows(96, 64)
    assert (w[:, 0] >= 0).all() and (w[:, 2] <= 64 + 1e-4).all() and (w[:, 3] <= 96 + 1e-4).all()
    sizes = ((w[:, 2] - w[:, 0]) * (w[:, 3] - w[:, 1])).sqrt().round().unique().tolist()
    assert sizes == [16, 24, 32, 40]


def test_rcnn_runs_the_body_per_region_fast_rcnn_per_image():
    images = torch.randint(0, 255, (2, 1, 96, 96), dtype=torch.uint8)
    boxes = [torch.tensor([[0.0, 0, 40, 40], [20, 20, 60, 80], [5, 50, 30, 90]])] * 2
    for cls, batch in ((rvf.RCNN, 6), (rvf.FastRCNN, 2)):
        model = cls().eval()
        seen = []

        def hook(m, i, o, seen=seen):
            seen.append((i[0].shape, o.shape))

        model.body.register_forward_hook(hook)
        out = model(images, boxes)
        assert out.shape == (6, rvf.NUM_CLASSES)
        ((shape_in, shape_out),) = seen
        assert shape_in[0] == batch
        if cls is rvf.RCNN:  # each region warped to 32x32
            assert shape_in[-2:] == (rvf.WARP, rvf.WARP)
        else:  # the whole image, one shared map at stride 4
            assert shape_in[-2:] == (96, 96) and shape_out[-2:] == (24, 24)


def test_fast_rcnn_region_grid_is_roi_pooled_from_the_shared_map():
    from torchvision.ops import roi_pool

    model = rvf.FastRCNN().eval()
    images = torch.randint(0, 255, (1, 1, 96, 96), dtype=torch.uint8)
    # x 8..36, y 16..44 -> cells 2..9 and 4..11 (roi_pool rounds and, as Caffe, includes the end)
    box = torch.tensor([[8.0, 16, 36, 44]])
    with torch.no_grad():
        fmap = model.body(images.float() / 255)
        grid = model.grids(images, [box])
        ref = roi_pool(fmap, [box], rvf.GRID, 1 / rvf.STRIDE)
        by_hand = torch.nn.functional.max_pool2d(fmap[:, :, 4:12, 2:10], 2)  # rows y, cols x
    torch.testing.assert_close(grid, ref)
    torch.testing.assert_close(grid, by_hand)


def test_detect_suppresses_duplicates_per_class():
    boxes = torch.tensor([[0.0, 0, 20, 20], [1, 1, 21, 21], [0, 0, 20, 20], [50, 50, 70, 70]])
    scores = torch.full((4, rvf.NUM_CLASSES), -5.0)
    scores[0, 3], scores[1, 3], scores[2, 4], scores[3, rvf.BACKGROUND] = 5, 4, 3, 5
    out = rvf.detect(scores, boxes)
    assert sorted(out["labels"].tolist()) == [3, 4]  # box 1 suppressed by 0; box 3 background
    perfect = detection_map(
        [{"boxes": boxes[:1], "scores": torch.ones(1), "labels": torch.tensor([3])}],
        [{"boxes": boxes[:1], "labels": torch.tensor([3])}],
    )
    assert perfect["map_50_voc"] == 1.0


def test_svm_separates_separable_features():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(rvf.NUM_CLASSES).repeat(20)
    feats = torch.nn.functional.one_hot(labels, 16).float() * 3 + 0.1 * torch.randn(
        len(labels), 16, generator=g
    )
    svm = rvf.train_svm(feats, labels, steps=200)
    assert (svm(feats).argmax(1) == labels).float().mean() == 1.0


def test_tiny_run_writes_results_and_plot(tmp_path):
    out = rvf.rcnn_vs_fast(
        train_images=12, test_images=6, epochs=1, sweep=(10, 40), out_dir=tmp_path, log=lambda m: 0
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"].keys() == {"R-CNN", "Fast R-CNN"} == out["results"].keys()
    for r in saved["results"].values():
        assert 0 <= r["map_50_voc"] <= 1 and 0 <= r["map_coco"] <= r["map_50_voc"] + 1e-9
        assert r["seconds_per_image"] > 0 and set(r["sweep"]) == {"10", "40"}
    rc, fast = saved["results"]["R-CNN"], saved["results"]["Fast R-CNN"]
    assert rc["macs_per_image"] == round(rc["proposals_per_image"] * rvf._body_macs(32))
    assert fast["macs_per_image"] == rvf._body_macs(96)
    assert saved["settings"]["proposals"] == "selective-search" and saved["notes"] == []
    assert (tmp_path / "rcnn_vs_fast.png").read_bytes()[:4] == b"\x89PNG"


def test_without_opencv_it_falls_back_to_sliding_windows_and_says_so(monkeypatch):
    small = rvf.sliding_windows
    monkeypatch.setattr(rvf, "selective_search_available", lambda: False)
    monkeypatch.setattr(rvf, "sliding_windows", lambda h, w: small(h, w, sizes=(32,)))
    out = rvf.rcnn_vs_fast(train_images=4, test_images=2, epochs=1, sweep=(), log=lambda m: 0)
    assert out["settings"]["proposals"] == "sliding-window"
    assert "opencv-contrib-python-headless" in out["notes"][0]


def test_bad_options():
    with pytest.raises(ConfigError, match="unknown proposal method"):
        rvf.rcnn_vs_fast(proposals="edge-boxes")
    with pytest.raises(ConfigError, match="at least 1"):
        rvf.rcnn_vs_fast(epochs=0)
