"""Learning-rate schedules with linear warm-up: the lr at step k."""

import math

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.training.schedule import Schedule


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
