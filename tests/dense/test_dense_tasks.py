"""The segmentation and detection tasks: losses, scores and evaluation, without the trainer."""

import pytest
import torch

from cnnlab.data.synthetic import make_digit_scenes
from cnnlab.errors import ConfigError
from cnnlab.models import create
from cnnlab.training.dense_tasks import DetectionTask, SegmentationTask


class _Identity:
    def __call__(self, x):
        return x.float() / 255


@pytest.fixture(scope="module")
def det():
    return make_digit_scenes(6, seed=0, canvas=64, scale=(14, 22), count=(1, 3))


@pytest.fixture(scope="module")
def seg():
    return make_digit_scenes(6, seed=0, canvas=32, scale=(12, 16), count=(1, 2),
                             task="segmentation")  # fmt: skip


class _Oracle(torch.nn.Module):
    """Predicts the true mask (one-hot logits) of the images it was built for."""

    def __init__(self, images, masks, num_classes):
        super().__init__()
        self.images, self.masks, self.k = images, masks, num_classes

    def forward(self, x):
        idx = [int((self.images.float() / 255 - xi).abs().flatten(1).sum(1).argmin()) for xi in x]
        return (
            torch.nn.functional.one_hot(self.masks[idx].long(), self.k).permute(0, 3, 1, 2) * 10.0
        )


def test_segmentation_task_scores_an_oracle_perfectly(seg):
    task = SegmentationTask(seg.classes)
    assert task.classes[0] == "background" and task.num_classes == 11
    oracle = _Oracle(seg.images, seg.masks, 11).float()
    res = task.evaluate(oracle, seg.images, seg.labels, _Identity(), batch_size=4)
    assert res.n == 6 and res.metrics() == {"miou": 100.0, "pixel_acc": 100.0}  # percent
    loss, out = task.loss(oracle(seg.images.float() / 255), seg.labels[:6])
    assert loss < 1e-3 and out.shape == (6, 11, 32, 32)
    assert float(task.batch_score(out, seg.labels)) == pytest.approx(600.0)


def test_segmentation_loss_resizes_to_the_mask(seg):
    task = SegmentationTask(seg.classes)
    logits = torch.zeros(2, 11, 16, 16, requires_grad=True)
    loss, out = task.loss(logits, seg.labels[:2])
    loss.backward()
    assert out.shape[-2:] == (32, 32) and logits.grad is not None


def test_yolo_task_trains_and_evaluates(det):
    torch.manual_seed(0)
    task = DetectionTask(det.classes, "yolo", (64, 64))
    model = create("yolov1_small", grid=4)  # 64 px: a 4 x 4 map
    loss, out = task.loss(model(det.images[:4].float() / 255), det.labels[:4])
    loss.backward()
    assert torch.isfinite(loss) and out.shape == (4, 4, 4, 20)
    res = task.evaluate(model, det.images, det.labels, _Identity(), batch_size=4)
    assert set(res.metrics()) == {"map_50", "map"} and res.loss is not None and res.n == 6


def test_yolo_task_scores_perfect_grid_as_map_1(det):
    from cnnlab.models.yolo import encode_targets

    task = DetectionTask(det.classes, "yolo", (64, 64))
    grid = encode_targets(task.targets(det.labels), 7, 10, (64, 64))
    perfect = torch.cat([grid[..., :5], torch.zeros_like(grid[..., :5]), grid[..., 5:]], -1)
    preds = task.detections(perfect)
    from cnnlab.metrics import detection_map

    assert detection_map(preds, det.targets())["map_50_voc"] == pytest.approx(1.0)


def test_rcnn_task_passes_targets_and_shifts_labels(det):
    torch.manual_seed(0)
    task = DetectionTask(det.classes, "rcnn", (64, 64))
    assert task.classes[0] == "background" and task.num_classes == 11
    assert task.targets(det.labels[:1])[0]["labels"].min() >= 1
    model = create("fasterrcnn_small", size=64).train()
    out = task.forward(model, det.images[:2].float() / 255, det.labels[:2])
    loss, _ = task.loss(out, det.labels[:2])
    loss.backward()
    assert torch.isfinite(loss)
    res = task.evaluate(model, det.images, det.labels, _Identity(), batch_size=3)
    assert res.loss is None and 0 <= res.metrics()["map_50"] <= 100
    assert all((d["labels"] >= 0).all() for d in res.examples["pred"])


def test_tasks_refuse_tta_and_bad_kinds(seg):
    with pytest.raises(ConfigError, match="detector kind"):
        DetectionTask(["a"], "ssd")
    with pytest.raises(ConfigError, match="--tta"):
        SegmentationTask(seg.classes).evaluate(
            None, seg.images, seg.labels, _Identity(), tta="flip"
        )
