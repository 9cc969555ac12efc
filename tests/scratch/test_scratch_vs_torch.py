"""Forward and backward of every layer against PyTorch autograd in float32.

Tolerance: float32 sums of up to a few hundred terms, so ``rtol=1e-4, atol=1e-5``.
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scratch_helpers import nchw, nhwc, torch_kernel

from cnnlab.scratch import layers as L
from cnnlab.scratch.model import build
from cnnlab.scratch.optim import SGD, Adam

TOL = {"rtol": 1e-4, "atol": 1e-5}


def close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), **TOL)


CONV = [  # (h, w, xchn, ychn, ksize, stride, padding)
    (7, 9, 3, 4, 3, 1, "same"),
    (8, 8, 2, 3, 4, 1, "same"),  # even kernel: extra pad bottom/right, as torch padding="same"
    (9, 7, 2, 5, (2, 3), 1, "same"),
    (9, 9, 3, 2, 3, 2, "valid"),
    (10, 11, 2, 3, 4, 2, "same"),  # TF's rule: output ceil(n / 2)
    (7, 8, 1, 6, 5, 1, 2),
    (6, 7, 2, 3, (2, 3), (2, 1), ((1, 2), (0, 1))),
]


@pytest.mark.parametrize("h,w,c,o,k,s,p", CONV)
def test_conv2d(h, w, c, o, k, s, p, rng):
    layer = L.Conv2D(c, o, k, s, p, rng=rng)
    layer.params["b"][:] = rng.standard_normal(o)
    x = rng.standard_normal((3, h, w, c)).astype(np.float32)
    y = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)

    xt, wt = nchw(x), torch_kernel(layer.params["w"])
    bt = torch.tensor(layer.params["b"], requires_grad=True)
    if p == "same" and s == 1:
        with warnings.catch_warnings():  # even kernels: torch warns it pads a copy
            warnings.simplefilter("ignore")
            yt = F.conv2d(xt, wt, bt, padding="same")  # PyTorch's own "same"
    else:
        (pt, pb), (pl, pr) = layer.pads((h, w))
        yt = F.conv2d(F.pad(xt, (pl, pr, pt, pb)), wt, bt, stride=s)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    close(y, nhwc(yt))
    close(dx, nhwc(xt.grad))
    close(layer.grads["w"], wt.grad.numpy().transpose(2, 3, 1, 0))
    close(layer.grads["b"], bt.grad.numpy())


def test_same_padding_even_kernel_puts_extra_at_bottom_right():
    layer = L.Conv2D(1, 1, 4, padding="same")
    assert layer.pads((8, 8)) == ((1, 2), (1, 2))
    assert L.Conv2D(1, 1, (2, 3), stride=2, padding="same").pads((7, 9)) == ((0, 1), (1, 1))


POOL = [  # (ksize, stride, padding, ceil_mode)
    (2, 2, 0, False),
    (2, 2, 0, True),  # odd sizes: partial windows at the border
    (3, 2, 1, False),  # overlapping
    (3, 2, 1, True),
    (3, 1, 1, False),
    ((2, 3), (1, 2), (1, 1), False),
]


def _pool_input(rng, ties, shape=(2, 7, 9, 3)):
    if ties:  # small integers: most windows hold tied maxima
        return rng.integers(0, 3, shape).astype(np.float32)
    return rng.permutation(np.prod(shape)).reshape(shape).astype(np.float32) / 10


@pytest.mark.parametrize("k,s,p,ceil", POOL)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("hw", [(7, 9), (8, 6)])  # (8, 6): 2x2 windows tile it exactly
def test_maxpool_first_is_pytorch_rule(k, s, p, ceil, ties, hw, rng):
    """PyTorch's max_pool2d sends the gradient to one index per window: the first maximum in
    row-major order, which is ties='first'."""
    x = _pool_input(rng, ties, (2, *hw, 3))
    layer = L.MaxPool2D(k, s, p, ceil, ties="first")
    y = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    xt = nchw(x)
    yt = F.max_pool2d(xt, k, s, p, ceil_mode=ceil)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    close(y, nhwc(yt))
    close(dx, nhwc(xt.grad))


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_maxpool_split_is_torch_amax(k, s, p, rng):
    """ties='split' shares the gradient among tied maxima, as torch.amax's backward does."""
    x = _pool_input(rng, ties=True)
    layer = L.MaxPool2D(k, s, p, ties="split")
    y = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    xt = nchw(x)
    cols = F.unfold(F.pad(xt, (p,) * 4, value=-float("inf")), k, stride=s)  # [mb, c*k*k, L]
    yt = cols.view(2, 3, k * k, -1).amax(2).view(2, 3, *y.shape[1:3])
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    close(y, nhwc(yt))
    close(dx, nhwc(xt.grad))


@pytest.mark.parametrize("k,s,p,ceil", POOL)
@pytest.mark.parametrize("include", [False, True])
@pytest.mark.parametrize("hw", [(7, 9), (8, 6)])
def test_avgpool(k, s, p, ceil, include, hw, rng):
    x = rng.standard_normal((2, *hw, 3)).astype(np.float32)
    layer = L.AvgPool2D(k, s, p, ceil, count_include_pad=include)
    y = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    xt = nchw(x)
    yt = F.avg_pool2d(xt, k, s, p, ceil_mode=ceil, count_include_pad=include)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    close(y, nhwc(yt))
    close(dx, nhwc(xt.grad))


def test_dense_and_activations(rng):
    x = rng.standard_normal((5, 12)).astype(np.float32)
    dense = L.Dense(12, 7, rng=rng)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(dense.params["w"], requires_grad=True)
    bt = torch.tensor(dense.params["b"], requires_grad=True)
    for layer, fn in [(L.ReLU(), torch.relu), (L.Sigmoid(), torch.sigmoid), (L.Tanh(), torch.tanh)]:
        y = layer.forward(dense.forward(x, True), True)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx = dense.backward(layer.backward(dy))
        for t in (xt, wt, bt):
            t.grad = None
        yt = fn(xt @ wt + bt)
        yt.backward(torch.tensor(dy))
        close(y, yt.detach())
        close(dx, xt.grad)
        close(dense.grads["w"], wt.grad)
        close(dense.grads["b"], bt.grad)


@pytest.mark.parametrize("image", [True, False])
def test_batchnorm_train_eval_and_running_stats(image, rng):
    shape = (6, 4, 5, 3) if image else (8, 3)
    bn = L.BatchNorm(3, momentum=0.1)
    bn.params["gamma"][:] = rng.standard_normal(3)
    bn.params["beta"][:] = rng.standard_normal(3)
    tbn = (torch.nn.BatchNorm2d if image else torch.nn.BatchNorm1d)(3, momentum=0.1)
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(bn.params["gamma"]))
        tbn.bias.copy_(torch.tensor(bn.params["beta"]))
    to_t = (lambda a: nchw(a)) if image else (lambda a: torch.tensor(a, requires_grad=True))
    back = nhwc if image else (lambda t: t.detach().numpy())
    for _ in range(3):  # a few steps so the running averages move
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        y = bn.forward(x, train=True)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx = bn.backward(dy)
        xt = to_t(x)
        tbn.zero_grad()
        yt = tbn.train()(xt)
        yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2) if image else dy))
        close(y, back(yt))
        close(dx, back(xt.grad))
        close(bn.grads["gamma"], tbn.weight.grad)
        close(bn.grads["beta"], tbn.bias.grad)
    close(bn.buffers["mean"], tbn.running_mean)
    close(bn.buffers["var"], tbn.running_var)
    x = rng.standard_normal(shape).astype(np.float32)
    close(bn.forward(x, train=False), back(tbn.eval()(to_t(x))))


def test_softmax_cross_entropy(rng):
    logits = (rng.standard_normal((6, 10)) * 30).astype(np.float32)  # large: must stay stable
    labels = rng.integers(0, 10, 6)
    ce = L.SoftmaxCrossEntropy()
    loss = ce.forward(logits, labels)
    lt = torch.tensor(logits, requires_grad=True)
    ref = F.cross_entropy(lt, torch.tensor(labels))
    ref.backward()
    assert np.isfinite(loss)
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    close(ce.backward(), lt.grad)


def _torch_lenet(model):
    """The same LeNet-5 in PyTorch, sharing the scratch model's weights (NHWC flatten order)."""
    convs = [m for m in model.layers if isinstance(m, L.Conv2D)]
    denses = [m for m in model.layers if isinstance(m, L.Dense)]
    net = torch.nn.ModuleDict(
        {f"c{i}": torch.nn.Conv2d(c.in_chn, c.chn, c.ksize) for i, c in enumerate(convs)}
        | {f"d{i}": torch.nn.Linear(d.in_width, d.width) for i, d in enumerate(denses)}
    )
    with torch.no_grad():
        for i, c in enumerate(convs):
            net[f"c{i}"].weight.copy_(torch_kernel(c.params["w"]))
            net[f"c{i}"].bias.copy_(torch.tensor(c.params["b"]))
        for i, d in enumerate(denses):
            net[f"d{i}"].weight.copy_(torch.tensor(d.params["w"].T))
            net[f"d{i}"].bias.copy_(torch.tensor(d.params["b"]))

    def forward(x):
        x = F.max_pool2d(F.relu(net["c0"](F.pad(x, (2, 2, 2, 2)))), 2)
        x = F.max_pool2d(F.relu(net["c1"](x)), 2)
        x = x.permute(0, 2, 3, 1).flatten(1)
        x = F.relu(net["d1"](F.relu(net["d0"](x))))
        return net["d2"](x)

    return net, forward


@pytest.mark.parametrize("opt", ["sgd", "nesterov", "adam"])
def test_lenet5_training_steps_match_pytorch(opt, rng):
    model = build("lenet5", (28, 28, 1), 10, seed=1)
    net, forward = _torch_lenet(model)
    if opt == "adam":
        ours, theirs = Adam(1e-3), torch.optim.Adam(net.parameters(), 1e-3)
    else:
        ours = SGD(0.05, momentum=0.9, nesterov=opt == "nesterov")
        theirs = torch.optim.SGD(net.parameters(), 0.05, momentum=0.9, nesterov=opt == "nesterov")
    for _ in range(3):
        x = rng.standard_normal((8, 28, 28, 1)).astype(np.float32)
        y = rng.integers(0, 10, 8)
        loss = model.train_step(x, y, ours)
        theirs.zero_grad()
        ref = F.cross_entropy(forward(nchw(x).detach()), torch.tensor(y))
        ref.backward()
        theirs.step()
        assert loss == pytest.approx(ref.item(), rel=1e-4)
    # Adam divides by sqrt(v): where a gradient is ~0, float32 rounding flips the step's sign, so
    # weights may differ by up to ~lr per step; SGD stays within float32 rounding.
    atol = 1e-2 if opt == "adam" else 1e-4
    conv2 = model.layers[3].params["w"]
    np.testing.assert_allclose(
        conv2, net["c1"].weight.detach().numpy().transpose(2, 3, 1, 0), atol=atol
    )
    x = rng.standard_normal((4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(model.forward(x), forward(nchw(x)).detach(), rtol=1e-3, atol=atol)
