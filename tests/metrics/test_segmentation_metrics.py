"""segmentation_scores equals torchmetrics' Jaccard index and accuracy on random masks."""

import math

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from cnnlab.errors import ConfigError, ShapeError
from cnnlab.metrics import (
    scores_from_confusion,
    segmentation_confusion,
    segmentation_scores,
)


def _random_masks(seed, n=4, h=9, w=11, num_classes=5):
    g = torch.Generator().manual_seed(seed)
    true = torch.randint(0, num_classes - 2, (n, h, w), generator=g)  # the last 2 never true
    pred = true.clone()
    flip = torch.rand(n, h, w, generator=g) < 0.3
    # errors land on any class but the last: class num_classes-2 is predicted without ground
    # truth, class num_classes-1 occurs nowhere
    pred[flip] = torch.randint(0, num_classes - 1, (int(flip.sum()),), generator=g)
    return pred, true


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_torchmetrics(seed):
    k = 5
    pred, true = _random_masks(seed, num_classes=k)
    s = segmentation_scores(pred, true, k)
    ref_miou = MulticlassJaccardIndex(num_classes=k, average="macro")(pred, true)
    ref_iou = MulticlassJaccardIndex(num_classes=k, average="none")(pred, true)
    ref_acc = MulticlassAccuracy(num_classes=k, average="micro")(pred, true)
    assert s.miou == pytest.approx(float(ref_miou), abs=1e-6)
    assert s.pixel_accuracy == pytest.approx(float(ref_acc), abs=1e-6)
    # the class predicted without ground truth has IoU 0 and counts; the absent class is NaN
    assert s.per_class_iou[k - 2] == 0.0
    assert math.isnan(s.per_class_iou[k - 1])
    for c in range(k - 1):
        assert s.per_class_iou[c] == pytest.approx(float(ref_iou[c]), abs=1e-6)
    assert int(s.confusion.sum()) == true.numel()


def test_logits_are_reduced_with_argmax():
    k = 4
    pred, true = _random_masks(3, num_classes=k)
    logits = torch.nn.functional.one_hot(pred, k).permute(0, 3, 1, 2).float() * 3 - 1
    assert segmentation_scores(logits, true, k).miou == segmentation_scores(pred, true, k).miou


def test_ignore_index_matches_torchmetrics():
    k = 4
    pred, true = _random_masks(4, num_classes=k)
    true[:, 0, :] = 255  # VOC's border label
    s = segmentation_scores(pred, true, k, ignore_index=255)
    ref = MulticlassJaccardIndex(num_classes=k, average="macro", ignore_index=255)(pred, true)
    acc = MulticlassAccuracy(num_classes=k, average="micro", ignore_index=255)(pred, true)
    assert s.miou == pytest.approx(float(ref), abs=1e-6)
    assert s.pixel_accuracy == pytest.approx(float(acc), abs=1e-6)
    assert int(s.confusion.sum()) == int((true != 255).sum())


def test_hand_computed_example():
    true = torch.tensor([[0, 0, 1, 1]])
    s = segmentation_scores(torch.tensor([[0, 1, 1, 1]]), true, 2)
    # class 0: TP 1, union 2; class 1: TP 2, union 3
    assert s.per_class_iou == pytest.approx([1 / 2, 2 / 3])
    assert s.miou == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert s.pixel_accuracy == 0.75


def test_lists_of_different_sizes_and_batch_accumulation():
    k = 3
    a_pred, a_true = _random_masks(5, n=1, h=6, w=7, num_classes=k)
    b_pred, b_true = _random_masks(6, n=1, h=8, w=5, num_classes=k)
    listed = segmentation_scores([a_pred[0], b_pred[0]], [a_true[0], b_true[0]], k)
    summed = scores_from_confusion(
        segmentation_confusion(a_pred, a_true, k) + segmentation_confusion(b_pred, b_true, k)
    )
    assert torch.equal(listed.confusion, summed.confusion)
    flat = segmentation_scores(
        torch.cat([a_pred.flatten(), b_pred.flatten()]),
        torch.cat([a_true.flatten(), b_true.flatten()]),
        k,
    )
    assert listed.miou == flat.miou and listed.pixel_accuracy == flat.pixel_accuracy


def test_numpy_inputs_and_as_dict():
    import numpy as np

    s = segmentation_scores(np.array([[1, 1]]), np.array([[1, 0]]), 2)
    d = s.as_dict()
    assert d["pixel_accuracy"] == 0.5 and d["confusion"] == [[0, 1], [0, 1]]


def test_class_id_out_of_range_names_the_id_and_the_fix():
    true = torch.tensor([[0, 1], [2, 7]])
    with pytest.raises(ShapeError, match=r"true mask holds class id 7 .*outside 0\.\.2"):
        segmentation_scores(torch.zeros_like(true), true, 3)
    with pytest.raises(ShapeError, match="predicted mask holds class id -1"):
        segmentation_scores(torch.full((2, 2), -1), torch.zeros(2, 2, dtype=torch.long), 3)
    with pytest.raises(ShapeError, match="ignore_index=255"):
        segmentation_scores(torch.zeros(1, 2), torch.tensor([[0, 255]]), 3)


def test_bad_shapes_and_arguments():
    with pytest.raises(ShapeError, match="differ in shape"):
        segmentation_scores(torch.zeros(2, 3), torch.zeros(3, 2), 2)
    with pytest.raises(ShapeError, match=r"image 1: true mask holds class id 5"):
        segmentation_scores([torch.zeros(2, 2)] * 2, [torch.zeros(2, 2), torch.full((2, 2), 5)], 2)
    with pytest.raises(ShapeError, match="2 predicted masks for 1 true masks"):
        segmentation_scores([torch.zeros(2, 2)] * 2, [torch.zeros(2, 2)], 2)
    with pytest.raises(ConfigError, match="num_classes"):
        segmentation_scores(torch.zeros(2), torch.zeros(2), 0)
    with pytest.raises(ConfigError, match="not whole class ids"):
        segmentation_scores(torch.full((2, 2), 0.5), torch.zeros(2, 2), 2)
