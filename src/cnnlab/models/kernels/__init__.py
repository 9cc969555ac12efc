"""Hand-written CPU kernels, compiled on first use with torch's C++ extension builder.

Two, both a convolution, its 2x2 max-pool and ReLU, forward and backward, in one pass over
each image (``conv_pool.cpp``): :func:`conv_pool_relu`, LeNet-5's first stage (1-channel
input), and :func:`conv_pool_relu_nhwc`, its second (channels-last input, output channels a
multiple of :func:`vector_width`). With 6 and 16 channels ATen's kernels cannot fill their
vector registers, and these stages took most of a LeNet-5 training step on the CPU
(docs/training.md, speed section).

The build (about 40 s, once per machine, source and torch version, kept under
``~/.cache/cnnlab/kernels`` or ``$CNNLAB_KERNEL_DIR``) needs a C++20 compiler and ``ninja``;
:func:`build` runs it ahead of time (``benchmarks/train_cpu.py`` does, outside its clock). Where
it cannot be built -- no compiler, Windows without one set up, ``CNNLAB_NO_KERNELS=1`` --
:func:`available` is False, :func:`why_unavailable` says why, and the models take their plain
PyTorch path, which computes the same function.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import platform
import sys
from pathlib import Path

import torch

from cnnlab._util import atomic_write

__all__ = [
    "available",
    "build",
    "conv_pool_relu",
    "conv_pool_relu_nhwc",
    "vector_width",
    "why_unavailable",
]

_NAME = "cnnlab_conv_pool"
_SOURCE = Path(__file__).with_name("conv_pool.cpp")
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-std=c++20"]
_state: dict = {}  # "ext": the loaded module, or "error": why there is none


def _cpu_features() -> str:
    """The CPU's instruction-set flags (``-march=native`` builds for them: a home folder shared
    by machines of different CPUs must not hand one machine's binary to another)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def build_dir() -> Path:
    """Where the compiled kernel lives: one folder per (source, flags, torch, Python, CPU),
    so an edit, an upgrade or another machine builds afresh instead of loading a stale or
    foreign binary."""
    key = "|".join([_SOURCE.read_text(), *_FLAGS, torch.__version__, sys.version,
                    platform.machine(), _cpu_features()])  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    root = os.environ.get("CNNLAB_KERNEL_DIR") or Path.home() / ".cache" / "cnnlab" / "kernels"
    return Path(root) / f"{_NAME}-{digest}"


def _import_built(folder: Path):
    """The module of an earlier, finished build (its ``READY`` file names the binary), loaded
    without torch's builder, whose import alone takes 0.35 s (it imports setuptools); None
    if there is none."""
    ready = folder / "READY"
    binary = folder / ready.read_text().strip() if ready.exists() else None
    if binary is None or not binary.exists():
        return None
    loader = importlib.machinery.ExtensionFileLoader(_NAME, str(binary))
    spec = importlib.util.spec_from_file_location(_NAME, binary, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def build(verbose: bool = False):
    """The compiled extension (building it once if this machine has no copy yet), or None."""
    if "ext" in _state or "error" in _state:
        return _state.get("ext")
    if os.environ.get("CNNLAB_NO_KERNELS"):
        _state["error"] = "CNNLAB_NO_KERNELS is set"
        return None
    folder = build_dir()
    try:
        _state["ext"] = _import_built(folder)
        if _state["ext"] is None:
            print(f"cnnlab: compiling the LeNet-5 first-stage kernel into {folder} (once per "
                  "machine, about a minute)", file=sys.stderr, flush=True)  # fmt: skip
            _state["ext"] = _compile(folder, verbose)
    except Exception as e:  # no compiler, no ninja, a failed build: the plain path stays
        _state.pop("ext", None)
        _state["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}"
        print(f"cnnlab: the kernel could not be built ({_state['error']}); the model runs its "
              "PyTorch layers instead (the same results, slower). A C++ compiler and a "
              "writable CNNLAB_KERNEL_DIR let it build; CNNLAB_NO_KERNELS=1 stops trying",
              file=sys.stderr)  # fmt: skip
    return _state.get("ext")


def _compile(folder: Path, verbose: bool):
    # importing the builder logs a CUDA_HOME warning on machines without CUDA: not ours to show
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        from torch.utils.cpp_extension import load

        folder.mkdir(parents=True, exist_ok=True)
        module = load(_NAME, [str(_SOURCE)], extra_cflags=_FLAGS, extra_ldflags=["-fopenmp"],
                      build_directory=str(folder), verbose=verbose)  # fmt: skip
        # written last and atomically: a process that sees READY finds a finished binary
        atomic_write(folder / "READY", Path(module.__file__).name)
        return module
    finally:
        quiet.setLevel(level)


def available() -> bool:
    return build() is not None


def why_unavailable() -> str | None:
    build()
    return _state.get("error")


class _ConvPoolReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        n, _, h, w = x.shape
        images = x.reshape(n, h, w).float().contiguous()
        out, arg = build().forward(images, weight.detach(), bias.detach())
        ctx.save_for_backward(out, arg, images)
        ctx.k = weight.shape[-1]
        return out.permute(0, 3, 1, 2)  # (N, C, H2, W2), channels_last memory

    @staticmethod
    def backward(ctx, grad):
        out, arg, images = ctx.saved_tensors
        gw, gb = build().backward(grad.permute(0, 2, 3, 1), out, arg, images, ctx.k)
        return None, gw, gb


def conv_pool_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``relu(max_pool2d(conv2d(x, weight, bias), 2))`` for a 1-channel float input on the CPU
    whose gradient is not needed (a network's input), in float32; the result is a
    channels_last tensor. Gradients reach ``weight`` and ``bias``; max-pool ties go to the first
    maximum in row-major order and ReLU passes no gradient at 0, both as PyTorch's own ops do.
    Call only when :func:`available`."""
    return _ConvPoolReLU.apply(x, weight, bias)


def vector_width() -> int:
    """Floats per vector register the kernels were built for (16 with AVX-512, else 8); 0
    without the kernels."""
    ext = build()
    return ext.vector_width() if ext is not None else 0


class _ConvPoolReLUNHWC(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        images = x.permute(0, 2, 3, 1).float().contiguous()  # a channels_last x: no copy
        out, arg = build().forward_nhwc(images, weight.detach(), bias.detach())
        ctx.save_for_backward(out, arg, images, weight.detach())
        return out.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        out, arg, images, weight = ctx.saved_tensors
        gw, gb, gx = build().backward_nhwc(grad.contiguous(), out, arg, images, weight,
                                           ctx.needs_input_grad[0])  # fmt: skip
        return (gx.permute(0, 3, 1, 2) if ctx.needs_input_grad[0] else None), gw, gb


def conv_pool_relu_nhwc(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``relu(max_pool2d(conv2d(x, weight, bias), 2))`` for a float32 ``(N, C, H, W)`` input on
    the CPU (fastest in channels_last memory, which it reads without a copy) and a weight whose
    output channels are a multiple of :func:`vector_width`; stride 1, no padding. Gradients
    reach ``x``, ``weight`` and ``bias``, ties and ReLU's zero as in :func:`conv_pool_relu`;
    the result is a channels_last tensor. Call only when :func:`available`."""
    return _ConvPoolReLUNHWC.apply(x, weight, bias)
