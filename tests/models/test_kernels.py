"""The compiled LeNet-5 stages (cnnlab.models.kernels): the same function and gradients as
PyTorch's conv -> max-pool -> ReLU, ties and clipped outputs included, and LeNet-5's fused
options falling back to its layers wherever a kernel cannot or must not run."""

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


def forbid(monkeypatch, *names: str, why: str) -> None:
    """Make the named kernels fail the test if they run."""

    def refuse(*a):
        raise AssertionError(why)

    for name in names:
        monkeypatch.setattr(kernels, name, refuse)


def count_calls(monkeypatch, name: str) -> list:
    """Count the named kernel's calls (it still runs); the list grows by one per call."""
    calls, real = [], getattr(kernels, name)
    monkeypatch.setattr(kernels, name, lambda *a: calls.append(1) or real(*a))
    return calls


def assert_same_network(plain, fast, x) -> None:
    """``fast``, given ``plain``'s weights, computes the same outputs and parameter gradients."""
    fast.load_state_dict(plain.state_dict())
    a, c = plain(x), fast(x)
    torch.testing.assert_close(c, a, rtol=1e-5, atol=1e-5)
    a.square().sum().backward()
    c.square().sum().backward()
    for p, q in zip(plain.parameters(), fast.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5)


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
    assert_same_network(plain, fast, torch.randn(16, 1, 32, 32))


def test_lenet5_takes_its_layers_when_the_input_needs_a_gradient(ext, monkeypatch):
    model = create("lenet5", fused_first_stage=True)
    forbid(monkeypatch, "conv_pool_relu", why="the kernel must not run here")
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
    model = create("lenet5", fused_first_stage=True, fused_second_stage=True).eval()
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
    model = create("lenet5", relu_after_pool=True, fused_first_stage=True).eval()
    seen = []
    handle = model.features[1].register_forward_hook(lambda mod, i, o: seen.append(o.shape))
    forbid(monkeypatch, "conv_pool_relu", why="the kernel must not run while a layer is watched")
    with torch.no_grad():
        model(torch.randn(2, 1, 32, 32))  # a feature-map picture of the first pool
    assert seen == [(2, 6, 14, 14)]
    handle.remove()
    monkeypatch.undo()
    calls = count_calls(monkeypatch, "conv_pool_relu")
    with torch.no_grad():
        model(torch.randn(2, 1, 32, 32))
    assert calls == [1]  # unhooked, the kernel runs again


# ---- the second stage: channels-last input, input gradients too ----


def reference_nhwc(x, w, b, grad):
    x, w, b = (t.detach().double().requires_grad_() for t in (x, w, b))
    y = F.relu(F.max_pool2d(F.conv2d(x, w, b), 2))
    y.backward(grad.double())
    return y, w.grad, b.grad, x.grad


def fused_nhwc(x, w, b, grad):
    x = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    w, b = w.detach().requires_grad_(), b.detach().requires_grad_()
    y = kernels.conv_pool_relu_nhwc(x, w, b)
    y.backward(grad)
    return y, w.grad, b.grad, x.grad


@pytest.mark.parametrize("shape", [(6, 14, 14, 5), (3, 13, 21, 3), (9, 11, 30, 4)])
def test_second_stage_forward_and_all_gradients_match_pytorch(ext, shape):
    torch.manual_seed(0)
    cin, h, w_, k = shape
    cout = kernels.vector_width() * (1 if cin != 3 else 2)
    x = torch.randn(7, cin, h, w_)
    w, b = torch.randn(cout, cin, k, k) * 0.2, torch.randn(cout) * 0.2 - 2.0
    h2, w2 = (h - k + 1) // 2, (w_ - k + 1) // 2
    grad = torch.randn(7, cout, h2, w2)
    ref, got = reference_nhwc(x, w, b, grad), fused_nhwc(x, w, b, grad)
    assert got[0].shape == (7, cout, h2, w2)
    assert got[0].is_contiguous(memory_format=torch.channels_last)
    assert (ref[0] == 0).double().mean() > 0.2  # ReLU clipped a fair share
    for a, c in zip(ref, got):
        torch.testing.assert_close(c.double(), a, rtol=1e-5, atol=1e-4)


def test_second_stage_ties_go_to_the_first_maximum_and_no_input_gradient_when_unneeded(ext):
    torch.manual_seed(1)
    cout = kernels.vector_width()
    # 0/1 images and sparse 0/1 filters: small integer sums, many equal window values
    x = torch.randint(0, 2, (5, 6, 14, 14)).float().contiguous(memory_format=torch.channels_last)
    w, b = (torch.rand(cout, 6, 5, 5) < 0.15).float(), torch.full((cout,), -2.0)
    grad = torch.randn(5, cout, 5, 5)
    ref, got = reference_nhwc(x, w, b, grad), fused_nhwc(x, w, b, grad)
    windows = F.conv2d(x, w, b).unfold(2, 2, 2).unfold(3, 2, 2).reshape(5, cout, 5, 5, 4)
    top = windows.max(-1, keepdim=True).values
    assert (((windows == top).sum(-1) > 1) & (top.squeeze(-1) > 0)).float().mean() > 0.03
    for a, c in zip(ref, got):
        torch.testing.assert_close(c.double(), a, rtol=1e-5, atol=1e-4)
    w = w.requires_grad_()
    kernels.conv_pool_relu_nhwc(x, w, b).backward(grad)  # x needs no gradient: none computed
    torch.testing.assert_close(w.grad.double(), ref[1], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("relu_after_pool", [True, False])
def test_lenet5_with_both_stages_fused_is_the_same_network(ext, monkeypatch, relu_after_pool):
    torch.manual_seed(0)
    plain = create("lenet5", relu_after_pool=relu_after_pool)
    fast = create("lenet5", relu_after_pool=relu_after_pool, fused_first_stage=True,
                  fused_second_stage=True)  # fmt: skip
    calls = count_calls(monkeypatch, "conv_pool_relu_nhwc")
    assert_same_network(plain, fast, torch.randn(16, 1, 32, 32))
    assert calls == [1]


def test_a_saliency_input_keeps_the_second_stage_fused_and_gets_its_gradient(ext, monkeypatch):
    torch.manual_seed(0)
    plain = create("lenet5", relu_after_pool=True)
    fast = create("lenet5", relu_after_pool=True, fused_first_stage=True,
                  fused_second_stage=True)  # fmt: skip
    fast.load_state_dict(plain.state_dict())
    forbid(monkeypatch, "conv_pool_relu", why="the first stage's kernel takes no input gradient")
    x = torch.randn(3, 1, 32, 32)
    xa, xc = x.clone().requires_grad_(), x.clone().requires_grad_()
    plain(xa).max(1).values.sum().backward()
    fast(xc).max(1).values.sum().backward()
    torch.testing.assert_close(xc.grad, xa.grad, rtol=1e-4, atol=1e-6)


def test_a_hook_on_conv2_makes_lenet5_run_all_its_layers(ext, monkeypatch):
    model = create("lenet5", fused_first_stage=True, fused_second_stage=True).eval()
    seen = []
    model.features[3].register_forward_hook(lambda mod, i, o: seen.append(o.shape))  # Grad-CAM
    forbid(monkeypatch, "conv_pool_relu", "conv_pool_relu_nhwc",
           why="no kernel may run while a layer is watched")  # fmt: skip
    with torch.no_grad():
        model(torch.randn(2, 1, 32, 32))
    assert seen == [(2, 16, 10, 10)]


def test_the_second_stage_declines_a_bfloat16_input(ext, monkeypatch):
    model = create("lenet5", fused_second_stage=True)
    forbid(monkeypatch, "conv_pool_relu_nhwc", why="a bfloat16 input takes the layers")
    with torch.autocast("cpu", dtype=torch.bfloat16):  # conv1 then returns bfloat16
        out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 10)
