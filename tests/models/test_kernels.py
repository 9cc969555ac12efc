"""The compiled LeNet-5 first stage (cnnlab.models.kernels): the same function and gradients as
PyTorch's conv -> max-pool -> ReLU, ties and clipped outputs included, and LeNet-5's fused
option falling back to its layers wherever the kernel cannot or must not run."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

from cnnlab.models import create, kernels


@pytest.fixture(scope="module")
def ext():
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler on this machine: the kernel cannot be built here")
    assert kernels.available(), kernels.why_unavailable()  # a compiler, so it must build
    return kernels.build()


def reference(x, w, b, grad):
    w, b = w.detach().requires_grad_(), b.detach().requires_grad_()
    y = F.relu(F.max_pool2d(F.conv2d(x, w, b), 2))
    y.backward(grad)
    return y, w.grad, b.grad


def fused(x, w, b, grad):
    w, b = w.detach().requires_grad_(), b.detach().requires_grad_()
    y = kernels.conv_pool_relu(x, w, b)
    y.backward(grad)
    return y, w.grad, b.grad


@pytest.mark.parametrize("size", [(32, 32), (31, 28)])  # odd conv output: the pool floors
def test_forward_and_gradients_match_pytorch(ext, size):
    torch.manual_seed(0)
    x = torch.randn(9, 1, *size)
    w, b = torch.randn(6, 1, 5, 5) * 0.3, torch.randn(6) * 0.3 - 1.0  # many clipped by ReLU
    h2, w2 = (size[0] - 4) // 2, (size[1] - 4) // 2
    grad = torch.randn(9, 6, h2, w2)
    ref, got = reference(x, w, b, grad), fused(x, w, b, grad)
    assert got[0].shape == (9, 6, h2, w2)
    assert got[0].is_contiguous(memory_format=torch.channels_last)
    assert (ref[0] == 0).float().mean() > 0.2  # ReLU clipped a fair share: that path is tested
    for a, c in zip(ref, got):
        torch.testing.assert_close(c, a, rtol=1e-5, atol=1e-4)


def test_ties_route_the_gradient_to_the_first_maximum_as_pytorch_does(ext):
    torch.manual_seed(1)
    x = torch.randint(-2, 3, (5, 1, 32, 32)).float()  # small integers: many equal window values
    w, b = torch.randint(-1, 2, (6, 1, 5, 5)).float(), torch.zeros(6)
    grad = torch.randn(5, 6, 14, 14)
    ref, got = reference(x, w, b, grad), fused(x, w, b, grad)
    conv = F.conv2d(x, w, b)
    windows = conv.unfold(2, 2, 2).unfold(3, 2, 2).reshape(5, 6, 14, 14, 4)
    top = windows.max(-1, keepdim=True).values
    tied = ((windows == top).sum(-1) > 1) & (top.squeeze(-1) > 0)  # ties ReLU lets through
    assert tied.float().mean() > 0.03
    torch.testing.assert_close(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-5, atol=1e-3)


def test_fused_lenet5_is_the_same_network(ext):
    torch.manual_seed(0)
    plain = create("lenet5", relu_after_pool=True)
    fast = create("lenet5", relu_after_pool=True, fused_first_stage=True)
    assert fast.state_dict().keys() == plain.state_dict().keys()
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(16, 1, 32, 32)
    a, c = plain(x), fast(x)
    torch.testing.assert_close(c, a, rtol=1e-5, atol=1e-5)
    a.square().sum().backward()
    c.square().sum().backward()
    for p, q in zip(plain.parameters(), fast.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5)


def test_lenet5_takes_its_layers_when_the_input_needs_a_gradient(ext, monkeypatch):
    def refuse(*a):
        raise AssertionError("the kernel must not run here")

    model = create("lenet5", fused_first_stage=True)
    monkeypatch.setattr(kernels, "conv_pool_relu", refuse)
    x = torch.randn(2, 1, 32, 32, requires_grad=True)  # a saliency map's input
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_without_the_kernel_lenet5_runs_its_layers(monkeypatch):
    monkeypatch.setattr(kernels, "_state", {"error": "no compiler (simulated)"})
    assert not kernels.available() and "simulated" in kernels.why_unavailable()
    torch.manual_seed(0)
    plain = create("lenet5")
    fast = create("lenet5", fused_first_stage=True)
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(4, 1, 32, 32)
    assert torch.equal(fast(x), plain(x))


def test_no_kernels_env_turns_it_off(monkeypatch):
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("CNNLAB_NO_KERNELS", "1")
    assert kernels.build() is None
    assert kernels.why_unavailable() == "CNNLAB_NO_KERNELS is set"


def test_the_build_folder_changes_with_the_source(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_KERNEL_DIR", str(tmp_path))
    before = kernels.build_dir()
    assert before.parent == tmp_path
    edited = tmp_path / "conv_pool.cpp"
    edited.write_text(kernels._SOURCE.read_text() + "\n// edited\n")
    monkeypatch.setattr(kernels, "_SOURCE", edited)
    assert kernels.build_dir() != before  # an edit never loads the old binary


def test_a_traced_fused_lenet5_records_its_layers(ext):
    model = create("lenet5", fused_first_stage=True).eval()
    x = torch.randn(3, 1, 32, 32)
    traced = torch.jit.trace(model, x)
    graph = traced.inlined_graph.str()
    assert graph.count("aten::_convolution") == 2 and "PythonOp" not in graph
    torch.testing.assert_close(traced(x), model(x), rtol=1e-5, atol=1e-5)


def test_the_build_folder_changes_with_the_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_KERNEL_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "_cpu_features", lambda: "sse2 avx2")
    older = kernels.build_dir()
    monkeypatch.setattr(kernels, "_cpu_features", lambda: "sse2 avx2 avx512f")
    assert kernels.build_dir() != older  # -march=native: a binary for this CPU only


def test_an_unwritable_kernel_folder_falls_back_and_says_how_to_fix_it(monkeypatch, tmp_path,
                                                                       capsys):  # fmt: skip
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("CNNLAB_KERNEL_DIR", str(blocker))  # a file where a folder must go
    monkeypatch.setattr(kernels, "_state", {})
    assert kernels.build() is None
    assert "a-file" in kernels.why_unavailable()
    err = capsys.readouterr().err
    assert "PyTorch layers instead" in err and "CNNLAB_KERNEL_DIR" in err


def test_a_hook_on_the_first_layers_makes_lenet5_run_them(ext, monkeypatch):
    def refuse(*a):
        raise AssertionError("the kernel must not run while a layer is watched")

    model = create("lenet5", relu_after_pool=True, fused_first_stage=True).eval()
    seen = []
    handle = model.features[1].register_forward_hook(lambda mod, i, o: seen.append(o.shape))
    monkeypatch.setattr(kernels, "conv_pool_relu", refuse)
    with torch.no_grad():
        model(torch.randn(2, 1, 32, 32))  # a feature-map picture of the first pool
    assert seen == [(2, 6, 14, 14)]
    handle.remove()
    monkeypatch.undo()
    calls = []
    real = kernels.conv_pool_relu
    monkeypatch.setattr(kernels, "conv_pool_relu", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        model(torch.randn(2, 1, 32, 32))
    assert calls == [1]  # unhooked, the kernel runs again
