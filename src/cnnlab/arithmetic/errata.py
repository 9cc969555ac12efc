"""Where the lecture notes (``shared/seeds/000..004``) print a wrong number, and the right one.

Data only: one ``Erratum`` per mistake, so the summary and docs can cite them and the tests can
recompute every ``value`` from :mod:`cnnlab.arithmetic`. docs/errata.md explains each in prose.

``value`` is the exact right number in base units (parameters, MACs, bytes, pixels) where the
erratum is about one number; ``printed`` and ``correct`` are the cells as a reader compares them.
``kind`` is "arithmetic" (a computed number is wrong), "rounding" (right number, wrongly rounded
or truncated), "config" (a layer setting stated wrongly) or "fact" (a figure quoted from a paper).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Erratum:
    id: str
    seed: str  # "000" .. "004"
    place: str  # where in the seed
    printed: str  # what the seed prints
    correct: str  # what it should print
    value: int | None  # the right number, exact, in base units (None for non-numeric errata)
    why: str
    kind: str = "arithmetic"


ERRATA: tuple[Erratum, ...] = (
    # ---- seed 001: AlexNet table (torchvision widths 64-192-384-256-256, input 227)
    Erratum(
        id="001-alexnet-conv4-macs",
        seed="001",
        place="AlexNet table, conv4 row, flop (M)",
        printed="145",
        correct="150 (149,520,384 MACs = 149.5 M)",
        value=256 * 13 * 13 * 384 * 3 * 3,
        why="MACs = (C_out*H'*W') * (C_in*K*K) = (256*13*13) * (384*3*3) = 43,264 * 3,456 "
        "= 149,520,384; no rounding of the inputs gives 145",
    ),
    Erratum(
        id="001-alexnet-fc6-params",
        seed="001",
        place="AlexNet table, fc6 row, params (k)",
        printed="37,749",
        correct="37,753 (9216*4096 + 4096 = 37,752,832)",
        value=9216 * 4096 + 4096,
        why="the seed counts the weights 9216*4096 = 37,748,736 and forgets the 4,096 biases, "
        "although it includes the bias for every conv row (conv1: 64*3*11*11 + 64)",
    ),
    Erratum(
        id="001-alexnet-fc7-params",
        seed="001",
        place="AlexNet table, fc7 row, params (k)",
        printed="16,777",
        correct="16,781 (4096*4096 + 4096 = 16,781,312)",
        value=4096 * 4096 + 4096,
        why="bias left out: 4096*4096 = 16,777,216 weights plus 4,096 biases",
    ),
    Erratum(
        id="001-alexnet-fc8-params",
        seed="001",
        place="AlexNet table, fc8 row, params (k)",
        printed="4,096",
        correct="4,097 (4096*1000 + 1000 = 4,097,000)",
        value=4096 * 1000 + 1000,
        why="bias left out: 4096*1000 = 4,096,000 weights plus 1,000 biases",
    ),
    # ---- seed 001: VGG
    Erratum(
        id="001-vgg-padding",
        seed="001",
        place="VGG-16 slide: 'Filter 3x3, Padding 2, Stride 1'",
        printed="Padding 2",
        correct="Padding 1",
        value=1,
        why="VGG keeps H and W through every 3x3 conv: (N - 3 + 2P)/1 + 1 = N needs P = 1; "
        "with P = 2 every conv would grow the map by 2 (224 -> 226)",
        kind="config",
    ),
    Erratum(
        id="001-vgg-channel-growth",
        seed="001",
        place="VGG-16 slide: channels 'double or triple' at each max-pool",
        printed="두 배 혹은 세 배 (x2 or x3)",
        correct="x2, then x1 (64-128-256-512-512)",
        value=None,
        why="VGG's stages have 64, 128, 256, 512, 512 channels: each pool doubles C except the "
        "last, which keeps 512; no stage triples it",
        kind="config",
    ),
    Erratum(
        id="001-vgg16-fc6-params",
        seed="001",
        place="GAP slide, VGG-16 fc6 row, params (K)",
        printed="102760",
        correct="102,765 (25088*4096 + 4096 = 102,764,544)",
        value=25088 * 4096 + 4096,
        why="bias left out (25088*4096 = 102,760,448 weights) as in the AlexNet table",
    ),
    Erratum(
        id="001-vgg16-fc7-params",
        seed="001",
        place="GAP slide, VGG-16 fc7 row, params (K)",
        printed="16777",
        correct="16,781 (16,781,312)",
        value=4096 * 4096 + 4096,
        why="bias left out",
    ),
    Erratum(
        id="001-vgg16-fc8-params",
        seed="001",
        place="GAP slide, VGG-16 fc8 row, params (K)",
        printed="4096",
        correct="4,097 (4,097,000)",
        value=4096 * 1000 + 1000,
        why="bias left out",
    ),
    # ---- seed 001: GoogLeNet
    Erratum(
        id="001-googlenet-fc-memory",
        seed="001",
        place="GoogLeNet GAP table, fc row, memory (KB)",
        printed="0",
        correct="4 (1000 * 4 B / 1024 = 3.9 KB)",
        value=1000 * 4,
        why="1,000 float32 outputs take 4,000 bytes; the seed prints 4 KB for AlexNet's fc8, "
        "which has the same 1,000 outputs",
        kind="rounding",
    ),
    Erratum(
        id="001-googlenet-conv1-floor",
        seed="001",
        place="GoogLeNet stem table, first conv (7x7, stride 2, pad 3 at 224): H/W 112",
        printed="112",
        correct="112, but only by flooring (224 - 7 + 2*3)/2 + 1 = 112.5",
        value=112,
        why="the size is not a whole number; PyTorch floors it (the last padded column is never "
        "visited). Likewise both stem max-pools: (112 - 3 + 2*1)/2 + 1 = 56.5 -> 56 and "
        "(56 - 3 + 2*1)/2 + 1 = 28.5 -> 28. The seed applies the formula without saying so",
        kind="rounding",
    ),
    # ---- seed 000
    Erratum(
        id="000-receptive-field-recurrence",
        seed="000",
        place="Receptive field: R_out = R_in + (K - 1) x S, and its table",
        printed="R_out = R_in + (K-1)*S;  9+(3-1)*2=11",
        correct="R_out = R_in + (K_eff - 1) * J_in, J_out = J_in * S;  9 + (3-1)*1 = 11",
        value=11,
        why="the growth of a layer's field is set by the spacing of its input units (the jump, "
        "the product of the strides of the layers before it), not by the layer's own stride. "
        "The table's third column is itself inconsistent: 9 + (3-1)*2 is 13, not 11. With "
        "strides 1, 1, 2 the right fields are 7, 9, 11 (jumps 1, 1, 2); a fourth 3x3 layer "
        "would see 11 + 2*2 = 15, which the seed's formula (11 + 2*S4) gets wrong for S4 != 2",
    ),
    Erratum(
        id="000-alexnet-conv1-params",
        seed="000",
        place="AlexNet table, Conv1 #Parameter",
        printed="11.6K",
        correct="34,944 (11*11*3*96 + 96); 34.8K weights",
        value=11 * 11 * 3 * 96 + 96,
        why="11.6K = 11*11*96 = 11,616: the input channels (3) are missing, and the bias; it is "
        "not a per-GPU count either (11*11*3*48 = 17,424)",
    ),
    Erratum(
        id="000-alexnet-conv2-params",
        seed="000",
        place="AlexNet table, Conv2 #Parameter",
        printed="6.4K",
        correct="307,456 (5*5*48*256 + 256, the paper's two GPU groups); 614,656 on one GPU",
        value=5 * 5 * 48 * 256 + 256,
        why="6.4K = 5*5*256: K*K*C_out without the input channels (48 per group of the 96)",
    ),
    Erratum(
        id="000-alexnet-conv3-params",
        seed="000",
        place="AlexNet table, Conv3 #Parameter",
        printed="3.5K",
        correct="885,120 (3*3*256*384 + 384; conv3 sees both GPUs' maps)",
        value=3 * 3 * 256 * 384 + 384,
        why="3.5K = 3*3*384 = 3,456: the 256 input channels are missing",
    ),
    Erratum(
        id="000-alexnet-conv4-params",
        seed="000",
        place="AlexNet table, Conv4 #Parameter",
        printed="3.5K",
        correct="663,936 (3*3*192*384 + 384, two groups); 1,327,488 on one GPU",
        value=3 * 3 * 192 * 384 + 384,
        why="3.5K = 3*3*384: the 192 input channels per group are missing",
    ),
    Erratum(
        id="000-alexnet-conv5-params",
        seed="000",
        place="AlexNet table, Conv5 #Parameter",
        printed="2.3K",
        correct="442,624 (3*3*192*256 + 256, two groups); 884,992 on one GPU",
        value=3 * 3 * 192 * 256 + 256,
        why="2.3K = 3*3*256 = 2,304: the 192 input channels per group are missing",
    ),
    Erratum(
        id="000-alexnet-fc6-params",
        seed="000",
        place="AlexNet table, FC6 #Parameter",
        printed="37749K",
        correct="37,753K (37,752,832)",
        value=9216 * 4096 + 4096,
        why="bias left out, as in seed 001",
    ),
    Erratum(
        id="000-alexnet-fc7-params",
        seed="000",
        place="AlexNet table, FC7 #Parameter",
        printed="16777K",
        correct="16,781K (16,781,312)",
        value=4096 * 4096 + 4096,
        why="bias left out",
    ),
    Erratum(
        id="000-alexnet-fc8-params",
        seed="000",
        place="AlexNet table, FC8 #Parameter",
        printed="4096K",
        correct="4,097K (4,097,000)",
        value=4096 * 1000 + 1000,
        why="bias left out",
    ),
    Erratum(
        id="000-googlenet-top5",
        seed="000",
        place="ResNet section: 'GoogleNet (22 layers - 6.3%)'",
        printed="6.3%",
        correct="6.7% (6.67% top-5, ILSVRC 2014)",
        value=None,
        why="GoogLeNet's ILSVRC 2014 classification result is 6.67% top-5 error (Szegedy et al. "
        "2015, Going Deeper with Convolutions, Table 2)",
        kind="fact",
    ),
    # ---- seed 002
    Erratum(
        id="002-zfnet-conv1-stride",
        seed="002",
        place="AlexNet vs ZFNet: '11x11 -> 7x7, stride -> 1'",
        printed="stride 1",
        correct="stride 2",
        value=2,
        why="ZFNet's first layer is 7x7 with stride 2 (Zeiler & Fergus 2014, Fig. 3); seed 000 "
        "says so too. Stride 1 at 224 would give a 218x218 map instead of 110x110: "
        "3.9x the activations and MACs",
        kind="fact",
    ),
    Erratum(
        id="002-gap-fc-weights",
        seed="002",
        place="GoogLeNet GAP: '7 x 7 x 1024 x 1024 = 51.3M'",
        printed="51.3M",
        correct="51.4M (51,380,224)",
        value=7 * 7 * 1024 * 1024,
        why="7*7*1024*1024 = 51,380,224, which rounds to 51.4M (51.3M truncates); plus 1,024 "
        "biases for an FC layer",
        kind="rounding",
    ),
    # ---- seed 004
    Erratum(
        id="004-bottleneck-30pct",
        seed="004",
        place="GoogLeNet: '1x1 convolution reduces 30% of the parameters'",
        printed="30% 줄일 수 있습니다 (reduce by 30%)",
        correct="reduces them TO about 30% (by about 70%)",
        value=1 * 1 * 128 * 32 + 3 * 3 * 32 * 128,
        why="the usual example, 3x3 conv 128->128 (147,456 weights) against 1x1 128->32 then "
        "3x3 32->128 (4,096 + 36,864 = 40,960), keeps 27.8% of the weights: a 72% cut",
    ),
    Erratum(
        id="004-densenet-vs-resnet",
        seed="004",
        place="DenseNet: 'not concatenation like ResNet's x + f(x) but addition'",
        printed="DenseNet adds, ResNet concatenates",
        correct="ResNet adds (x + f(x)); DenseNet concatenates [x, f(x)]",
        value=None,
        why="swapped: ResNet's shortcut is an elementwise sum, so channels stay fixed; DenseNet "
        "concatenates, which is why its channels grow (as the same paragraph then says)",
        kind="fact",
    ),
    Erratum(
        id="004-yolo-b-times-5",
        seed="004",
        place="YOLO: 'S x S x (B * 5 + C)', with 'B * 5: the (x, y, w, h) of 5 bounding boxes'",
        printed="B·5 = (x, y, w, h) of 5 bounding boxes",
        correct="B·5 = B boxes x 5 numbers (x, y, w, h, confidence); 7 x 7 x (2*5 + 20) = "
        "7 x 7 x 30 = 1,470",
        value=7 * 7 * (2 * 5 + 20),
        why="the 5 is the five numbers each box carries, x, y, w, h and a confidence "
        "(Pr(object) * IoU), not a count of boxes, and there are B boxes per cell, not 5 "
        "(Redmon et al. 2016: S = 7, B = 2, C = 20 gives a 7 x 7 x 30 tensor). Read as "
        "'4 numbers of 5 boxes' it would be 20 numbers per cell and leave out the confidence",
        kind="fact",
    ),
)


def errata(seed: str | None = None, kind: str | None = None) -> list[Erratum]:
    """The errata of one seed ("000".."004") and/or kind, in document order."""
    return [
        e for e in ERRATA if (seed is None or e.seed == seed) and (kind is None or e.kind == kind)
    ]


def by_id(erratum_id: str) -> Erratum:
    """One erratum by its id; ``KeyError`` lists the ids."""
    for e in ERRATA:
        if e.id == erratum_id:
            return e
    raise KeyError(f"no erratum {erratum_id!r}; known: {', '.join(e.id for e in ERRATA)}")
