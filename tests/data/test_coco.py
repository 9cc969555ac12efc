"""COCO JSON reader on small files the tests write: boxes, sparse category ids and bad input."""

import json

import pytest
import torch
from PIL import Image

from cnnlab.data.coco import read_coco_detection
from cnnlab.errors import DataError
from cnnlab.metrics import detection_map


def _coco(tmp_path, images=None, annotations=None, categories=None):
    images = images if images is not None else [
        {"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
        {"id": 2, "file_name": "b.jpg", "width": 20, "height": 20},  # no annotations
    ]  # fmt: skip
    annotations = annotations if annotations is not None else [
        {"id": 10, "image_id": 1, "category_id": 18, "bbox": [2, 3, 10, 5], "iscrowd": 0},
        {"id": 11, "image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 30], "iscrowd": 1},
    ]  # fmt: skip
    categories = categories if categories is not None else [
        {"id": 18, "name": "dog"}, {"id": 1, "name": "person"},
    ]  # fmt: skip
    for im in images:
        if isinstance(im, dict) and {"file_name", "width", "height"} <= set(im):
            Image.new("RGB", (im["width"], im["height"])).save(tmp_path / im["file_name"])
    path = tmp_path / "instances_train.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return path


def test_reads_boxes_with_contiguous_labels_and_crowd_as_difficult(tmp_path):
    ds = read_coco_detection(_coco(tmp_path))
    assert ds.classes == ["person", "dog"] and ds.category_ids == [1, 18]
    a, b = ds.records
    assert a.boxes.tolist() == [[2, 3, 12, 8], [0, 0, 40, 30]]  # xywh -> xyxy
    assert a.labels.tolist() == [2, 1] and a.difficult.tolist() == [False, True]
    assert a.image_id == "1" and a.image_path == tmp_path / "a.jpg"
    assert len(b) == 0 and b.boxes.shape == (0, 4)
    assert a.load_image().shape == (3, 30, 40)
    # label k maps back to its COCO id; the crowd region counts for nothing when scored
    assert ds.category_ids[int(a.labels[0]) - 1] == 18
    pred = {"boxes": a.boxes[:1], "scores": torch.ones(1), "labels": a.labels[:1]}
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)}
    r = detection_map([pred, empty], ds.targets())
    assert r["map"] == pytest.approx(1.0) and r["classes"] == [2]


def test_image_dir_and_missing_images(tmp_path):
    path = _coco(tmp_path)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "a.jpg").rename(tmp_path / "imgs" / "a.jpg")
    (tmp_path / "b.jpg").rename(tmp_path / "imgs" / "b.jpg")
    assert len(read_coco_detection(path, tmp_path / "imgs")) == 2
    with pytest.raises(DataError, match=r"image id 1: a\.jpg is not in"):
        read_coco_detection(path)


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (
            {"id": 5, "image_id": 1, "category_id": 3, "bbox": [1, 1, 2, 2]},
            r"annotations\[0\] \(id 5\): category_id 3 is out of range: not one of the 2 ",
        ),
        (
            {"id": 5, "image_id": 9, "category_id": 1, "bbox": [1, 1, 2, 2]},
            r"annotations\[0\] \(id 5\): image_id 9 is not in 'images'",
        ),
        (
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 2]},
            r"annotations\[0\] \(id 5\) in image a\.jpg \(person\): box .* has zero area",
        ),
        (
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [35, 1, 10, 2]},
            r"annotations\[0\] \(id 5\) in image a\.jpg \(person\): box .* leaves the 40x30 image",
        ),
        (
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2]},
            r"annotations\[0\] \(id 5\): bbox \[1, 1, 2\]",
        ),
        (
            {"id": 5, "image_id": 1, "category_id": "1", "bbox": [1, 1, 2, 2]},
            r"annotations\[0\] \(id 5\): 'category_id' is '1'",
        ),
        (
            {"id": 5, "category_id": 1, "bbox": [1, 1, 2, 2]},
            r"annotations\[0\] \(id 5\) has no 'image_id'",
        ),
    ],
)
def test_bad_annotations_name_the_file_and_the_record(tmp_path, annotation, message):
    path = _coco(tmp_path, annotations=[annotation])
    with pytest.raises(DataError, match=message) as e:
        read_coco_detection(path)
    assert "instances_train.json" in str(e.value)


def test_bad_boxes_skip_is_stated(tmp_path):
    anns = [
        {"id": 1, "image_id": 1, "category_id": 18, "bbox": [2, 3, 10, 5]},
        {"id": 2, "image_id": 1, "category_id": 18, "bbox": [2, 3, 0, 5]},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [15, 15, 10, 10]},
    ]
    with pytest.warns(UserWarning, match="skipped 2 bad box"):
        ds = read_coco_detection(_coco(tmp_path, annotations=anns), bad_boxes="skip")
    assert [len(r) for r in ds.records] == [1, 0]
    assert "(id 2)" in ds.skipped[0] and "(id 3)" in ds.skipped[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"images": [}', r"malformed JSON at line 1, column 13"),
        ("[1, 2]", "the top level is a list, not an object"),
        ('{"images": [], "annotations": []}', "'categories' is missing, not a list"),
        ('{"images": {}, "annotations": [], "categories": []}', "'images' is a dict, not a list"),
    ],
)
def test_malformed_json(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as e:
        read_coco_detection(path)
    assert "bad.json" in str(e.value)


def test_bad_images_and_categories(tmp_path):
    with pytest.raises(DataError, match=r"images\[0\] has no 'width'"):
        read_coco_detection(_coco(tmp_path, images=[{"id": 1, "file_name": "a.jpg"}]))
    with pytest.raises(DataError, match=r"categories\[1\]: category id 1 appears twice"):
        read_coco_detection(
            _coco(tmp_path, categories=[{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])
        )
    with pytest.raises(DataError, match="does not exist"):
        read_coco_detection(tmp_path / "nope.json")


def _mask_set(tmp_path, annotations):
    images = [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}]
    cats = [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}]
    return read_coco_detection(_coco(tmp_path, images, annotations, cats))


def test_semantic_mask_paints_polygons_and_rle_with_crowd_as_void(tmp_path):
    import numpy as np
    from pycocotools import mask as mask_utils

    band = np.zeros((30, 40), dtype=np.uint8, order="F")
    band[:, 30:35] = 1  # a person, given as compressed RLE
    person = mask_utils.encode(band)
    anns = [
        # a crowd over columns 10..14, uncompressed RLE (column-major counts)
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 0, 5, 30], "iscrowd": 1,
         "segmentation": {"size": [30, 40], "counts": [300, 150, 750]}},
        # a dog polygon painted over part of it
        {"id": 2, "image_id": 1, "category_id": 18, "bbox": [2, 3, 10, 5],
         "segmentation": [[2, 3, 12, 3, 12, 8, 2, 8]]},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [30, 0, 5, 30],
         "segmentation": {"size": [30, 40], "counts": person["counts"].decode("ascii")}},
    ]  # fmt: skip
    mask = _mask_set(tmp_path, anns).semantic_mask(0)
    assert mask.shape == (30, 40) and mask.dtype == torch.uint8
    assert set(mask.unique().tolist()) == {0, 1, 2, 255}
    assert (mask[:, 30:35] == 1).all() and (mask[:, 35:] == 0).all()
    assert (mask[15:, 10:15] == 255).all() and (mask[:, :2] == 0).all()
    assert (mask[4:7, 3:11] == 2).all() and mask[5, 11] == 2  # the dog over the crowd
    assert 45 <= int((mask == 2).sum()) <= 70  # 10 x 5 up to the rasteriser's edge pixels


@pytest.mark.parametrize(
    ("segmentation", "message"),
    [
        (None, r"annotations\[0\] \(id 5\) in image a\.jpg \(dog\): no 'segmentation'"),
        ([[1, 2, 3, 4]], "not a list of polygons"),
        ({"size": [20, 40], "counts": [800]}, r"RLE size \[20, 40\] is not the image's"),
        ({"size": [30, 40], "counts": [10, 20]}, "RLE counts add up to 30, not 30 x 40"),
        ("oops", "'segmentation' is str, neither polygons nor RLE"),
    ],
)
def test_bad_segmentations_name_the_record(tmp_path, segmentation, message):
    ann = {"id": 5, "image_id": 1, "category_id": 18, "bbox": [2, 3, 10, 5]}
    if segmentation is not None:
        ann["segmentation"] = segmentation
    ds = _mask_set(tmp_path, [ann])
    with pytest.raises(DataError, match=message):
        ds.semantic_mask(0)


def test_semantic_mask_without_pycocotools_says_what_to_install(tmp_path, monkeypatch):
    import sys

    from cnnlab.errors import ConfigError

    ann = {"id": 5, "image_id": 1, "category_id": 18, "bbox": [2, 3, 10, 5],
           "segmentation": [[2, 3, 12, 3, 12, 8, 2, 8]]}  # fmt: skip
    ds = _mask_set(tmp_path, [ann])
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    with pytest.raises(ConfigError, match="needs pycocotools") as e:
        ds.semantic_mask(0)
    assert "pip install pycocotools" in str(e.value)
