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
