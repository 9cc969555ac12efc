"""TrainState, RunFolder, tasks and on_finish hooks: the trainer's small parts and its
extension points."""

import csv
import dataclasses
import json

import pytest
import torch
from torch import nn

from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.config import PREPROCESS_MODES, TTA_MODES, TrainConfig
from cnnlab.training.run_folder import RunFolder, RunFolderError
from cnnlab.training.state import TrainState
from cnnlab.training.tasks import ClassificationTask, make_task
from cnnlab.training.trainer import metric_columns, train


def test_train_state_round_trip_in_one_call():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    st = TrainState(model, opt, meta={"kind": "train", "classes": ["a", "b", "c"]})
    st.step, st.epoch, st.batch_in_epoch = 7, 1, 3
    st.end_epoch({"epoch": 2, "val_top1": 50.0})
    st.best = {"epoch": 2, "top1": 50.0}
    saved = st.state_dict()
    assert saved["classes"] == ["a", "b", "c"] and saved["epoch"] == 2 and saved["step"] == 7

    model2 = torch.nn.Linear(4, 3)
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    st2 = TrainState(model2, opt2)
    st2.load_state_dict(saved)
    assert torch.equal(model2.weight, model.weight)
    assert (st2.epoch, st2.batch_in_epoch, st2.step) == (2, 0, 7)
    assert st2.history == [{"epoch": 2, "val_top1": 50.0}] and st2.best["top1"] == 50.0
    assert st2.wall_seconds >= saved["wall_seconds"]
    assert opt2.state_dict()["state"][0]["momentum_buffer"].equal(
        opt.state_dict()["state"][0]["momentum_buffer"]
    )
    assert st2.improved(51.0) and not st2.improved(50.0) and not st2.improved(None)


def test_run_folder_refuses_an_existing_run_and_reports_a_full_disk(tmp_path, monkeypatch):
    f = RunFolder.create(tmp_path, "r")
    f.save_checkpoint("last.pt", {"w": torch.zeros(2)})
    assert load_checkpoint(f.file("last.pt"))["w"].shape == (2,)
    with pytest.raises(Exception, match="already holds a run") as e:
        RunFolder.create(tmp_path, "r")
    assert "--resume" in e.value.hint

    import cnnlab.training.run_folder as RF

    def full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RF, "atomic_write", full)
    with pytest.raises(RunFolderError, match="cannot write .*No space left") as e:
        RunFolder.create(tmp_path, "new")
    assert "--runs-dir" in e.value.hint
    with pytest.raises(RunFolderError, match="metrics.csv"):
        f.write_metrics([{"epoch": 1}], ["epoch"])


def test_a_rank_that_does_not_write_writes_nothing(tmp_path):
    f = RunFolder.create(tmp_path, "quiet", write=False)
    f.write_json("summary.json", {"a": 1})
    f.save_checkpoint("last.pt", {"w": torch.zeros(1)})
    assert not (tmp_path / "quiet").exists()


def test_classification_task_loss_score_and_columns():
    task = make_task(TrainConfig(label_smoothing=0.0), ["a", "b", "c"])
    assert isinstance(task, ClassificationTask) and task.metrics[0] == "top1"
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]])
    y = torch.tensor([0, 1, 2, 2])
    loss, out = task.loss(logits, y)
    assert out is logits and loss > 0
    assert float(task.batch_score(logits, y)) / len(y) == 75.0  # percent after / count
    soft = torch.nn.functional.one_hot(y, 3).float()  # mixup-style targets
    assert float(task.batch_score(logits, soft)) / len(y) == 75.0
    assert metric_columns(task) == [
        "epoch", "step", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
        "epoch_seconds", "wall_seconds", "images_per_second",
    ]  # fmt: skip
    with pytest.raises(Exception, match="unknown task"):
        make_task(TrainConfig(task="detection-typo"), ["a"])


def test_on_finish_hooks_get_the_folder_and_the_result(tmp_path, bars, tiny_config):
    tr, te = bars
    seen = []

    def hook(folder, result):
        seen.append((folder.name, result.status, folder.file("summary.json").is_file()))
        folder.write_text("report.txt", f"top-1 {result.summary['test']}\n")

    res = train(tiny_config(tmp_path, epochs=1), train_set=tr, eval_set=te, on_finish=[hook])
    assert seen == [("t", "completed", True)]
    assert (res.run_dir / "report.txt").read_text().startswith("top-1 ")

    def stop(st):
        if st.step == 2:
            raise KeyboardInterrupt

    cut = train(tiny_config(tmp_path, name="cut"), train_set=tr, eval_set=te,
                callbacks=[stop], on_finish=[hook])  # fmt: skip
    assert seen[-1] == ("cut", "interrupted", True)
    assert cut.status == "interrupted"


def test_interrupted_epoch_row_is_complete_after_resume(tmp_path, bars, tiny_config):
    """The row of an epoch cut mid-way holds the whole epoch's training loss and accuracy."""
    tr, te = bars
    cfg = tiny_config(tmp_path, epochs=2)
    straight = train(cfg.replace(name="straight"), train_set=tr, eval_set=te)

    def stop(st):
        if st.step == 3:
            raise KeyboardInterrupt

    cut = train(cfg.replace(name="cut"), train_set=tr, eval_set=te, callbacks=[stop])
    resumed = train(cfg, train_set=tr, eval_set=te, resume=cut.run_dir)
    for a, b in zip(straight.history, resumed.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["train_top1"] == pytest.approx(b["train_top1"])
        assert a["val_top1"] == pytest.approx(b["val_top1"])
    rows = list(csv.DictReader((resumed.run_dir / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(r["train_loss"] for r in rows)
    assert json.loads((resumed.run_dir / "summary.json").read_text())["status"] == "completed"


def test_train_flags_come_from_the_config_fields():
    from cnnlab.cli import build_parser
    from cnnlab.cli.train import train_flags
    from cnnlab.data.preprocess import MODES
    from cnnlab.data.tta import TTA_MODES as DATA_TTA

    assert PREPROCESS_MODES == MODES and TTA_MODES == DATA_TTA
    flags = {flag: name for flag, name, _ in train_flags()}
    fields = {f.name for f in dataclasses.fields(TrainConfig) if "help" in f.metadata}
    assert set(flags.values()) == fields and flags["--target"] == "target_top1"
    args = build_parser().parse_args(
        ["train", "lenet5", "--epochs", "2.5", "--eval-batch-size", "64", "--amp", "--target", "90"]
    )
    from cnnlab.cli.train import config_from_args

    cfg = config_from_args(args)
    assert (cfg.epochs, cfg.eval_batch_size, cfg.amp, cfg.target_top1) == (2.5, 64, True, 90.0)
    assert cfg.lr == TrainConfig().lr  # not given: the default (or the recipe's) survives


def test_ema_update_averages_floats_and_copies_counters():
    """ema = d * ema + (1 - d) * w for every weight and floating buffer (BN running
    statistics); integer buffers (BN's batch counter) are copied."""
    from cnnlab.training.ema import EMA

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    ema = EMA(model, decay=0.75)
    ema.updates = 100  # past the warm-up: d = decay
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    model(torch.randn(4, 1, 5, 5))  # moves BN's running statistics and its counter
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model)
    now = model.state_dict()
    for k, v in ema.module.state_dict().items():
        if v.dtype.is_floating_point:
            assert torch.allclose(v, 0.75 * before[k] + 0.25 * now[k]), k
        else:
            assert torch.equal(v, now[k]), k
    assert int(ema.module[1].num_batches_tracked) == 1


def test_ema_decay_warms_up_and_resumes_with_its_count():
    """d = min(decay, (1 + t) / (10 + t)): a short run's average does not keep its random
    start (YOLO v1, 134 steps at --ema 0.99, kept 26% of it and scored 0% mAP); the count
    survives a checkpoint, and an older checkpoint (no count) goes on without a warm-up."""
    from cnnlab.training.ema import EMA

    model = nn.Linear(1, 1, bias=False)
    ema = EMA(model, decay=0.99)
    with torch.no_grad():
        ema.module.weight.fill_(0.0)  # the start
        model.weight.fill_(1.0)  # where training went at once
    decays = []
    for _ in range(134):
        decays.append(ema.current_decay())
        ema.update(model)
    assert decays[:3] == pytest.approx([1 / 10, 2 / 11, 3 / 12])
    assert decays[-1] == pytest.approx(134 / 143)
    assert 1 - float(ema.module.weight) < 1e-3  # the start's share; 0.99**134 = 0.26 before
    for _ in range(1000):
        ema.update(model)
    assert ema.current_decay() == 0.99  # warmed up: the decay asked for
    again = EMA(model, decay=0.5)
    again.load_state_dict(ema.state_dict())
    assert (again.updates, again.decay) == (1134, 0.99)
    legacy = {k: v for k, v in ema.state_dict().items() if k != "updates"}
    fresh = EMA(model, decay=0.99)
    fresh.load_state_dict(legacy)
    assert fresh.current_decay() == 0.99
