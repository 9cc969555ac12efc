"""benchmarks/gpu.sh --dry-run on the CPU: every step starts and the results file is written
(what the GPU run will measure is not checked here: no GPU in CI)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"
STEPS = (
    "0. environment",
    "1. CUDA test",
    "2. CIFAR-10: cnnlab cifar-fast vs airbench94",
    "3. DDP over NCCL",
    "4. ResNet-50 training throughput",
)


@pytest.mark.slow
def test_dry_run_starts_every_step_and_writes_the_results(tmp_path):
    out = tmp_path / "gpu.md"
    r = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--python", sys.executable, "--out", str(out)],
        capture_output=True, text=True, timeout=400, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr + (out.read_text() if out.exists() else "")
    text = out.read_text()
    assert "DRY RUN on the CPU" in text and "every step passed" in text
    for name in STEPS:
        line = next(x for x in text.splitlines() if x.startswith(f"## {name}"))
        body = text.split(line, 1)[1]
        assert ": ok, " in body.splitlines()[2], (name, body[:300])
    assert "1 test collected" in text and "2 tests collected" in text  # the GPU tests exist
    assert "- cnnlab cifar-fast (8/16/16):" in text  # the recipe trained (toy size)
    assert "airbench94:" in text and "images/s" in text
    assert not list(tmp_path.glob("*.tmp"))  # written whole


def test_unknown_option_is_refused(tmp_path):
    r = subprocess.run(["bash", str(SCRIPT), "--gpus", "2"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option --gpus" in r.stderr
    assert "Traceback" not in r.stderr


def test_gpu_bench_without_a_gpu_says_so():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the refusal path cannot be reached")
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "resnet50"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "no CUDA GPU visible (use --dry-run" in r.stderr
