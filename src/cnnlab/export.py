"""Models that leave cnnlab: ONNX (checked with onnxruntime) and TorchScript.

The exported graph is the bare network: it takes the *normalised* float input at the model's
size, ``[N, C, H, W]`` with a dynamic batch ``N``, and returns the logits. How a raw image
becomes that input is written beside the graph (ONNX ``metadata_props``, a ``cnnlab.json`` extra
file in TorchScript): pixels scaled to [0, 1], the preprocessing mode, the per-channel ``mean``
and ``std`` fitted on the training set (in [0, 1] units), the data and model sizes, and the
class names. So ``(x / 255 - mean) / std`` in any runtime feeds the graph what cnnlab's
:class:`~cnnlab.training.pipeline.InputPipeline` would.

Every export is checked before it is kept: the file is loaded back (onnxruntime for ONNX) and
run on random inputs at two batch sizes; its outputs must equal PyTorch's within
``|exported - torch| <= ATOL + RTOL * |torch|`` (float32 kernels sum in different orders). A
file that fails the check, or a model with an op the format cannot express, is never written.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnlab._util import atomic_write
from cnnlab.errors import CnnlabError, ConfigError, DataError

FORMATS = ("onnx", "torchscript")
ATOL, RTOL = 1e-4, 1e-3  # the stated tolerance of the output check
CHECK_BATCHES = (1, 3)  # two batch sizes: the ONNX batch axis really is dynamic
OPSET = 17

__all__ = ["ATOL", "FORMATS", "RTOL", "ExportError", "ExportReport", "export_model", "export_run"]


class ExportError(CnnlabError):
    """The model cannot be written in the asked format, or the written file disagrees."""


@dataclass
class ExportReport:
    path: Path
    format: str
    input_size: tuple[int, int, int]
    max_abs_diff: float  # largest |exported - torch| over the checked batches
    batches: tuple[int, ...] = CHECK_BATCHES
    metadata: dict = field(default_factory=dict)

    def describe(self) -> str:
        c, h, w = self.input_size
        return (
            f"wrote {self.path} ({self.format}, input [N, {c}, {h}, {w}], dynamic N); outputs "
            f"equal PyTorch's within |d| <= {ATOL:g} + {RTOL:g}*|y| at batch sizes "
            f"{', '.join(map(str, self.batches))} (max |d| = {self.max_abs_diff:.2e})"
        )


def _logits(out):
    return out[0] if isinstance(out, (tuple, list)) else out


class _Logits(nn.Module):
    """A model whose forward returns ``(logits, aux...)`` reduced to its logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return _logits(self.model(x))


def _unsupported(e: Exception) -> ExportError:
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    return ExportError(
        f"cannot export this model: {first}",
        "that op has no equivalent in the format; replace it in the model (or try the other "
        "--format)",
    )


class _AdaptivePoolAsMatmul(nn.Module):
    """``AdaptiveAvgPool2d`` for one fixed input size as two matrix products, ``P_h x P_w^T``
    with torch's bins (start = floor(i*n/m), end = ceil((i+1)*n/m)). ONNX's exporter handles
    only output sizes that divide the input; VGG or AlexNet on a small input pool 1x1 -> 7x7."""

    def __init__(self, in_hw, out_hw):
        super().__init__()
        self.register_buffer("ph", self._bins(in_hw[0], out_hw[0]))
        self.register_buffer("pw", self._bins(in_hw[1], out_hw[1]))

    @staticmethod
    def _bins(n: int, m: int) -> torch.Tensor:
        p = torch.zeros(m, n)
        for i in range(m):
            a, b = (i * n) // m, -((-(i + 1) * n) // m)
            p[i, a:b] = 1.0 / (b - a)
        return p

    def forward(self, x):
        return self.ph @ x @ self.pw.T


def _exportable_pools(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """A copy of ``model`` whose adaptive average pools that ONNX cannot express at this input
    size are replaced by :class:`_AdaptivePoolAsMatmul` (the same numbers)."""
    import copy

    seen = {}

    def record(m, i, o):  # (returns None: a hook's return value would replace the output)
        seen.setdefault(m, (tuple(i[0].shape[-2:]), tuple(o.shape[-2:])))

    hooks = [m.register_forward_hook(record) for m in model.modules()
             if isinstance(m, nn.AdaptiveAvgPool2d)]  # fmt: skip
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    bad = {m for m, (i, o) in seen.items() if i[0] % o[0] or i[1] % o[1]}
    if not bad:
        return model
    memo = {id(m): _AdaptivePoolAsMatmul(*seen[m]) for m in bad}
    return copy.deepcopy(model, memo)


def _need_onnx():
    """onnx and onnxruntime, or a clear error: they are the ``export`` extra, not required."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "--format onnx needs the onnx and onnxruntime packages",
            "pip install 'cnnlab[export]' (or use --format torchscript)",
        ) from None
    return onnx, onnxruntime


def _write_onnx(model: nn.Module, x: torch.Tensor, metadata: dict) -> bytes:
    onnx, _ = _need_onnx()

    model = _exportable_pools(model, x)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notes
        try:
            # the TorchScript-based exporter: ~20x faster here than the dynamo one
            torch.onnx.export(model, (x,), buf, dynamo=False, do_constant_folding=True,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                              opset_version=OPSET)  # fmt: skip
        except (torch.onnx.errors.OnnxExporterError, RuntimeError) as e:
            raise _unsupported(e) from None
    proto = onnx.load_from_string(buf.getvalue())
    for k, v in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v if isinstance(v, str) else json.dumps(v)
    return proto.SerializeToString()


def _run_onnx(blob: bytes, x: torch.Tensor):
    _, ort = _need_onnx()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
    return torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])


def _write_torchscript(model: nn.Module, x: torch.Tensor, metadata: dict) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ts = torch.jit.trace(model, (x,), check_trace=False)
        except Exception as e:  # an untraceable op or data-dependent control flow
            raise _unsupported(e) from None
        buf = io.BytesIO()
        torch.jit.save(ts, buf, _extra_files={"cnnlab.json": json.dumps(metadata)})
    return buf.getvalue()


def _run_torchscript(blob: bytes, x: torch.Tensor):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = torch.jit.load(io.BytesIO(blob), map_location="cpu")
    with torch.no_grad():
        return ts(x)


def read_metadata(path: str | Path) -> dict:
    """The cnnlab metadata of an exported file (ONNX or TorchScript), values JSON-decoded."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnx

        props = {
            p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props
        }
        out = {}
        for k, v in props.items():
            try:
                out[k] = json.loads(v)
            except json.JSONDecodeError:
                out[k] = v
        return out
    extra = {"cnnlab.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra["cnnlab.json"] or "{}")


# File name endings that say a format. Any other ending (or none) is written as asked, as
# before; an ending naming the *other* format is refused: read_metadata and other tools pick
# the reader by the ending, so an ONNX file named .pt would be opened as TorchScript.
SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth", ".ts")}
_NAMED = {"onnx": "an ONNX", "torchscript": "a TorchScript"}


def _check_suffix(path: Path, fmt: str) -> None:
    suffix = path.suffix.lower()
    for other, endings in SUFFIXES.items():
        if other != fmt and suffix in endings:
            raise ConfigError(
                f"{path.name} names {_NAMED[other]} file, but the format is {fmt}",
                f"name the file {path.with_suffix(SUFFIXES[fmt][0]).name}, "
                f"or give --format {other}",
            )


def export_model(
    model: nn.Module,
    input_size,
    path: str | Path,
    fmt: str = "onnx",
    *,
    metadata: dict | None = None,
    seed: int = 0,
) -> ExportReport:
    """Export ``model`` (put in eval mode, on the CPU) for inputs ``[N, *input_size]`` and check
    the written file against PyTorch at two batch sizes; raise :class:`ExportError` otherwise."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}", f"choose one of: {', '.join(FORMATS)}")
    path = Path(path)
    _check_suffix(path, fmt)
    c, h, w = (int(v) for v in input_size)
    model = _Logits(model.float().cpu()).eval()  # (eval on the wrapper: exporters restore its mode)
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(b, c, h, w, generator=g) for b in CHECK_BATCHES]
    meta = {"cnnlab.format": "cnnlab-export/1", "cnnlab.input_size": [c, h, w],
            **(metadata or {})}  # fmt: skip
    write, run = {
        "onnx": (_write_onnx, _run_onnx),
        "torchscript": (_write_torchscript, _run_torchscript),
    }[fmt]
    worst = 0.0
    with torch.no_grad():
        blob = write(model, inputs[-1], meta)
        for x in inputs:
            ref = model(x)
            got = run(blob, x)
            if got.shape != ref.shape:
                raise ExportError(
                    f"the exported model returns shape {tuple(got.shape)} for a batch of "
                    f"{len(x)}, PyTorch {tuple(ref.shape)}; nothing was written"
                )
            diff = (got - ref).abs()
            worst = max(worst, float(diff.max()))
            if bool((diff > ATOL + RTOL * ref.abs()).any()):
                raise ExportError(
                    f"the exported model's outputs differ from PyTorch's by up to "
                    f"{float(diff.max()):.3g} at batch size {len(x)} (tolerance {ATOL:g} + "
                    f"{RTOL:g}*|y|); nothing was written",
                    "the model may hold an op the format computes differently",
                )
    try:
        atomic_write(path, blob)
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
    return ExportReport(path, fmt, (c, h, w), worst, CHECK_BATCHES, meta)


def _find_checkpoint(source: Path) -> Path:
    if source.is_dir():
        for name in ("best.pt", "last.pt"):
            if (source / name).is_file():
                return source / name
        raise DataError(
            f"run folder {source} holds no checkpoint (best.pt or last.pt)",
            "give a folder written by `cnnlab train`, or a checkpoint file",
        )
    if not source.is_file():
        raise DataError(f"{source} does not exist", "give a run folder or a checkpoint (.pt)")
    return source


def pipeline_metadata(trained) -> dict:
    """How a raw image becomes the exported model's input, from a checkpoint's pipeline."""
    pipe = trained.pipeline
    pre = pipe.pre
    mean = pre.mean.tolist() if pre.mean is not None else None
    std = pre.std.tolist() if pre.std is not None else None
    return {
        "cnnlab.model": trained.state["model_name"],
        "cnnlab.classes": list(trained.classes),
        "cnnlab.preprocess": pre.mode,
        "cnnlab.pixel_scale": "x = pixels / 255 (uint8 -> [0, 1]); then x = (x - mean) / std",
        "mean": mean,  # per channel ([C]) or the mean image ([C, H, W], mode mean-image)
        "std": std,  # per channel, or null (no division)
        "cnnlab.data_size": list(trained.data_size),
        "cnnlab.fit": f"{pipe.mode}: data {list(pipe.data_hw)} -> model {list(pipe.model_hw)}",
    }


def export_run(source: str | Path, path: str | Path, fmt: str = "onnx") -> ExportReport:
    """Export the model of a ``cnnlab train`` run folder (its best.pt) or checkpoint, with its
    input pipeline's mean and std in the metadata."""
    from cnnlab.training.inference import load_trained

    ckpt = _find_checkpoint(Path(source))
    trained = load_trained(ckpt)
    c = trained.data_size[0]
    h, w = trained.pipeline.model_hw
    return export_model(trained.model, (c, h, w), path, fmt, metadata=pipeline_metadata(trained))
