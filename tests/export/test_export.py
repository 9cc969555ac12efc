"""cnnlab export: ONNX (run back with onnxruntime at two batch sizes) and TorchScript equal
PyTorch within the stated tolerance for every zoo family; the input pipeline travels in the
metadata; bad inputs fail cleanly and write nothing; TensorBoard events are written and read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cnnlab.models as M
from cnnlab.errors import ConfigError, DataError
from cnnlab.export import ATOL, RTOL, ExportError, export_model, export_run, read_metadata

SRC = str(Path(__file__).resolve().parents[2] / "src")

# every zoo family at a small input (GoogLeNet in eval mode: its auxiliary heads are training-only)
SMALL = [
    ("lenet5", (1, 32, 32)),
    ("lenet5_1998", (1, 32, 32)),
    pytest.param("alexnet", (3, 63, 63), marks=pytest.mark.slow),  # 57 M parameters to write
    ("vgg11_cifar", (3, 32, 32)),  # VGG-11 (config A); vgg11's 224-input head is 129 M params
    ("vgg11_bn_cifar", (3, 32, 32)),
    ("nin_cifar", (3, 32, 32)),
    ("googlenet", (3, 32, 32)),
    ("resnet18", (3, 32, 32)),
    ("densenet121", (3, 32, 32)),
    ("cifar-fast-net", (3, 32, 32)),  # the recipe nets
    ("lecture_cnn", (1, 28, 28)),  # the experiments' nets
    ("lecture_resnet", (1, 16, 16)),
]


def _model(name):
    torch.manual_seed(0)
    m = M.create(name, num_classes=10)
    for mod in m.modules():  # non-trivial BN statistics, so eval mode really is tested
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    return m


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("name,size", SMALL)
def test_onnx_equals_pytorch_with_a_dynamic_batch(name, size, tmp_path):
    import onnxruntime as ort

    model = _model(name)
    rep = export_model(model, size, tmp_path / "m.onnx", "onnx", metadata={"mean": [0.5]})
    assert rep.max_abs_diff <= ATOL + RTOL  # checked at batch 1 and 3 inside export_model
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == "batch"  # a named, dynamic axis
    x = torch.randn(5, *size)  # a batch size the export never saw
    with torch.no_grad():
        ref = model.eval()(x)
    got = torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])
    assert got.shape == (5, 10)
    assert torch.allclose(got, ref, atol=ATOL, rtol=RTOL)
    assert read_metadata(tmp_path / "m.onnx")["mean"] == [0.5]


@pytest.mark.parametrize(
    "name,size", [SMALL[0], SMALL[6], SMALL[7]], ids=["lenet5", "googlenet", "resnet18"]
)
def test_torchscript_equals_pytorch(name, size, tmp_path):
    model = _model(name)
    export_model(model, size, tmp_path / "m.pt", "torchscript", metadata={"std": [0.25]})
    ts = torch.jit.load(str(tmp_path / "m.pt"))
    x = torch.randn(4, *size)
    with torch.no_grad():
        assert torch.allclose(ts(x), model.eval()(x), atol=ATOL, rtol=RTOL)
    assert read_metadata(tmp_path / "m.pt")["std"] == [0.25]


class FFTNet(torch.nn.Module):
    """A model with an op ONNX has no operator for (aten::fft_rfft2)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 8 * 5, 4)

    def forward(self, x):
        return self.fc(torch.fft.rfft2(x).abs().flatten(1))


def test_adaptive_pool_replacement_is_exact():
    from cnnlab.export import _AdaptivePoolAsMatmul

    for n, m in ((1, 7), (5, 3), (13, 6), (7, 7)):
        x = torch.randn(2, 3, n, n + 1)
        ref = torch.nn.functional.adaptive_avg_pool2d(x, (m, m))
        assert torch.allclose(_AdaptivePoolAsMatmul((n, n + 1), (m, m))(x), ref, atol=1e-6)


def test_unsupported_op_is_a_clear_error_and_writes_nothing(tmp_path):
    with pytest.raises(ExportError, match="fft_rfft2"):
        export_model(FFTNet(), (3, 8, 8), tmp_path / "f.onnx", "onnx")
    assert list(tmp_path.iterdir()) == []  # no file, no temp file


def test_disagreeing_export_is_refused(tmp_path, monkeypatch):
    import cnnlab.export as E

    real = E._run_onnx
    monkeypatch.setattr(E, "_run_onnx", lambda blob, x: real(blob, x) + 1e-2)
    with pytest.raises(ExportError, match="differ from PyTorch"):
        export_model(_model("lenet5"), (1, 32, 32), tmp_path / "m.onnx", "onnx")
    assert list(tmp_path.iterdir()) == []


def test_missing_onnx_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ConfigError, match="needs the onnx and onnxruntime") as e:
        export_model(_model("lenet5"), (1, 32, 32), tmp_path / "m.onnx", "onnx")
    assert "cnnlab[export]" in e.value.hint and not (tmp_path / "m.onnx").exists()


def test_bad_format_and_missing_sources(tmp_path):
    with pytest.raises(ConfigError, match="unknown export format"):
        export_model(_model("lenet5"), (1, 32, 32), tmp_path / "m.x", "tflite")
    with pytest.raises(DataError, match="does not exist"):
        export_run(tmp_path / "nope", tmp_path / "m.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no checkpoint"):
        export_run(tmp_path / "empty", tmp_path / "m.onnx")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError):
        export_run(tmp_path / "junk.pt", tmp_path / "m.onnx")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real run folder: LeNet-5, one short epoch on part of the built-in digits."""
    from cnnlab.data import load_dataset
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.trainer import train

    root = tmp_path_factory.mktemp("runs")
    ds = load_dataset("digits")
    tr, ev = ds.subset(slice(0, 256)), ds.subset(slice(256, 320))
    cfg = TrainConfig(model="lenet5", data="digits", epochs=2, batch_size=64, lr=0.05,
                      runs_dir=str(root), name="lenet", threads=1, quiet=True, plots=False,
                      preprocess="standardize")  # fmt: skip
    res = train(cfg, train_set=tr, eval_set=ev, progress=False)
    return res.run_dir


def test_run_export_carries_the_pipeline(trained_run, tmp_path):
    from cnnlab.training.inference import load_trained

    rep = export_run(trained_run, tmp_path / "lenet.onnx")
    meta = read_metadata(tmp_path / "lenet.onnx")
    pipe = load_trained(trained_run / "best.pt").pipeline
    assert meta["mean"] == pytest.approx(pipe.pre.mean.tolist())
    assert meta["std"] == pytest.approx(pipe.pre.std.tolist())
    assert meta["cnnlab.preprocess"] == "standardize"
    assert meta["cnnlab.classes"] == [str(i) for i in range(10)]
    assert rep.input_size == (1, 32, 32)
    # the metadata is enough to reproduce cnnlab's prediction from raw pixels
    import onnxruntime as ort

    trained = load_trained(trained_run / "best.pt")
    raw = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    mean = torch.tensor(meta["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(meta["std"]).view(1, -1, 1, 1)
    x = ((raw.float() / 255 - mean) / std).numpy()
    sess = ort.InferenceSession(str(tmp_path / "lenet.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = trained.model(trained.pipeline(raw))
    assert torch.allclose(torch.from_numpy(sess.run(None, {"input": x})[0]), ref, atol=1e-4)


def _cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True,
                          text=True, env=env, cwd=cwd)  # fmt: skip


def test_cli_exports_a_run_folder_and_refuses_bad_input(trained_run, tmp_path):
    r = _cli("export", str(trained_run), "--format", "torchscript", "-o", str(tmp_path / "l.pt"))
    assert r.returncode == 0, r.stderr
    assert "within |d| <= 0.0001 + 0.001*|y|" in r.stdout
    assert read_metadata(tmp_path / "l.pt")["cnnlab.model"] == "lenet5"
    # a model with an unsupported op, given as file.py:factory
    (tmp_path / "net.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.fft.rfft2(x).abs().flatten(1)\n"
    )
    r = _cli("export", f"{tmp_path / 'net.py'}:Net", "--input", "3x8x8", "-o",
             str(tmp_path / "n.onnx"))  # fmt: skip
    assert r.returncode == 2 and "cannot export this model" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "n.onnx").exists()
    from cnnlab.cli import main

    assert main(["export", str(tmp_path / "missing-run"), "-o", str(tmp_path / "m.onnx")]) == 2
    assert main(["export", "lenet5", "--input", "1x32", "-o", str(tmp_path / "m.onnx")]) == 2
    assert not (tmp_path / "m.onnx").exists()


def test_vgg11_head_pool_on_a_small_input(tmp_path):
    """vgg11 at 32x32 pools 1x1 -> 7x7 before its FC head: exported through the matmul pool.
    (With a narrow head: its real 25088 x 4096 fc6 would take 400 MB and ~40 s to write.)"""
    model = _model("vgg11")
    model.classifier = torch.nn.Linear(512 * 7 * 7, 10)
    export_model(model, (3, 32, 32), tmp_path / "v.onnx", "onnx")


def test_tensorboard_events_are_written_and_read_back(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trained_run / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train_loss", "val_top1", "lr"} <= set(tags)
    loss = acc.Scalars("train_loss")
    assert [e.step for e in loss] == [1, 2]  # one point per epoch
    import json

    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [e.value for e in loss] == pytest.approx([r["train_loss"] for r in rows], rel=1e-6)
