"""DDP over NCCL (CUDA only; benchmarks/gpu.sh runs these on a GPU machine, CPU-only CI skips
them). The gloo twin of the first test is test_train_ddp.py."""

import json
import os
import socket

import pytest
import torch
from test_train_ddp import ARGS

from cnnlab.cli import main

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.slow
@pytest.mark.skipif(GPUS < 2, reason="NCCL DDP across processes needs 2 CUDA GPUs")
def test_two_nccl_processes_match_one(tmp_path):
    runs = str(tmp_path)
    gpu = [*ARGS, "--device", "cuda", "--runs-dir", runs]
    assert main([*gpu, "--name", "one"]) == 0
    assert main([*gpu, "--name", "two", "--nproc", "2"]) == 0
    one = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["world_size"] == 2
    assert one["step"] == two["step"] == 11
    for k, v in one["model"].items():
        assert torch.allclose(v, two["model"][k], rtol=1e-4, atol=1e-5), k


@pytest.mark.skipif(GPUS < 1, reason="needs a CUDA GPU")
def test_nccl_group_and_ddp_step_on_one_gpu(monkeypatch):
    """What one GPU allows: an NCCL process group of one, an all-reduce, and a DDP step that
    equals the plain step."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from cnnlab.models import create

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setitem(os.environ, "MASTER_ADDR", "127.0.0.1")
    monkeypatch.setitem(os.environ, "MASTER_PORT", str(port))
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        assert dist.get_backend() == "nccl"
        t = torch.arange(4.0, device="cuda")
        dist.all_reduce(t)
        assert torch.equal(t.cpu(), torch.arange(4.0))
        torch.manual_seed(0)
        plain = create("lenet5").cuda()
        wrapped = create("lenet5").cuda()
        wrapped.load_state_dict(plain.state_dict())
        ddp = DDP(wrapped, device_ids=[0])
        x = torch.randn(8, 1, 32, 32, device="cuda")
        y = torch.randint(0, 10, (8,), device="cuda")
        for net in (plain, ddp):
            opt = torch.optim.SGD(net.parameters(), lr=0.1)
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        for a, b in zip(plain.parameters(), wrapped.parameters()):
            assert torch.allclose(a, b, atol=1e-6)
    finally:
        dist.destroy_process_group()
