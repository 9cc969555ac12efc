"""Fixture models for the peer-suite cases (test_peer_suites.py).

Each is written here from the description of a model in a peer tool's own tests (torchinfo's
fixtures, fvcore's test_flop_count.py, thop's and ptflops' tests), with the layer sizes those
tests state, so each tool's published figure applies to it. None of the peers' code is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.nn.utils import prune

# ----------------------------------------------------------------------------- torchinfo


class LeNetLike(nn.Module):
    """torchinfo's SingleInputNet: conv 5x5 (1->10), conv 5x5 (10->20) with 2d dropout, each
    followed by max pooling 2 and ReLU, then fc 320->50->10 and a log-softmax."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.drop = nn.Dropout2d(0.3)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.drop(self.conv2(x)), 2))
        x = F.relu(self.fc1(x.flatten(1)))
        return F.log_softmax(self.fc2(x), dim=1)


def pruned_lenet():
    """LeNetLike with half the weights of every conv and linear layer pruned (L1)."""
    torch.manual_seed(0)
    m = LeNetLike()
    for layer in (m.conv1, m.conv2, m.fc1, m.fc2):
        prune.l1_unstructured(layer, "weight", 0.5)
    return m


def half(build):
    return lambda: build().half()


class MLP128(nn.Module):
    """torchinfo's LinearModel: 128 -> 128 -> 128 -> 1 with ReLUs, in one Sequential."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1)
        )

    def forward(self, x):
        return self.layers(x)


class OwnWeight(nn.Module):
    """A model without children that returns its own (out x in) parameter, whatever the
    input (torchinfo's CustomParameter; ``name`` as in its pruned-name adversaries)."""

    def __init__(self, inputs=8, outputs=4, name="weight", fake_mask=False):
        super().__init__()
        self.name = name
        self.register_parameter(name, nn.Parameter(torch.ones(outputs, inputs)))
        if fake_mask:  # a *parameter* named like a pruning mask, all zeros
            self.weight_mask = nn.Parameter(torch.zeros(outputs, inputs))

    def forward(self, x):
        return getattr(self, self.name)


class AffineThenFC(nn.Module):
    """torchinfo's ParameterFCNet: x @ a + b with a 128x64 and b 64, then (optionally) a
    linear 64 -> 32."""

    def __init__(self, fc=True):
        super().__init__()
        self.a = nn.Parameter(torch.randn(128, 64))
        self.b = nn.Parameter(torch.randn(64))
        self.fc = nn.Linear(64, 32) if fc else None

    def forward(self, x):
        x = x @ self.a + self.b
        return self.fc(x) if self.fc is not None else x


class SharedConv(nn.Module):
    """torchinfo's RecursiveNet: one conv 3x3 (64->64, pad 1) applied six times."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(64, 64, 3, 1, 1)

    def forward(self, x):
        for _ in range(6):
            x = self.conv1(x)
        return x


class SharedLinear(nn.Module):
    """torchinfo's ReuseLinear: [linear 10->10, ReLU] four times, the same linear each time."""

    def __init__(self):
        super().__init__()
        linear = nn.Linear(10, 10)
        self.model = nn.Sequential(*[m for _ in range(4) for m in (linear, nn.ReLU(True))])

    def forward(self, x):
        return self.model(x)


class SharedReLU(nn.Module):
    """torchinfo's ReuseReLU: reflection pad 3, conv 1x1 4->1, BN, then three stride-2 1x1
    convs doubling the channels (1->2->4->8, pad 1), each with BN; one ReLU object shared."""

    def __init__(self):
        super().__init__()
        act = nn.ReLU(True)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(4, 1, 1), nn.BatchNorm2d(1), act]
        for c in (1, 2, 4):
            layers += [nn.Conv2d(c, 2 * c, 1, stride=2, padding=1), nn.BatchNorm2d(2 * c), act]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class UnpoolAutoEncoder(nn.Module):
    """torchinfo's AutoEncoder: conv 3->16 + ReLU, max pool 2 with indices, max unpool,
    conv 16->3 + ReLU."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.decode = nn.Sequential(nn.Conv2d(16, 3, 3, padding=1), nn.ReLU())

    def forward(self, x):
        x = self.encoder(x)
        size = x.size()
        x, idx = self.pool(x)
        return self.decode(self.unpool(x, idx, output_size=size))


class _Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.seq = nn.Sequential(nn.Linear(5, 5), nn.Linear(5, 5))
        self.between = nn.Linear(5, 5)

    def forward(self, x):
        out = self.between(self.seq(x))
        for layer in self.seq:  # the same layers again, one by one
            out = layer(out)
        out = self.seq(x)
        for layer in self.seq:
            out = layer(out)
        return out


class Nested(nn.Module):
    """torchinfo's ContainerModule: a ModuleList [linear 5->5, a child that calls its
    Sequential of two linears three times around a third linear, linear 5->5]."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(5, 5), _Inner(), nn.Linear(5, 5)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class _Conv1dBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool1d(1)

    def forward(self, x):
        return self.pool(self.relu(self.conv(x)))


class Conv1dStack(nn.Module):
    """torchinfo's CNNModuleList: five blocks of conv1d 1x1 (1->1), ReLU, max pool 1."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([_Conv1dBlock() for _ in range(5)])

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


class ChoiceNet(nn.Module):
    """torchinfo's ModuleDictModel run as its test runs it: the conv 3x3 (10->10) of a
    {conv, pool} dict, then the leaky ReLU of a {lrelu, prelu} dict (the PReLU never runs)."""

    def __init__(self):
        super().__init__()
        self.choices = nn.ModuleDict({"conv": nn.Conv2d(10, 10, 3), "pool": nn.MaxPool2d(3)})
        self.activations = nn.ModuleDict({"lrelu": nn.LeakyReLU(), "prelu": nn.PReLU()})

    def forward(self, x):
        return self.activations["lrelu"](self.choices["conv"](x))


def frozen_resnet18(cpu=False):
    """torchvision ResNet-18 with the stem, layer1 and layer2 frozen (requires_grad=False),
    as torchinfo's frozen_layers test sets it up."""
    m = tv_cpu("resnet18") if cpu else tv("resnet18")
    for name, p in m.named_parameters():
        if name.split(".")[0] in ("conv1", "bn1", "layer1", "layer2"):
            p.requires_grad_(False)
    return m


# ----------------------------------------------------------------------------- fvcore


class ConvNd(nn.Module):
    """fvcore's ConvNet: one (transposed) convolution of the given dimension."""

    def __init__(self, dim, cin, cout, k, stride, pad, groups, transpose=False, out_pad=0):
        super().__init__()
        kind = (
            (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
            if transpose
            else (
                nn.Conv1d,
                nn.Conv2d,
                nn.Conv3d,
            )
        )
        extra = {"output_padding": out_pad} if transpose else {}
        self.conv = kind[dim - 1](cin, cout, k, stride, pad, groups=groups, **extra)

    def forward(self, x):
        return self.conv(x)


class Wrapped(nn.Module):
    """One layer held as a child (fvcore's LinearNet and friends)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


class WithOperand(nn.Module):
    """``fn(x, y)`` with the second operand of fvcore's two-input tests held as a buffer."""

    def __init__(self, fn, shape):
        super().__init__()
        self.fn = fn
        self.register_buffer("y", torch.randn(shape))

    def forward(self, x):
        return self.fn(x, self.y)


def einsum(equation):
    return lambda x, y: torch.einsum(equation, x, y)


class TrioNet(nn.Module):
    """fvcore's ThreeNet: conv 1x1 (2->5), adaptive average pool to 1x1, linear 5->3, 3->1."""

    def __init__(self, cin=2, conv=5, hidden=3):
        super().__init__()
        self.conv = nn.Conv2d(cin, conv, 1, 1)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear1 = nn.Linear(conv, hidden)
        self.linear2 = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.linear2(self.linear1(torch.flatten(self.pool(self.conv(x)), 1)))


class LinearSigmoid(nn.Module):
    """fvcore's CustomNet: linear 5->4 then a sigmoid layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Linear(5, 4)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return self.sigmoid(self.conv(x))


class BatchNormFn(nn.Module):
    """``F.batch_norm`` on vectors of 2 as fvcore's handle test calls it: running statistics
    and an affine (or none), in inference or with ``training=True``."""

    def __init__(self, affine=True, training=False):
        super().__init__()
        for n in ("mean", "var", "w", "b"):
            self.register_buffer(n, torch.rand(2))
        self.affine, self.bn_training = affine, training

    def forward(self, x):
        w, b = (self.w, self.b) if self.affine else (None, None)
        return F.batch_norm(x, self.mean, self.var, w, b, self.bn_training)


class GroupNormFn(nn.Module):
    """``F.group_norm`` with 2 groups, with or without an affine of 2."""

    def __init__(self, affine=True):
        super().__init__()
        self.register_buffer("w", torch.rand(2))
        self.register_buffer("b", torch.rand(2))
        self.affine = affine

    def forward(self, x):
        return F.group_norm(x, 2, self.w if self.affine else None, self.b if self.affine else None)


class Upsample2x(nn.Module):
    def forward(self, x):
        return F.interpolate(x, None, 2, "bilinear", False)


class TwoConvs(nn.Module):
    """fvcore's NetWithReuse: two convs 3x3 (100->100), conv2's weight tied to conv1's
    when ``reuse``; run one after the other."""

    def __init__(self, reuse=False):
        super().__init__()
        self.conv1 = nn.Conv2d(100, 100, 3)
        self.conv2 = nn.Conv2d(100, 100, 3)
        if reuse:
            self.conv2.weight = self.conv1.weight

    def forward(self, x):
        return self.conv2(self.conv1(x))


# ----------------------------------------------------------------------------- ptflops


class Interpolate20(nn.Module):
    """ptflops' interpolate test: resize to 20x20, bilinear, the input given by keyword or
    by position."""

    def __init__(self, keyword=True):
        super().__init__()
        self.keyword = keyword

    def forward(self, x):
        if self.keyword:
            return F.interpolate(input=x, size=(20, 20), mode="bilinear", align_corners=False)
        return F.interpolate(x, size=(20, 20), mode="bilinear")


def tv(name, **kw):
    """A torchvision classifier built on the meta device (no memory, no init)."""
    if name in ("googlenet", "inception_v3"):
        kw.setdefault("init_weights", False)
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None, **kw)


def tv_cpu(name):
    """A torchvision model with real (uninitialised) CPU storage, for ptflops: its count on
    meta tensors is not its count on real ones (a linear layer and the patched functionals
    are priced differently there), so it runs the real kernels."""
    return tv(name).to_empty(device="cpu")
