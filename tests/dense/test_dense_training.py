"""Detection and segmentation through the one trainer, and `cnnlab detect` / `segment`."""

import json
import subprocess
import sys

import pytest
import torch

from cnnlab.data.synthetic import make_digit_scenes
from cnnlab.errors import ConfigError
from cnnlab.training.config import TrainConfig
from cnnlab.training.trainer import train


def _sets(task, canvas, n=48):
    kw = dict(canvas=canvas, count=(1, 2), scale=(14, 22), task=task)
    return make_digit_scenes(n, seed=0, **kw), make_digit_scenes(16, seed=1, split="test", **kw)


def _run(tmp_path, model, task, canvas, **cfg):
    tr, te = _sets(task, canvas)
    options = (
        {"size": canvas} if "rcnn" in model else {"grid": canvas // 16} if "yolo" in model else {}
    )
    c = TrainConfig(model=model, data=f"digits-{task[:3]}", model_options=options, epochs=1,
                    batch_size=16, optimizer="adamw", lr=1e-3, runs_dir=str(tmp_path),
                    name=model, quiet=True, threads=1, **cfg)  # fmt: skip
    return train(c, train_set=tr, eval_set=te, test_set=te, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense-runs")
    torch.manual_seed(0)
    return {
        "fcn": _run(root, "fcn8s_small", "segmentation", 32),
        "yolo": _run(root, "yolov1_small", "detection", 64),
        "frcnn": _run(root, "fasterrcnn_small", "detection", 64),
    }


METRICS = [("fcn", "miou"), ("yolo", "map_50"), ("frcnn", "map_50")]


@pytest.mark.parametrize(("key", "metric"), METRICS)
def test_run_folder_has_the_task_scores(runs, key, metric):
    r = runs[key]
    assert r.status == "completed"
    row = r.history[-1]
    assert 0 <= row[f"val_{metric}"] <= 100
    header = (r.run_dir / "metrics.csv").read_text().splitlines()[0]
    assert f"val_{metric}" in header
    summary = json.loads((r.run_dir / "summary.json").read_text())
    assert metric in summary["test"]
    assert (r.run_dir / "examples_test.png").stat().st_size > 0
    per_class = "per_class_iou_test.csv" if key == "fcn" else "per_class_ap_test.csv"
    assert (r.run_dir / per_class).read_text().startswith("class,")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cnnlab", *map(str, args)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_detect_and_segment_write_pngs(runs, tmp_path):
    from torchvision.io import decode_png, read_file, write_png

    scene = make_digit_scenes(1, seed=7, canvas=64, count=(2, 2), scale=(16, 20))
    img = tmp_path / "scene.png"
    write_png(scene.images[0], str(img))
    out = tmp_path / "boxes.png"
    p = _cli("detect", runs["yolo"].run_dir, img, "-o", out, "--min-score", "0")
    assert p.returncode == 0, p.stderr
    assert decode_png(read_file(str(out))).shape == (3, 256, 256)  # drawn at 4x
    seg = tmp_path / "mask.png"
    small = tmp_path / "small.png"
    write_png(scene.images[0][:, :32, :32].contiguous(), str(small))
    p = _cli("segment", runs["fcn"].run_dir, small, "-o", seg)
    assert p.returncode == 0, p.stderr
    counts = [int(line.split()[-2]) for line in p.stdout.splitlines() if line.endswith("pixels")]
    assert sum(counts) == 32 * 32 and seg.stat().st_size > 0


@pytest.mark.parametrize(
    ("cmd", "key", "image", "output", "says"),
    [
        ("detect", "fcn", "IMG", "out.png", "not a detection model"),
        ("segment", "yolo", "IMG", "out.png", "not a segmentation model"),
        ("detect", "yolo", "missing.png", "out.png", "does not exist"),
        ("detect", "yolo", "BAD", "out.png", "cannot decode"),
        ("detect", "yolo", "IMG", "out.jpg", "is not a .png"),
        ("detect", "yolo", "IMG", "bad.png/out.png", "is a file, not a folder"),
        ("detect", "yolo", "digits-det:x", "out.png", "must be an integer"),
        ("detect", "yolo", "digits-det:9999", "out.png", "has 400 test images"),
        ("detect", "norun", "IMG", "out.png", "does not exist"),
    ],
)
def test_cli_errors_are_one_message(runs, tmp_path, capsys, cmd, key, image, output, says):
    """Through the CLI's main() in this process (one real subprocess is below)."""
    from torchvision.io import write_png

    from cnnlab.cli import main

    img = tmp_path / "img.png"
    write_png(torch.zeros(1, 64, 64, dtype=torch.uint8), str(img))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    image = {"IMG": img, "BAD": bad}.get(image, image if ":" in image else tmp_path / image)
    run = runs[key].run_dir if key in runs else tmp_path / key
    assert main([cmd, str(run), str(image), "-o", str(tmp_path / output)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert says in err and "Traceback" not in err
    assert not (tmp_path / output).exists()


@pytest.mark.slow
def test_cli_errors_through_a_subprocess(runs, tmp_path):
    p = _cli("segment", runs["yolo"].run_dir, "digits-seg:0", "-o", tmp_path / "o.png")
    err = " ".join(p.stderr.split())
    assert p.returncode == 2 and "not a segmentation model" in err and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


def test_wrong_model_for_the_data_is_refused(tmp_path):
    tr, te = _sets("detection", 64, n=16)
    cfg = TrainConfig(model="fcn8s_small", data="digits-det", epochs=1, runs_dir=str(tmp_path),
                      quiet=True)  # fmt: skip
    with pytest.raises(ConfigError, match="not a detector"):
        train(cfg, train_set=tr, eval_set=te, progress=False)
    cfg = TrainConfig(model="yolov1_small", data="digits", epochs=1, runs_dir=str(tmp_path),
                      quiet=True)  # fmt: skip
    with pytest.raises(ConfigError, match="is a detection model"):
        train(cfg, progress=False)
    cfg = TrainConfig(model="yolov1_small", data="digits-det", epochs=1, augment="flip",
                      runs_dir=str(tmp_path), quiet=True)  # fmt: skip
    with pytest.raises(ConfigError, match="--augment"):
        train(cfg, train_set=tr, eval_set=te, progress=False)


def test_bad_records_are_named_before_training(tmp_path):
    import dataclasses

    from cnnlab.errors import DataError

    tr, te = _sets("detection", 64, n=16)
    objects = tr.objects.clone()
    objects[5, 0, 1:] = torch.tensor([30.0, 30.0, 30.0, 40.0])
    bad = dataclasses.replace(tr, objects=objects, labels=None)
    cfg = TrainConfig(model="yolov1_small", data="digits-det", epochs=1, runs_dir=str(tmp_path),
                      quiet=True, name="bad")  # fmt: skip
    with pytest.raises(DataError, match="record 5, object 0"):
        train(cfg, train_set=bad, eval_set=te, progress=False)
    assert not (tmp_path / "bad").exists()  # nothing half-written


def test_segmentation_at_another_input_size(tmp_path):
    """--input-size feeds a segmentation model its images resized (here 32 -> 64 px); the
    masks stay at the data's size, the class maps are resized back to them."""
    from cnnlab.training.dense_tasks import SegmentationTask
    from cnnlab.training.inference import load_trained

    torch.manual_seed(0)
    r = _run(tmp_path, "fcn8s_small", "segmentation", 32, input_size=64)
    assert r.status == "completed" and 0 <= r.summary["test"]["miou"] <= 100
    tr = load_trained(r.run_dir / "best.pt")
    _, te = _sets("segmentation", 32)
    x = tr.pipeline(te.images[:2])
    assert tuple(x.shape[-2:]) == (64, 64)
    task = SegmentationTask(te.classes)
    with torch.no_grad():
        out = tr.model(x)
    assert tuple(out.shape[-2:]) == (64, 64)
    pred = task.masks(out, (32, 32))
    assert pred.shape == (2, 32, 32) and pred.max() < task.num_classes
    # at the model's own size the class maps are taken as they are
    assert torch.equal(task.masks(out, (64, 64)), out.argmax(1))


def test_input_size_is_refused_for_detection(tmp_path):
    """Boxes are in the data's pixels: resizing a detector's images would move them."""
    with pytest.raises(ConfigError, match="--input-size 96: a detection model"):
        _run(tmp_path, "yolov1_small", "detection", 64, input_size=96)
    assert not (tmp_path / "yolov1_small").exists()  # refused before the run folder


@pytest.mark.parametrize("key", ["fcn", "yolo", "frcnn"])
def test_run_report_of_a_dense_run(runs, key, tmp_path):
    """`cnnlab train`'s report hook: a dense run gets its report, the classifier-only sections
    say why they are empty (they used to raise on the masks / boxes as labels)."""
    from cnnlab.viz.report import build_report

    page = build_report(runs[key].run_dir, out=tmp_path / "report.html").read_text()
    assert "this section is for classifiers" in page
    metric = {"fcn": "mIoU", "yolo": "mAP@0.5", "frcnn": "mAP@0.5"}[key]
    assert f": test {metric} " in page and "no test score" not in page  # the task's own score


@pytest.mark.parametrize(("key", "says"), [("yolo", "cnnlab detect"), ("fcn", "cnnlab segment")])
def test_predict_names_the_command_for_a_dense_checkpoint(runs, tmp_path, capsys, key, says):
    from torchvision.io import write_png

    from cnnlab.cli import main

    img = tmp_path / "img.png"
    write_png(torch.zeros(1, 64, 64, dtype=torch.uint8), str(img))
    assert main(["predict", str(runs[key].run_dir), str(img)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "not a classification model" in err and says in err and "Traceback" not in err
