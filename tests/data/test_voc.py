"""Pascal VOC readers on small folders the tests write: boxes, masks, splits and bad input."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data.voc import (
    VOC_CLASSES,
    load_voc_mask,
    parse_voc_xml,
    read_voc_detection,
    read_voc_segmentation,
)
from cnnlab.errors import DataError
from cnnlab.metrics import detection_map, segmentation_scores

CLASSES = ("cat", "dog")


def _xml(filename, w, h, objects):
    objs = "".join(
        f"<object><name>{name}</name><difficult>{int(diff)}</difficult><bndbox>"
        f"<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, (x1, y1, x2, y2), diff in objects
    )
    return (
        f"<annotation><filename>{filename}</filename><size><width>{w}</width>"
        f"<height>{h}</height><depth>3</depth></size>{objs}</annotation>"
    )


def _voc(root, annotations, split=None):
    """A VOC folder: annotations maps id -> (w, h, objects)."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for image_id, (w, h, objects) in annotations.items():
        (root / "Annotations" / f"{image_id}.xml").write_text(
            _xml(f"{image_id}.jpg", w, h, objects)
        )
        Image.new("RGB", (w, h), (40, 80, 120)).save(root / "JPEGImages" / f"{image_id}.jpg")
    if split:
        for name, ids in split.items():
            (root / "ImageSets" / "Main" / f"{name}.txt").write_text("\n".join(ids) + "\n")
    return root


def test_reads_boxes_labels_difficult_and_empty_images(tmp_path):
    root = _voc(
        tmp_path,
        {
            "a": (40, 30, [("dog", (1, 1, 20, 10), False), ("cat", (5, 6, 40, 30), True)]),
            "b": (20, 20, []),  # no objects: kept, empty
        },
        split={"train": ["a", "b"], "val": ["b"]},
    )
    ds = read_voc_detection(root, "train", CLASSES)
    assert len(ds) == 2 and ds.classes == ["cat", "dog"] and ds.num_objects == 2
    a, b = ds.records
    # VOC corners are 1-based inclusive: (1, 1, 20, 10) covers pixels 0..19 -> xyxy (0, 0, 20, 10)
    assert a.boxes.tolist() == [[0, 0, 20, 10], [4, 5, 40, 30]]
    assert a.labels.tolist() == [2, 1] and a.difficult.tolist() == [False, True]
    assert (a.width, a.height) == (40, 30) and a.image_path.name == "a.jpg"
    assert len(b) == 0 and b.boxes.shape == (0, 4) and b.labels.dtype == torch.int64
    assert a.load_image().shape == (3, 30, 40) and a.load_image().dtype == torch.uint8
    assert len(read_voc_detection(root, "val", CLASSES)) == 1
    assert [r.image_id for r in read_voc_detection(root, None, CLASSES)] == ["a", "b"]
    # the targets score straight away, and a perfect prediction gets mAP 1 (difficult ignored)
    preds = [{"boxes": t["boxes"], "scores": torch.ones(len(t["boxes"])), "labels": t["labels"]}
             for t in ds.targets()]  # fmt: skip
    r = detection_map(preds, ds.targets())
    assert r["map_50_voc"] == 1 and r["classes"] == [2]


def test_default_classes_are_the_twenty_voc_classes(tmp_path):
    root = _voc(tmp_path, {"x": (50, 50, [("tvmonitor", (2, 2, 30, 30), False)])})
    rec = read_voc_detection(root, None).records[0]
    assert len(VOC_CLASSES) == 20 and rec.labels.tolist() == [20]


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ([("dog", (10, 5, 9, 20), False)], r"object 0 \(dog\): box .* has zero area"),
        ([("dog", (1, 1, 50, 10), False)], r"object 0 \(dog\): box .* leaves the 40x30 image"),
        (
            [("cat", (1, 1, 5, 5), False), ("cow", (1, 1, 5, 5), False)],
            r"object 1 \(cow\): class 'cow' is not one of the 2 classes",
        ),
    ],
)
def test_bad_objects_name_the_file_and_the_object(tmp_path, objects, message):
    root = _voc(tmp_path, {"a": (40, 30, objects)})
    with pytest.raises(DataError, match=message) as e:
        read_voc_detection(root, None, CLASSES)
    assert "a.xml" in str(e.value)


def test_bad_boxes_skip_is_stated(tmp_path):
    root = _voc(tmp_path, {"a": (40, 30, [("dog", (1, 1, 20, 10), False),
                                          ("cat", (1, 1, 60, 10), False),
                                          ("cat", (10, 10, 9, 12), False)])})  # fmt: skip
    with pytest.warns(UserWarning, match="skipped 2 bad box"):
        ds = read_voc_detection(root, None, CLASSES, bad_boxes="skip")
    assert ds.records[0].labels.tolist() == [2]
    assert len(ds.skipped) == 2 and "object 1 (cat)" in ds.skipped[0] and "skipped" in ds.skipped[0]


def test_a_box_a_pixel_over_the_edge_is_clipped(tmp_path):
    root = _voc(tmp_path, {"a": (40, 30, [("dog", (1, 1, 41, 31), False)])})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = read_voc_detection(root, None, CLASSES).records[0]
    assert rec.boxes.tolist() == [[0, 0, 40, 30]]


def test_malformed_xml_and_missing_fields(tmp_path):
    root = _voc(tmp_path, {"a": (40, 30, [])})
    xml = root / "Annotations" / "a.xml"
    xml.write_text("<annotation><size><width>4</width></size>\n<object><name>dog</nam></object>")
    with pytest.raises(DataError, match=r"a\.xml: malformed XML at line 2"):
        read_voc_detection(root, None, CLASSES)
    xml.write_text("<annotation><size><width>4</width></size></annotation>")
    with pytest.raises(DataError, match=r"a\.xml <size>: missing <height>"):
        parse_voc_xml(xml, CLASSES)
    xml.write_text(_xml("a.jpg", 40, 30, []).replace("<width>40</width>", "<width>forty</width>"))
    with pytest.raises(DataError, match="<width> is 'forty', not a number"):
        parse_voc_xml(xml, CLASSES)
    xml.write_text("<annotation><size><width>4</width><height>4</height></size>"
                   "<object><name>dog</name></object></annotation>")  # fmt: skip
    with pytest.raises(DataError, match=r"object 0 \(dog\): missing <bndbox>"):
        parse_voc_xml(xml, CLASSES)
    xml.write_text("<foo/>")
    with pytest.raises(DataError, match="not <annotation>"):
        parse_voc_xml(xml, CLASSES)


def test_missing_files_and_splits(tmp_path):
    root = _voc(tmp_path, {"a": (40, 30, [])}, split={"train": ["a", "zz"]})
    with pytest.raises(DataError, match=r"zz\.xml does not exist \(listed in split 'train'\)"):
        read_voc_detection(root, "train", CLASSES)
    with pytest.raises(DataError, match=r"(?s)no split 'trian'.*did you mean: train"):
        read_voc_detection(root, "trian", CLASSES)
    (root / "JPEGImages" / "a.jpg").unlink()
    with pytest.raises(DataError, match="names image a.jpg, which is not in"):
        read_voc_detection(root, None, CLASSES)
    with pytest.raises(DataError, match="does not exist"):
        read_voc_detection(tmp_path / "nope", None, CLASSES)
    with pytest.raises(Exception, match="unknown bad_boxes policy 'drop'"):
        read_voc_detection(root, None, CLASSES, bad_boxes="drop")


def test_image_size_must_match_the_annotation(tmp_path):
    root = _voc(tmp_path, {"a": (40, 30, [])})
    Image.new("RGB", (41, 30)).save(root / "JPEGImages" / "a.jpg")
    rec = read_voc_detection(root, None, CLASSES).records[0]
    with pytest.raises(DataError, match="is 41x30 pixels but .*a.xml says 40x30"):
        rec.load_image()


# ----------------------------------------------------------------------------- segmentation


def _palette_png(path, ids):
    im = Image.fromarray(np.asarray(ids, dtype=np.uint8), mode="P")
    im.putpalette([v for k in range(256) for v in (k, 255 - k, (7 * k) % 256)])
    im.save(path)


def _seg(root, masks):
    for sub in ("SegmentationClass", "JPEGImages", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for image_id, ids in masks.items():
        ids = np.asarray(ids)
        _palette_png(root / "SegmentationClass" / f"{image_id}.png", ids)
        Image.new("RGB", ids.shape[::-1]).save(root / "JPEGImages" / f"{image_id}.jpg")
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(masks) + "\n")
    return root


def test_segmentation_pairs_masks_with_void_and_scores(tmp_path):
    mask = [[0, 0, 1, 2], [0, 255, 1, 2], [0, 0, 0, 0]]
    root = _seg(tmp_path, {"m1": mask, "m2": [[2, 2], [2, 0]]})
    ds = read_voc_segmentation(root, "train", CLASSES)
    assert len(ds) == 2 and ds.classes == ["background", "cat", "dog"] and ds.num_classes == 3
    image, m = ds.load(0)
    assert image.shape == (3, 3, 4) and m.dtype == torch.uint8
    assert m.tolist() == mask  # the palette only colours the ids: the ids come back as written
    s = segmentation_scores(m, m, ds.num_classes, ignore_index=255)
    assert s.miou == 1 and s.pixel_accuracy == 1


def test_mask_class_id_out_of_range_names_the_pixel(tmp_path):
    root = _seg(tmp_path, {"m1": [[0, 1], [7, 0]]})
    ds = read_voc_segmentation(root, "train", CLASSES)
    with pytest.raises(
        DataError, match=r"m1\.png: class id 7 at pixel \(x=0, y=1\) is outside 0\.\.2"
    ):
        ds.load(0)


def test_rgb_masks_and_missing_masks_are_refused(tmp_path):
    root = _seg(tmp_path, {"m1": [[0, 1], [1, 0]]})
    Image.new("RGB", (2, 2), (128, 0, 0)).save(root / "SegmentationClass" / "m1.png")
    with pytest.raises(DataError, match="a RGB image, not a class-index mask"):
        load_voc_mask(root / "SegmentationClass" / "m1.png", 3)
    (root / "SegmentationClass" / "m1.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read mask"):
        load_voc_mask(root / "SegmentationClass" / "m1.png", 3)
    (root / "SegmentationClass" / "m1.png").unlink()
    with pytest.raises(DataError, match=r"mask .*m1\.png of image id 'm1' does not exist"):
        read_voc_segmentation(root, "train", CLASSES)


def test_mask_and_image_sizes_must_agree(tmp_path):
    root = _seg(tmp_path, {"m1": [[0, 1], [1, 0]]})
    Image.new("RGB", (3, 2)).save(root / "JPEGImages" / "m1.jpg")
    with pytest.raises(DataError, match="a mask must have its image's size|is 2x2 but its image"):
        read_voc_segmentation(root, "train", CLASSES).load(0)
