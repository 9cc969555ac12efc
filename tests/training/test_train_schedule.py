"""Learning-rate schedules with linear warm-up: the lr at step k."""

import math

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.training.schedule import Budget, Schedule


def test_warmup_is_linear_then_cosine():
    s = Schedule("cosine", total_steps=110, warmup_steps=10)
    assert [round(s.factor(k), 6) for k in range(3)] == [0.1, 0.2, 0.3]
    assert s.factor(9) == pytest.approx(1.0)
    assert s.factor(10) == pytest.approx(1.0)  # first step after warm-up: the peak
    assert s.factor(60) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.factor(109) == pytest.approx(0.5 * (1 + math.cos(math.pi * 99 / 100)))


def test_step_schedule_divides_by_ten_at_milestones():
    s = Schedule("step", total_steps=100, warmup_steps=0, gamma=0.1, milestones=(0.5, 0.75))
    assert s.factor(49) == 1.0
    assert s.factor(50) == pytest.approx(0.1)
    assert s.factor(75) == pytest.approx(0.01)


def test_onecycle_ramps_up_then_down_to_final():
    s = Schedule("onecycle", total_steps=20, warmup_steps=5, final=0.05)
    assert s.factor(0) == pytest.approx(0.2)
    assert s.factor(4) == pytest.approx(1.0)
    assert s.factor(5) == pytest.approx(1.0)
    assert s.factor(20) == pytest.approx(0.05)
    assert s.factor(12) < s.factor(8)


def test_apply_sets_each_group_from_its_base_lr():
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p1], "lr": 0.1, "base_lr": 0.1},
                           {"params": [p2], "lr": 0.01, "base_lr": 0.01}], lr=0.1)  # fmt: skip
    Schedule("constant", total_steps=10, warmup_steps=4).apply(opt, 1)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.005])


def test_unknown_schedule_suggests():
    with pytest.raises(ConfigError, match="cosine"):
        Schedule("cosin", total_steps=10)


def test_progress_replaces_the_step_count_after_the_warm_up():
    s = Schedule("onecycle", total_steps=20, warmup_steps=5, final=0.0)
    assert s.factor(2, progress=0.9) == pytest.approx(0.6)  # the warm-up still counts steps
    assert s.factor(7, progress=0.25) == pytest.approx(0.75)  # then the budget's share spent
    assert s.factor(7, progress=1.7) == pytest.approx(0.0)  # clipped at the end
    assert s.factor(7) == pytest.approx(1 - 2 / 15)  # without progress: steps, as before


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_budget_counts_from_its_start_and_earlier_processes(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("cnnlab.training.schedule.time.perf_counter", clock)
    b = Budget(60, eval_images=0, spent_before=20.0, started=90.0)
    assert b.spent() == pytest.approx(30.0)  # 20 s before this process, 10 s in it
    assert b.progress() == pytest.approx(0.5) and not b.done()
    clock.now = 130.0
    assert b.done()


def test_budget_keeps_time_for_the_evaluations_at_the_measured_rate(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("cnnlab.training.schedule.time.perf_counter", clock)
    b = Budget(100, eval_images=3000, started=100.0)
    assert b.reserve() == 0.0  # nothing measured yet
    clock.now = 110.0
    b.trained(1000)  # 100 training images/s -> a forward pass at ~300 images/s
    assert b.reserve() == pytest.approx(10.0)
    assert b.progress() == pytest.approx(10 / 90)
    clock.now = 190.0
    assert b.done()  # 90 s trained + 10 s kept for the 3000 evaluation images
