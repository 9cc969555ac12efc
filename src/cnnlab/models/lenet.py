"""LeNet-5: the 1998 network as its paper built it, and the common modern form.

Paper: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning Applied to
Document Recognition", Proc. IEEE 86(11), 1998, section II.B (architecture), Table I
(C3 connection table) and Appendix A (squashing function, initialisation).

Two registered forms:

``lenet5_1998`` (faithful; 60,850 trainable parameters with the linear output)
    32x32 input. C1: 6@5x5 -> 28x28. S2: trainable subsampling -> 14x14 (each unit sums its
    2x2 window, multiplies by one trainable coefficient per map and adds one trainable bias per
    map: 12 parameters). C3: 16@5x5 -> 10x10 with the paper's partial connection table
    (``c3_table=True``: 1,516 parameters, 151,600 connections; ``c3_table=False`` connects
    every map: 2,416). S4: trainable subsampling -> 5x5 (32 parameters). C5: 120@5x5 -> 1x1
    (48,120). F6: 84 units (10,164). Every layer up to F6 is followed by the paper's scaled
    tanh ``1.7159 * tanh(2/3 x)`` (Appendix A); weights start uniform in +-2.4/fan_in.
    Deviations, all documented choices:

    - Output layer. The paper's output is 10 Euclidean RBF units whose *fixed* centres are
      hand-drawn 7x12 bitmaps of the digits. The default here is a trainable linear layer
      (84 -> 10, 850 parameters) used with softmax cross-entropy, as every modern
      re-implementation does. ``output="rbf"`` gives the RBF layer: it returns the negated
      squared distances to fixed +-1 centres (a non-trainable buffer), so cross-entropy on
      these logits is the paper's criterion (eq. 9) without its constant ``j`` term. The
      centres are random +-1 codes (seeded) because the paper's bitmaps are not published as
      numbers; the paper itself uses random codes for the non-digit characters.
    - C3 with the table holds exactly the paper's 60 kernels; by default it runs them as one
      dense 6->16 convolution whose weight is zero where Table I has no connection (fast).
      That is an implementation detail: ``C3Table.lecture_count`` declares the connections
      Table I has, so ``cnnlab summary`` counts the paper's 150,000 MACs (151,600 connections
      with the biases) for C3, not the 240,000 of the dense product (tools that count ATen ops,
      ``--convention fvcore`` etc., still see 240,000). ``c3_grouped=True`` runs three grouped
      convolutions instead: the same outputs and counts, but C3 ~10x and a whole training step
      ~4x slower on CPU.

``lenet5`` (the common modern form; 61,706 parameters)
    conv 6@5x5 -> ReLU -> 2x2 max-pool -> conv 16@5x5 -> ReLU -> 2x2 max-pool -> flatten
    (400) -> FC 120 -> ReLU -> FC 84 -> ReLU -> FC 10. Not in the paper: ReLU replaces the
    scaled tanh, max-pooling replaces trainable subsampling, C3 is fully connected and C5 is
    a linear layer (identical to a 5x5 convolution at 32x32).

Both default to 1x32x32 input: pad 28x28 MNIST by 2 pixels (the paper centres the digits in a
32x32 field) or resize. ``in_channels=3`` gives the 3x32x32 CIFAR form with no other change.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as _module

from cnnlab.errors import ConfigError
from cnnlab.models import kernels
from cnnlab.models.registry import register_model

__all__ = ["LeNet5", "ScaledTanh", "Subsampling", "C3Table", "RBFOutput", "C3_TABLE"]

PAPER = "LeCun et al., 1998"

# Table I of the paper: for each of C3's 16 maps, the S2 maps it reads.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


class ScaledTanh(nn.Module):
    """``A * tanh(S * x)`` with A = 1.7159, S = 2/3 (Appendix A): f(1) = 1, f(-1) = -1."""

    A = 1.7159
    S = 2.0 / 3.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.A * torch.tanh(self.S * x)


class Subsampling(nn.Module):
    """S2/S4: sum each non-overlapping 2x2 window, times a trainable coefficient, plus a bias.

    One coefficient and one bias per feature map (2 parameters per map), as section II.B.
    """

    def __init__(self, channels: int, size: int = 2):
        super().__init__()
        self.size = size
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window_sum = F.avg_pool2d(x, self.size) * (self.size * self.size)
        return window_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, size={self.size}"


class C3Table(nn.Module):
    """C3 with the paper's partial connection table (Table I): 60 kernels + 16 biases = 1,516.

    ``weight`` holds one 5x5 kernel per (C3 map, S2 map) connection, in table order. Two ways
    to compute the same result from it:

    - ``grouped=False`` (default): scatter the kernels into a dense 16x6x5x5 weight (zeros where
      Table I has no connection) and run one convolution. Fast everywhere (on CPU grouped
      convolutions of this size are ~10x slower to train), but a profiler of ATen ops counts
      the zeros: 240,000 MACs per 10x10 map instead of the paper's 150,000 (the lecture
      convention asks ``lecture_count`` instead).
    - ``grouped=True``: three grouped convolutions over the S2 maps gathered in table order
      (the 6 maps reading 3 inputs, the 9 reading 4, the one reading all 6 -- contiguous runs
      in Table I), so ``cnnlab summary`` counts exactly the paper's connections.
    """

    def __init__(self, table=C3_TABLE, kernel_size: int = 5, grouped: bool = False):
        super().__init__()
        self.table = tuple(tuple(t) for t in table)
        self.in_maps = 1 + max(i for t in self.table for i in t)
        self.kernel_size = kernel_size
        self.grouped = grouped
        pairs = [(o, i) for o, ins in enumerate(self.table) for i in ins]
        self.weight = nn.Parameter(torch.empty(len(pairs), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(len(self.table)))
        self.register_buffer("out_index", torch.tensor([o for o, _ in pairs]), persistent=False)
        self.register_buffer("in_index", torch.tensor([i for _, i in pairs]), persistent=False)
        # Runs of consecutive maps with the same fan-in: (first map, maps, fan-in, first kernel).
        self.runs: list[tuple[int, int, int, int]] = []
        kernel = 0
        for o, ins in enumerate(self.table):
            last = self.runs[-1] if self.runs else None
            if last and last[2] == len(ins) and last[0] + last[1] == o:
                self.runs[-1] = (last[0], last[1] + 1, last[2], last[3])
            else:
                self.runs.append((o, 1, len(ins), kernel))
            kernel += len(ins)
        nn.init.kaiming_uniform_(self.weight.view(len(pairs), -1), a=5**0.5)

    @property
    def out_channels(self) -> int:
        return len(self.table)

    def dense_weight(self) -> torch.Tensor:
        """The equivalent full 16x6xkxk weight, zero where Table I has no connection."""
        k = self.kernel_size
        dense = self.weight.new_zeros(len(self.table), self.in_maps, k, k)
        return dense.index_put((self.out_index, self.in_index), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.grouped:
            return F.conv2d(x, self.dense_weight(), self.bias)
        k, outs = self.kernel_size, []
        for first, n, fan_in, k0 in self.runs:
            idx = self.in_index[k0 : k0 + n * fan_in]
            w = self.weight[k0 : k0 + n * fan_in].view(n, fan_in, k, k)
            outs.append(F.conv2d(x.index_select(1, idx), w, self.bias[first : first + n], groups=n))
        return torch.cat(outs, dim=1)

    def lecture_count(self, output_shape) -> tuple[int, int]:
        """(MACs, FLOPs) of the connections Table I has, whichever way ``forward`` runs them:
        each of the 60 kernels meets k*k inputs per output pixel, plus one bias add per output.
        At 10x10: 60*25*100 = 150,000 MACs and 151,600 "connections" (section II.B)."""
        n, _, h, w = output_shape
        macs = n * self.weight.shape[0] * self.kernel_size**2 * h * w
        return macs, macs + n * len(self.table) * h * w

    def extra_repr(self) -> str:
        return (
            f"{self.in_maps}, {len(self.table)}, kernel_size={self.kernel_size}, "
            f"connections={self.weight.shape[0]}, grouped={self.grouped}"
        )


class RBFOutput(nn.Module):
    """Euclidean RBF output units with fixed +-1 centres; returns ``-||x - w_i||^2``.

    The centres are a buffer (not trained), as in the paper; see the module docstring.
    """

    def __init__(self, in_features: int, num_classes: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        codes = torch.randint(0, 2, (num_classes, in_features), generator=g) * 2 - 1
        self.register_buffer("centres", codes.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(x, self.centres.to(x.dtype)).pow(2)


class LeNet5(nn.Module):
    """LeNet-5: ``features`` (conv part), flatten, ``classifier`` (fully connected part).

    ``fused_first_stage``: run the first three feature layers (1-channel conv, 2x2 max-pool,
    ReLU, in either order: they commute) as one compiled CPU kernel
    (:mod:`cnnlab.models.kernels`) whenever it can -- a float input on the CPU that needs no
    gradient, no hook on those layers -- and the kernel could be built; otherwise (saliency
    maps, whose input needs a gradient; feature maps and Grad-CAM, which hook the layers) the
    layers run as they are. ``fused_second_stage``: the same for the next three (conv2, its
    pool and ReLU), whose input may need a gradient (it gets one). Same parameters, same
    function."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential,
                 fused_first_stage: bool = False, fused_second_stage: bool = False):  # fmt: skip
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.fused_first_stage = fused_first_stage
        self.fused_second_stage = fused_second_stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.fused_first_stage or self.fused_second_stage) and self._may_fuse():
            f = self.features
            if self.fused_first_stage and self._first_fits(x):
                y = kernels.conv_pool_relu(x, f[0].weight, f[0].bias)
            else:
                y = f[:3](x)
            if self.fused_second_stage and self._second_fits(y):
                y = f[6:](kernels.conv_pool_relu_nhwc(y, f[3].weight, f[3].bias))
            else:
                y = f[3:](y)
        else:
            y = self.features(x)
        return self.classifier(torch.flatten(y, 1))

    def _may_fuse(self) -> bool:
        compiling = getattr(torch.compiler, "is_compiling", lambda: False)  # torch >= 2.3
        if torch.jit.is_tracing() or compiling():  # export, torch.compile: the layers
            return False
        # feature maps, Grad-CAM, summaries watch the layers (or the whole feature stack)
        return not _hooked([self.features, *self.features[:6]]) and kernels.available()

    def _first_fits(self, x: torch.Tensor) -> bool:
        conv = self.features[0]
        return (x.device.type == "cpu" and x.dim() == 4 and x.shape[1] == 1
                and x.shape[-1] % 2 == 0 and min(x.shape[-2:]) >= 6
                and x.dtype == torch.float32 and not x.requires_grad
                and conv.weight.dtype == torch.float32
                and conv.weight.device.type == "cpu")  # fmt: skip

    def _second_fits(self, y: torch.Tensor) -> bool:
        conv = self.features[3]
        return (y.device.type == "cpu" and y.dim() == 4 and y.dtype == torch.float32
                and min(y.shape[-2:]) >= conv.kernel_size[0] + 1
                and conv.out_channels % kernels.vector_width() == 0
                and conv.weight.dtype == torch.float32
                and conv.weight.device.type == "cpu")  # fmt: skip


def _hooked(layers: Iterable[nn.Module]) -> bool:
    """Whether anything watches these layers run (a hook on one of them, or on every module)."""
    everywhere = [getattr(_module, n, None) for n in ("_global_forward_hooks",
                  "_global_forward_pre_hooks", "_global_backward_hooks")]  # fmt: skip
    if any(everywhere):
        return True
    return any(layer._forward_hooks or layer._forward_pre_hooks or layer._backward_hooks
               or getattr(layer, "_backward_pre_hooks", None) for layer in layers)  # fmt: skip


def _init_1998(model: nn.Module) -> None:
    # Appendix A: weights uniform in [-2.4/F, 2.4/F], F = fan-in of the unit.
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            nn.init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)
            nn.init.uniform_(m.bias, -2.4 / fan_in, 2.4 / fan_in)
        elif isinstance(m, Subsampling):
            fan_in = m.size * m.size
            nn.init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)
            nn.init.uniform_(m.bias, -2.4 / fan_in, 2.4 / fan_in)
        elif isinstance(m, C3Table) and not m.weight.is_meta:  # a meta build has no values
            # each C3 map's fan-in: its S2 maps x 5 x 5
            area = m.kernel_size**2
            per_kernel = [2.4 / (len(t) * area) for t in m.table for _ in t]
            per_map = [2.4 / (len(t) * area) for t in m.table]
            with torch.no_grad():
                bound = torch.tensor(per_kernel, device=m.weight.device).view(-1, 1, 1)
                m.weight.copy_((torch.rand_like(m.weight) * 2 - 1) * bound)
                m.bias.copy_(
                    (torch.rand_like(m.bias) * 2 - 1) * torch.tensor(per_map, device=m.bias.device)
                )


@register_model(
    "lenet5_1998",
    family="LeNet",
    paper=PAPER,
    year=1998,
    input_size=(1, 32, 32),
    num_classes=10,
    variant="mnist",
    description="LeNet-5 as the paper: scaled tanh, trainable subsampling, C3 table",
)
def lenet5_1998(
    num_classes: int = 10,
    in_channels: int = 1,
    c3_table: bool = True,
    output: str = "linear",
    c3_grouped: bool = False,
) -> LeNet5:
    """LeNet-5 as in LeCun et al. 1998 (``c3_table``: Table I connections; ``output``:
    "linear" or "rbf"; ``c3_grouped``: compute C3 as grouped convs, exact MAC count)."""
    if output not in ("linear", "rbf"):
        raise ConfigError(f"unknown LeNet-5 output {output!r}", "use output='linear' or 'rbf'")
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, 5),  # C1
        ScaledTanh(),
        Subsampling(6),  # S2
        ScaledTanh(),
        C3Table(grouped=c3_grouped) if c3_table else nn.Conv2d(6, 16, 5),  # C3
        ScaledTanh(),
        Subsampling(16),  # S4
        ScaledTanh(),
        nn.Conv2d(16, 120, 5),  # C5
        ScaledTanh(),
    )
    head = nn.Linear(84, num_classes) if output == "linear" else RBFOutput(84, num_classes)
    classifier = nn.Sequential(nn.Linear(120, 84), ScaledTanh(), head)  # F6, output
    model = LeNet5(features, classifier)
    _init_1998(model)
    return model


@register_model(
    "lenet5",
    family="LeNet",
    paper=PAPER,
    year=1998,
    input_size=(1, 32, 32),
    num_classes=10,
    variant="mnist",
    description="LeNet-5, common modern form: ReLU, max-pooling, full C3",
)
def lenet5(num_classes: int = 10, in_channels: int = 1, relu_after_pool: bool = False,
           fused_first_stage: bool = False,
           fused_second_stage: bool = False) -> LeNet5:  # fmt: skip
    """LeNet-5 in its common modern form (ReLU, 2x2 max-pooling, linear C5).

    ``relu_after_pool``: each conv is followed by max-pool then ReLU instead of ReLU then
    max-pool. The same network -- ReLU is monotone, so it commutes with max -- with the same
    outputs, gradients and state-dict keys, but ReLU and its backward run on 4x fewer elements
    and the pooling reads raw conv outputs: 5-34% faster training steps on this CPU
    (docs/training.md, speed section); the ``lenet5-mnist`` recipe uses it.

    ``fused_first_stage``: conv1, its pool and ReLU as one compiled CPU kernel where it can
    (:class:`LeNet5`; 1-channel input only); ``fused_second_stage``: conv2, its pool and ReLU
    likewise. The ``lenet5-mnist`` recipe uses both.
    """

    def act_pool():
        relu, pool = nn.ReLU(inplace=True), nn.MaxPool2d(2)
        return (pool, relu) if relu_after_pool else (relu, pool)

    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, 5), *act_pool(), nn.Conv2d(6, 16, 5), *act_pool()
    )
    classifier = nn.Sequential(
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(inplace=True),
        nn.Linear(120, 84),
        nn.ReLU(inplace=True),
        nn.Linear(84, num_classes),
    )
    return LeNet5(
        features,
        classifier,
        fused_first_stage=fused_first_stage and in_channels == 1,
        fused_second_stage=fused_second_stage,
    )
