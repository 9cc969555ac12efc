"""DDP on the CPU: 2 gloo processes (torchrun, via `cnnlab train --nproc 2`) end with the
weights of one process that trains on the same global batch.

LeNet-5 has no batch norm and no dropout and augmentation is off: with BN each process would
normalise with its own half-batch statistics (SyncBN would be needed for equality), so the
equivalence is exact only up to the order of the gradient all-reduce (allclose, not equal).
"""

import json

import pytest
import torch

from cnnlab.cli import main

ARGS = [
    "train",
    "lenet5",
    "--data",
    "digits",
    "--epochs",
    "0.5",
    "--batch-size",
    "64",
    "--lr",
    "0.05",
    "--augment",
    "none",
    "--deterministic",
    "--threads",
    "1",
    "--quiet",
]


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    runs = str(tmp_path)
    assert main([*ARGS, "--runs-dir", runs, "--name", "one"]) == 0
    assert main([*ARGS, "--runs-dir", runs, "--name", "two", "--nproc", "2"]) == 0
    one = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["world_size"] == 2
    assert one["step"] == two["step"] == 10  # (1,438 - 144 held out) // 64 = 20 steps an epoch
    for k, v in one["model"].items():
        assert torch.allclose(v, two["model"][k], rtol=1e-4, atol=1e-6), k
    # and the steps really moved the weights (the comparison is not between two inits)
    from cnnlab.models import create

    torch.manual_seed(0)
    assert not torch.allclose(
        one["model"]["features.0.weight"], create("lenet5").features[0].weight
    )


@pytest.mark.slow
def test_a_budget_run_in_two_processes_stops_them_together(tmp_path):
    """--budget-min with --nproc 2: rank 0's clock decides for both (its progress broadcast
    every step), so both processes take the same steps and the run ends, on time, with one
    summary; a process that stopped alone would leave the other waiting in its all-reduce
    (the subprocess's timeout turns such a hang into a failure)."""
    import os
    import signal
    import subprocess
    import sys

    args = [a for a in ARGS if a != "--deterministic"]
    i = args.index("--epochs")
    del args[i : i + 2]
    cmd = [sys.executable, "-m", "cnnlab", *args, "--budget-min", "0.1", "--val-fraction", "0.1",
           "--runs-dir", str(tmp_path), "--name", "budget", "--nproc", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        assert proc.wait(timeout=240) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    s = json.loads((tmp_path / "budget" / "summary.json").read_text())
    assert s["world_size"] == 2 and s["status"] == "completed" and s["steps"] > 0
    assert s["wall_seconds"] < 6 + 10  # the 6 s budget, plus the final evaluations' slack
    last = torch.load(tmp_path / "budget" / "last.pt", weights_only=True)
    assert last["step"] == s["steps"] and last["schedule"]["budget_min"] == 0.1
