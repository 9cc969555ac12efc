"""The digits-det / digits-seg generator: deterministic, consistent, controllable."""

import dataclasses

import pytest
import torch

from cnnlab.data import load_dataset
from cnnlab.data.synthetic import INK, PRESETS, make_digit_scenes
from cnnlab.errors import ConfigError, DataError


def _small(**kw):
    return make_digit_scenes(12, **{"canvas": 64, "scale": (14, 24), **kw})


def test_deterministic_per_seed():
    a, b, c = _small(seed=3), _small(seed=3), _small(seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert torch.equal(a.objects, b.objects) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def test_boxes_masks_and_labels_agree():
    ds = _small(seed=0, count=(1, 3), max_overlap=0.0)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (12, 1, 64, 64)
    for i, t in enumerate(ds.targets()):
        assert 1 <= len(t["boxes"]) <= 3
        for box, label in zip(t["boxes"].long().tolist(), t["labels"].tolist()):
            x0, y0, x1, y1 = box
            inside = ds.masks[i, y0:y1, x0:x1]
            assert (inside == label + 1).any()  # the digit's pixels carry its class id
            # the box is tight: its border rows and columns hold ink of that digit
            digit = inside == label + 1
            assert digit[0].any() and digit[-1].any() and digit[:, 0].any() and digit[:, -1].any()
        # ink pixels that belong to no digit do not exist without clutter
        assert ((ds.images[i, 0] >= INK) == (ds.masks[i] > 0)).all()


def test_no_overlap_when_asked():
    ds = make_digit_scenes(20, seed=1, canvas=96, count=(4, 4), scale=(16, 30), max_overlap=0.0)
    for t in ds.targets():
        b = t["boxes"]
        from torchvision.ops import box_iou

        iou = box_iou(b, b) - torch.eye(len(b))
        assert iou.max() <= 0


def test_count_clutter_and_noise_controls():
    one = _small(seed=0, count=(1, 1))
    assert ((one.objects[..., 0] >= 0).sum(1) == 1).all()
    clean, cluttered = _small(seed=5, clutter=0), _small(seed=5, clutter=3)
    assert torch.equal(clean.objects, cluttered.objects)  # clutter adds no object...
    assert cluttered.images.float().sum() > clean.images.float().sum()  # ...only ink
    assert torch.equal(clean.masks, cluttered.masks)  # and stays background in the mask
    noisy = _small(seed=5, noise=0.05)
    assert not torch.equal(noisy.images, clean.images)


def test_presets_have_fixed_splits():
    assert set(PRESETS) == {"digits-det", "digits-seg"}
    det = load_dataset("digits-det", "test")
    assert det.task == "detection" and det.image_shape == (1, 96, 96) and len(det) == 400
    again = load_dataset("digits-det", "test")
    assert torch.equal(det.images, again.images)
    seg = load_dataset("digits-seg", "test")
    assert seg.task == "segmentation" and seg.image_shape == (1, 64, 64)
    assert int(seg.masks.max()) <= 10


@pytest.mark.parametrize(
    "kw",
    [
        dict(count=(3, 1)),
        dict(scale=(10, 200)),
        dict(max_overlap=2.0),
        dict(clutter=-1),
        dict(source="mnist"),
        dict(source="emnist"),
        dict(task="instances"),
    ],  # fmt: skip
)
def test_bad_controls(kw):
    with pytest.raises(ConfigError):
        _small(**kw)


def test_validate_names_the_record():
    ds = _small(seed=0)
    ds.validate()
    masks = ds.masks.clone()
    masks[5, 0, 0] = 42
    with pytest.raises(DataError, match="record 5: mask holds class id 42"):
        dataclasses.replace(ds, masks=masks).validate()
    objects = ds.objects.clone()
    objects[2, 0, 1:] = torch.tensor([10.0, 10, 10, 20])
    with pytest.raises(DataError, match="record 2, object 0: .* zero area"):
        dataclasses.replace(ds, objects=objects, labels=None).validate()
    objects = ds.objects.clone()
    objects[3, 0, 3] = 99
    with pytest.raises(DataError, match="record 3, object 0: .* outside the image"):
        dataclasses.replace(ds, objects=objects, labels=None).validate()
    objects = ds.objects.clone()
    objects[4, 0, 0] = 10
    with pytest.raises(DataError, match="record 4, object 0: label 10 is out of range"):
        dataclasses.replace(ds, objects=objects, labels=None).validate()


def test_batch_targets_are_the_task_tensor():
    det = _small(seed=0)
    assert det.labels is det.objects and det.labels.shape[-1] == 5
    seg = _small(seed=0, task="segmentation")
    assert seg.labels is seg.masks
    sub = det.subset(torch.tensor([3, 1]))
    assert torch.equal(sub.labels, det.objects[[3, 1]])
    assert [len(t["boxes"]) for t in sub.targets()] == [
        len(t["boxes"]) for t in det.targets([3, 1])
    ]
