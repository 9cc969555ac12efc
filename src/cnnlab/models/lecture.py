"""Small nets with one knob per lecture claim, for ``cnnlab experiment`` (docs/experiments.md).

The zoo's models are the papers' networks; these are the lectures' *comparisons*: the same
small net with sigmoid, tanh or ReLU; with no normalisation, LRN (Krizhevsky et al. 2012,
section 3.3) or batch norm (Ioffe & Szegedy 2015); one 5x5 conv or two stacked 3x3 at equal
channels (Simonyan & Zisserman 2015, section 2.3); an FC head or global average pooling (Lin et
al. 2014, section 3.2); dropout before the FC layers (Srivastava et al. 2014); an auxiliary
classifier half-way (Szegedy et al. 2015, section 5); and residual nets with plain, basic or
bottleneck blocks at any depth 6n+2 (He et al. 2016), built from the zoo's ResNet.
"""

from __future__ import annotations

from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.registry import register_model
from cnnlab.models.resnet import BasicBlock, Bottleneck, PlainBlock, ResNet

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
NORMS = ("none", "bn", "lrn")
CONVS = ("3x3", "5x5", "3x3x2")
HEADS = ("fc", "gap")
BLOCKS = {"plain": PlainBlock, "basic": BasicBlock, "bottleneck": Bottleneck}

_FAMILY = dict(family="Lecture nets", paper="the lecture notes' claims (cnnlab 2026)", year=2026,
               input_size=(1, 28, 28), num_classes=10, variant="mnist")  # fmt: skip


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(map(str, choices))}")


class ConvUnit(nn.Sequential):
    """conv -> [BN] -> activation -> [LRN]: AlexNet puts LRN after the ReLU, BN goes before."""

    def __init__(self, c_in: int, c_out: int, k: int, activation: str, norm: str):
        layers = [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=norm != "bn")]
        if norm == "bn":
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(ACTIVATIONS[activation]())
        if norm == "lrn":
            layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
        super().__init__(*layers)


class LectureCNN(nn.Module):
    """Stages of conv units, each ended by a 2x2 max-pool, then an FC or a GAP head.

    Returns ``(logits, aux_logits)`` in training mode when ``aux`` is on (the trainer adds the
    auxiliary loss with GoogLeNet's weight), the logits alone otherwise.
    """

    def __init__(self, num_classes=10, in_channels=1, *, widths=(16, 32, 64), convs_per_stage=1,
                 conv="3x3", activation="relu", norm="none", head="fc", fc_width=128,
                 dropout=0.0, aux=False, image_size=28):  # fmt: skip
        super().__init__()
        _choice("conv", conv, CONVS)
        _choice("activation", activation, ACTIVATIONS)
        _choice("norm", norm, NORMS)
        _choice("head", head, HEADS)
        side = image_size // 2 ** len(widths)
        if side < 1:
            raise ConfigError(
                f"{len(widths)} pooled stages shrink a {image_size}x{image_size} input to nothing",
                "use fewer widths or a larger image_size",
            )
        stages, c = [], in_channels
        for w in widths:
            units = []
            for _ in range(convs_per_stage):
                if conv == "3x3x2":  # two stacked 3x3: the receptive field of one 5x5
                    units += [
                        ConvUnit(c, w, 3, activation, norm),
                        ConvUnit(w, w, 3, activation, norm),
                    ]
                else:
                    units.append(ConvUnit(c, w, int(conv[0]), activation, norm))
                c = w
            stages.append(nn.Sequential(*units, nn.MaxPool2d(2)))
        self.stages = nn.ModuleList(stages)
        self.aux_at = len(widths) // 2 - 1 if aux else None
        if aux:  # GoogLeNet's auxiliary classifier, reduced to pool -> fc
            self.aux_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                          nn.Linear(widths[self.aux_at], num_classes))  # fmt: skip
        if head == "gap":
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                      nn.Linear(c, num_classes))  # fmt: skip
        else:
            self.head = nn.Sequential(
                nn.Flatten(), nn.Dropout(dropout), nn.Linear(c * side * side, fc_width),
                ACTIVATIONS[activation](), nn.Dropout(dropout), nn.Linear(fc_width, num_classes),
            )  # fmt: skip

        # each activation with the init made for it: He et al. 2015 for ReLU, Glorot & Bengio 2010
        # (with PyTorch's gain) for sigmoid and tanh. PyTorch's default (uniform, a = sqrt(5))
        # shrinks the signal at every layer, so a deep ReLU net without BN would not train.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if activation == "relu":
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                else:
                    nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain(activation))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        aux = None
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == self.aux_at and self.training:
                aux = self.aux_head(x)
        out = self.head(x)
        return (out, aux) if aux is not None else out


@register_model("lecture_cnn", **_FAMILY)
def lecture_cnn(*, num_classes=10, in_channels=1, widths=(16, 32, 64), convs_per_stage=1,
                conv="3x3", activation="relu", norm="none", head="fc", fc_width=128, dropout=0.0,
                aux=False, image_size=28):  # fmt: skip
    """A small VGG-style CNN with one knob per lecture claim (activation, norm, conv, head,
    dropout, auxiliary classifier)."""
    return LectureCNN(num_classes, in_channels, widths=tuple(widths),
                      convs_per_stage=convs_per_stage,
                      conv=conv, activation=activation, norm=norm, head=head, fc_width=fc_width,
                      dropout=dropout, aux=aux, image_size=image_size)  # fmt: skip


@register_model("lecture_resnet", **_FAMILY)
def lecture_resnet(*, num_classes=10, in_channels=1, depth=20, block="basic", widths=(16, 32, 64)):
    """The CIFAR ResNet of depth 6n+2 with plain, basic or bottleneck blocks and any widths
    (a bottleneck stage outputs 4x its width)."""
    _choice("block", block, BLOCKS)
    if depth < 8 or (depth - 2) % 6:
        raise ConfigError(f"depth={depth} is not 6n+2 with n >= 1", "use 8, 14, 20, 32, 44, 56 ...")
    n = (depth - 2) // 6
    shortcut = "B" if block == "bottleneck" else "A"
    return ResNet(BLOCKS[block], (n,) * len(widths), num_classes, in_channels,
                  widths=tuple(widths), stem="cifar", shortcut=shortcut)  # fmt: skip
