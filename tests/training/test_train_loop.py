"""The trainer end to end on tiny generated data: run folder, exact resume, Ctrl-C, NaN stop."""

import json
import math
import shutil

import pytest
import torch
import torch.nn.functional as F
import yaml

from cnnlab.errors import ConfigError, TrainingDiverged
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.tasks import classification_loss
from cnnlab.training.trainer import train


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_summary_counts_a_fractional_run_in_epochs_trained(tmp_path, bars, tiny_config):
    tr, _ = bars  # 173 training images less the hold-out: 5 steps of 32 an epoch
    s = train(tiny_config(tmp_path, epochs=1.5), train_set=tr).summary
    assert s["steps"] == 8 and s["epochs"] == 2  # round(1.5 * 5) steps, in a second epoch
    assert s["epochs_trained"] == 1.6  # 8 / 5, what the summary table shows


def test_run_folder_and_summary_schema(tmp_path, bars, tiny_config):
    tr, te = bars
    res = train(tiny_config(tmp_path, epochs=2, plots=True), train_set=tr, test_set=te)
    d = res.run_dir
    assert res.status == "completed"
    for f in ["config.yaml", "metrics.csv", "metrics.jsonl", "last.pt", "best.pt", "loss.png",
              "accuracy.png", "confusion.csv", "confusion.png", "per_class.csv",
              "summary.json"]:  # fmt: skip
        assert (d / f).is_file(), f
    assert not list(d.glob("*.sha256")) and not list(d.glob(".*.tmp"))  # checksum inside
    s = json.loads((d / "summary.json").read_text())
    assert {"model", "dataset", "epochs", "wall_seconds", "validation", "test", "best"} <= s.keys()
    assert {"top1", "top5", "loss", "n", "weights"} <= set(s["test"])
    assert set(s["best"]) == {"epoch", "top1"} and s["validation"]["epoch"] == 2
    assert s["model"] == "lenet5" and s["dataset"] == "bars" and s["epochs"] == 2
    assert s["epochs_trained"] == 2.0
    assert s["splits"] == {"train": {"name": "bars[train]", "images": 173},
                           "validation": {"name": "bars[val]", "images": 19},
                           "test": {"name": "bars", "images": 64}}  # fmt: skip
    assert s["test"]["top1"] > 50 and s["test"]["n"] == 64  # the bars are learnable
    rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert (d / "metrics.csv").read_text().splitlines()[0].startswith("epoch,step,lr,")
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    assert cfg["model"] == "lenet5" and cfg["epochs"] == 2
    ck = torch.load(d / "last.pt", weights_only=True)
    assert {"model", "optimizer", "pipeline", "epoch", "rng", "config", "classes"} <= ck.keys()
    assert ck["classes"] == ["c0", "c1", "c2", "c3"] and ck["epoch"] == 2
    conf = (d / "confusion.csv").read_text().splitlines()
    assert len(conf) == 5 and sum(int(v) for r in conf[1:] for v in r.split(",")[1:]) == 64


def test_resume_after_interrupt_is_bit_exact(tmp_path, bars, tiny_config):
    """2 epochs straight == interrupted (mid-epoch and at an epoch end) + --resume, with random
    augmentation and mixup in play (their draws must repeat after the resume)."""
    tr, te = bars
    cfg = tiny_config(tmp_path, epochs=2, label_smoothing=0.1, l1=1e-5, ema=0.9,
                      augment="flip-crop,mixup=0.2")  # fmt: skip
    straight = train(cfg.replace(name="straight"), train_set=tr, eval_set=te)
    ref = load_checkpoint(straight.run_dir / "last.pt")

    for stop_at in (3, 6):  # 6 steps per epoch: mid-epoch 1, and the end of epoch 1

        def interrupt(st, stop_at=stop_at):
            if st.step == stop_at:
                raise KeyboardInterrupt

        name = f"cut{stop_at}"
        cut = train(cfg.replace(name=name), train_set=tr, eval_set=te, callbacks=[interrupt])
        assert cut.status == "interrupted" and "--resume" in cut.message
        assert load_checkpoint(cut.run_dir / "last.pt")["step"] == stop_at
        resumed = train(cfg, train_set=tr, eval_set=te, resume=cut.run_dir)
        assert resumed.status == "completed"
        got = load_checkpoint(resumed.run_dir / "last.pt")
        assert got["step"] == ref["step"] == 12
        assert _same_weights(got["model"], ref["model"]), f"weights differ (cut at {stop_at})"
        assert _same_weights(got["ema"]["module"], ref["ema"]["module"])
        mom = [s["momentum_buffer"] for s in got["optimizer"]["state"].values()]
        ref_mom = [s["momentum_buffer"] for s in ref["optimizer"]["state"].values()]
        assert all(torch.equal(a, b) for a, b in zip(mom, ref_mom))


def test_ctrl_c_saves_last_and_reports(tmp_path, bars, tiny_config):
    tr, te = bars

    def ctrl_c(st):
        if st.step == 2:
            raise KeyboardInterrupt

    res = train(tiny_config(tmp_path), train_set=tr, eval_set=te, callbacks=[ctrl_c])
    assert res.status == "interrupted"
    ck = load_checkpoint(res.run_dir / "last.pt")
    assert (ck["epoch"], ck["batch_in_epoch"], ck["step"]) == (0, 2, 2)
    assert f"cnnlab train --resume {res.run_dir}" in res.message
    assert json.loads((res.run_dir / "summary.json").read_text())["status"] == "interrupted"


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, bars, tiny_config):
    tr, te = bars
    good = {}

    def poison(st):  # after epoch 1 (6 steps) break the weights: the next loss is NaN
        if st.step == 6:
            good.update({k: v.clone() for k, v in st.model.state_dict().items()})
        if st.step == 7:
            with torch.no_grad():
                st.model.features[0].weight.fill_(math.nan)

    res = train(tiny_config(tmp_path, epochs=3), train_set=tr, eval_set=te, callbacks=[poison])
    assert res.status == "diverged"
    assert "nan at step 8" in res.message and "learning rate" in res.message
    assert "kept the last good checkpoint" in res.message
    assert "\nhint: lower --lr, add --warmup" in res.message  # the fix, as every error has
    ck = load_checkpoint(res.run_dir / "last.pt")  # checksum verified
    assert ck["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert _same_weights(ck["model"], good)


def test_a_finite_blow_up_stops_the_run_too(tmp_path, bars, tiny_config):
    """Weights blown up to huge finite values give a huge finite loss and then a dead net
    (constant outputs): stopped as diverged, not "completed" at chance accuracy."""
    tr, te = bars

    def blow_up(st):
        if st.step == 7:
            with torch.no_grad():
                st.model.classifier[-1].weight.mul_(1e6)

    res = train(tiny_config(tmp_path, epochs=3), train_set=tr, eval_set=te, callbacks=[blow_up])
    assert res.status == "diverged"
    assert "over 1000x its first value" in res.message and "learning rate" in res.message
    assert load_checkpoint(res.run_dir / "last.pt")["epoch"] == 1  # the last good one kept


def test_check_finite_passes_ordinary_spikes():
    from cnnlab.training.trainer import check_finite

    pending = [(0, 0.1, torch.tensor(2.3)), (1, 0.1, torch.tensor(40.0))]
    check_finite(pending, first=2.3)  # 17x the first loss: a bad batch, not a blow-up
    assert pending == []
    with pytest.raises(TrainingDiverged, match="over 1000x"):
        check_finite([(5, 0.1, torch.tensor(2.4e3))], first=2.3)


def test_aux_losses_weighted():
    torch.manual_seed(0)
    main, a1, a2 = torch.randn(3, 8, 5).unbind(0)
    y = torch.randint(0, 5, (8,))
    loss, logits = classification_loss((main, a1, a2), y, label_smoothing=0.0, aux_w=0.3)
    want = F.cross_entropy(main, y) + 0.3 * (F.cross_entropy(a1, y) + F.cross_entropy(a2, y))
    assert torch.allclose(loss, want) and logits is main
    plain, _ = classification_loss(main, y, label_smoothing=0.1, aux_w=0.3)
    assert torch.allclose(plain, F.cross_entropy(main, y, label_smoothing=0.1))


def test_googlenet_aux_weight_comes_from_the_zoo():
    from cnnlab.models.googlenet import AUX_LOSS_WEIGHT
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.tasks import aux_weight

    assert aux_weight(TrainConfig()) == AUX_LOSS_WEIGHT == 0.3
    assert aux_weight(TrainConfig(aux_weight=0.5)) == 0.5


def test_holdout_when_only_a_training_set_is_given(tmp_path, bars, tiny_config):
    tr, _ = bars
    res = train(tiny_config(tmp_path, epochs=1, val_fraction=0.25), train_set=tr)
    assert res.final is None and res.summary["test"] is None  # no test split given
    assert res.summary["splits"]["validation"] == {"name": "bars[val]", "images": 48}
    assert res.summary["splits"]["train"]["images"] == 144  # 25% held out, never trained on


def test_a_diverged_run_exits_2_with_the_fix_named(tmp_path):
    # exit 2, as every error the user fixes by changing a setting (and as the scratch engine)
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "cnnlab",
        "train",
        "lenet5",
        "--data",
        "digits",
        "--lr",
        "1e4",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--quiet",
        "--no-plots",
        "--runs-dir",
        str(tmp_path),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr[-1500:]
    # lr 1e4 blows the loss up (finite, over 1000x its first value) before it reaches NaN
    assert "the loss reached" in r.stderr and "over 1000x its first value" in r.stderr
    assert "hint: lower --lr" in r.stderr
    assert "--recipe demo" in r.stderr  # the recipe measured for lenet5 on digits
    again = [*cmd, "--recipe", "demo", "--name", "again"]
    r = subprocess.run(again, capture_output=True, text=True)
    assert r.returncode == 2 and "--recipe demo" not in r.stderr  # it used one already
    assert "Traceback" not in r.stderr


def test_bf16_on_a_cpu_without_it_says_so(tmp_path, bars, tiny_config, monkeypatch, capsys):
    """bf16 autocast is emulated on CPUs without AMX / AVX512-BF16: the run says so and names
    --no-amp; on CPUs that have it, nothing is said."""
    import cnnlab.training.trainer as trainer

    tr, te = bars
    for fast in (False, True):
        monkeypatch.setattr(trainer, "cpu_has_fast_bf16", lambda fast=fast: fast)
        cfg = tiny_config(tmp_path, epochs=0.1, amp=True, name=f"amp{fast}", quiet=False)
        train(cfg, train_set=tr, test_set=te)
        out = capsys.readouterr()
        assert ("--no-amp" in out.out + out.err) is not fast


def test_a_budget_run_trains_until_its_time_is_spent_and_resumes_on_its_clock(
    tmp_path, bars, tiny_config, monkeypatch
):
    """--budget-min: every step costs 0.5 s of a fake clock; 6 s of budget, less the time kept
    for the test pass (64 images at 3x the 64 images/s trained), fits 12 steps -- two epochs,
    though the config says half of one -- and the one-cycle decay ends with the budget. Cut
    at step 4 and resumed, the run goes on from the 2 s already spent and ends at the same
    step."""
    import time as time_module

    clock = [1000.0]
    monkeypatch.setattr(time_module, "perf_counter", lambda: clock[0])

    def tick(st):
        clock[0] += 0.5

    tr, te = bars
    cfg = tiny_config(tmp_path, epochs=0.5, budget_min=0.1, schedule="onecycle", warmup=0.5,
                      val_fraction=0.0)  # fmt: skip
    res = train(cfg, train_set=tr, test_set=te, callbacks=[tick])
    assert res.status == "completed" and res.summary["steps"] == 12
    assert [r["epoch"] for r in res.history] == [1, 2]
    lrs = [r["lr"] for r in res.history]
    assert lrs[0] > lrs[1] and lrs[1] < 0.01 * cfg.lr  # decayed to ~0 as the budget ran out
    assert res.summary["test"] is not None
    meta = load_checkpoint(res.run_dir / "last.pt")["schedule"]
    assert meta == {"name": "onecycle", "total_steps": None, "budget_min": 0.1}

    def cut(st):
        tick(st)
        if st.step == 4:
            raise KeyboardInterrupt

    first = train(cfg.replace(name="cut"), train_set=tr, test_set=te, callbacks=[cut])
    assert first.status == "interrupted"
    resumed = train(cfg.replace(name="cut"), train_set=tr, test_set=te, callbacks=[tick],
                    resume=first.run_dir)  # fmt: skip
    assert resumed.status == "completed" and resumed.summary["steps"] == 12
    again = train(cfg, train_set=tr, test_set=te, callbacks=[tick], resume=res.run_dir)
    assert again.summary["steps"] == 12  # its budget was spent: no step, and no empty epoch
    assert [r["epoch"] for r in again.history] == [1, 2]


def test_a_budget_spent_before_the_first_step_is_an_error_not_a_score(tmp_path, bars,
                                                                        tiny_config):  # fmt: skip
    """A budget smaller than the set-up would end a 0-step "completed" run and score the
    random weights on test; it is an error that says so (and nothing is scored)."""
    tr, te = bars
    cfg = tiny_config(tmp_path, budget_min=1e-7)  # 6 microseconds
    with pytest.raises(ConfigError, match="ran out before the first training step") as e:
        train(cfg, train_set=tr, test_set=te)
    assert "--epochs" in e.value.hint
    assert not list((tmp_path / "runs").glob("*/summary.json"))


def test_a_batch_larger_than_what_validation_left_names_val_fraction(tmp_path, bars,
                                                                     tiny_config):  # fmt: skip
    tr, te = bars
    with pytest.raises(ConfigError, match="left after --val-fraction 0.9") as e:
        train(tiny_config(tmp_path, val_fraction=0.9), train_set=tr, test_set=te)
    assert "--val-fraction" in e.value.hint


def test_a_negative_budget_is_refused_naming_the_flag(tmp_path, tiny_config):
    with pytest.raises(ConfigError, match="--budget-min must be >= 0, got -1"):
        tiny_config(tmp_path, budget_min=-1.0).validate()


def test_weights_that_do_not_fit_the_model_are_a_clear_error(tmp_path, bars, tiny_config, capsys):
    """A checkpoint whose weights do not fit the model this cnnlab builds (another version,
    other model options) is a DataError naming the tensors that differ and who wrote it --
    for eval/predict (load_trained), the CLI (exit 2, no traceback) and --resume."""
    from cnnlab.cli import main
    from cnnlab.errors import DataError
    from cnnlab.training.checkpoint import save_checkpoint
    from cnnlab.training.inference import load_trained

    tr, te = bars
    cfg = tiny_config(tmp_path, epochs=1, ema=0.9)
    run = train(cfg, train_set=tr, eval_set=te).run_dir
    state = load_checkpoint(run / "last.pt")
    assert state["written_by"].startswith("cnnlab ")
    del state["model"]["classifier.4.bias"]  # as if an older version had no such tensor
    state["model"]["classifier.4.weight"] = torch.zeros(4, 99)
    state["ema"]["module"] = dict(state["model"])
    bad = save_checkpoint(state, run / "odd.pt")  # a valid checksum: only the weights are odd
    with pytest.raises(DataError) as e:
        load_trained(bad, ema=False)
    msg = str(e.value)
    assert "weights do not fit 'lenet5'" in msg and "written by cnnlab" in msg
    assert "'classifier.4.weight' has shape (4, 99) in the file but (4, 84)" in msg
    assert "(and 1 more)" in msg  # the missing bias
    capsys.readouterr()
    assert main(["eval", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "do not fit 'lenet5'" in err and "Traceback" not in err
    shutil.copy(bad, run / "last.pt")
    with pytest.raises(DataError, match="'classifier.4.weight' has shape"):
        train(cfg, train_set=tr, eval_set=te, resume=run / "last.pt")


def test_a_run_keeps_the_import_heap_out_of_the_collector(tmp_path, bars, tiny_config):
    import gc

    tr, te = bars
    before, during = gc.get_freeze_count(), []
    train(tiny_config(tmp_path, epochs=1), train_set=tr, eval_set=te,
          callbacks=[lambda st: during.append(gc.get_freeze_count())])  # fmt: skip
    assert during and min(during) > before  # frozen for every step
    assert gc.get_freeze_count() == before
