"""ZFNet: AlexNet re-tuned after looking at its features.

Paper: M. D. Zeiler, R. Fergus, "Visualizing and Understanding Convolutional Networks",
arXiv:1311.2901 (2013) / ECCV 2014; Fig. 3 (architecture), section 4.1 and Table 2
(the wider "layers 3,4,5: 512, 1024, 512 maps" model).

Architecture (Fig. 3), input 3x224x224:
conv1 96@7x7/2 -> 110x110 -> ReLU -> max-pool 3x3/2 -> 55x55 -> contrast norm ->
conv2 256@5x5/2 -> 26x26 -> ReLU -> max-pool 3x3/2 -> 13x13 -> contrast norm ->
conv3 -> conv4 -> conv5 (3x3, pad 1) -> max-pool 3x3/2 -> 6x6 -> FC 4096 -> FC 4096 -> FC 1000.
The changes from AlexNet (section 4.1): 7x7 stride 2 in conv1 instead of 11x11 stride 4, stride
2 in conv2 instead of 4 (Fig. 3 draws both), and dense connections in conv3-5 (one GPU, no
groups).

Two registered forms, same builder, option ``conv345``:

- ``zfnet``: conv3-5 with 512, 1024, 512 filters, the wider variant in the paper's Table 2,
  which seeds 000 and 002 (and cs231n) describe as ZFNet.
- ``zfnet_fig3``: conv3-5 with 384, 384, 256 filters, as drawn in Fig. 3 (AlexNet's widths).

Choices the paper leaves open (documented deviations):

- Padding. Fig. 3 gives 110x110 after conv1 and 55/13 after the pools, which needs conv1 padding
  1 and ceil-mode pooling (Caffe's rounding); conv2 has no padding (55 -> 26).
- "Contrast normalization" is implemented as AlexNet's local response normalization
  (n = 5, k = 2, alpha = 1e-4, beta = 0.75, the paper's formula), the usual reading; the paper
  gives no constants.
- ReLU after every conv and hidden FC layer; dropout 0.5 on the two hidden FC layers' outputs,
  as AlexNet (the paper trains "as Krizhevsky et al.").
- The paper's training-time filter renormalisation (RMS of conv filters clipped to 0.1) is a
  training rule, not part of the architecture, and is not applied here.
"""

from __future__ import annotations

from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.alexnet import AlexNet, paper_lrn
from cnnlab.models.registry import register_model

__all__ = ["ZFNet", "zfnet", "zfnet_fig3"]

PAPER = "Zeiler & Fergus, 2013"


class ZFNet(AlexNet):
    """ZFNet: same ``features`` / ``classifier`` layout as :class:`AlexNet`."""


def _zfnet(num_classes, in_channels, conv345, dropout) -> ZFNet:
    if len(conv345) != 3 or not all(isinstance(c, int) and c > 0 for c in conv345):
        raise ConfigError(
            f"conv345 must be three positive filter counts, got {conv345!r}",
            "e.g. conv345=(512, 1024, 512) (Table 2) or (384, 384, 256) (Fig. 3)",
        )
    c3, c4, c5 = conv345
    features = nn.Sequential(
        nn.Conv2d(in_channels, 96, 7, stride=2, padding=1),  # 110x110
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True),  # 55x55
        paper_lrn(),
        nn.Conv2d(96, 256, 5, stride=2),  # 26x26
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True),  # 13x13
        paper_lrn(),
        nn.Conv2d(256, c3, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c3, c4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c4, c5, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True),  # 6x6
    )
    classifier = nn.Sequential(
        nn.Linear(c5 * 6 * 6, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, num_classes),
    )
    return ZFNet(features, classifier, input_hint="3x224x224")


@register_model(
    "zfnet",
    family="ZFNet",
    paper=PAPER,
    year=2013,
    input_size=(3, 224, 224),
    description="ZFNet, conv3-5 with 512-1024-512 filters (Table 2; seeds 000/002)",
)
def zfnet(
    num_classes: int = 1000,
    in_channels: int = 3,
    conv345: tuple[int, int, int] = (512, 1024, 512),
    dropout: float = 0.5,
) -> ZFNet:
    """ZFNet with conv3-5 widths ``conv345`` (default 512-1024-512, the paper's Table 2)."""
    return _zfnet(num_classes, in_channels, tuple(conv345), dropout)


@register_model(
    "zfnet_fig3",
    family="ZFNet",
    paper=PAPER,
    year=2013,
    input_size=(3, 224, 224),
    description="ZFNet as drawn in Fig. 3: conv3-5 with 384-384-256 filters",
)
def zfnet_fig3(
    num_classes: int = 1000,
    in_channels: int = 3,
    conv345: tuple[int, int, int] = (384, 384, 256),
    dropout: float = 0.5,
) -> ZFNet:
    """ZFNet as Fig. 3 of the paper (conv3-5: 384-384-256, AlexNet's widths)."""
    return _zfnet(num_classes, in_channels, tuple(conv345), dropout)
