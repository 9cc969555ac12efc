"""Where the lecture notes (``shared/seeds/000..004``) are wrong, and what is right.

Data only: one :class:`Erratum` per wrong number or statement, which ``cnnlab errata`` prints
(text, JSON, Markdown), ``cnnlab summary`` / ``compare`` cite as footnotes under a row whose
value a note prints wrong, and the tests recompute (every ``value`` with cnnlab's own arithmetic
or model summaries). docs/errata.md explains each in prose.

Fields: ``section`` says where in the note, ``says`` what the note prints (quoted, with a
translation where it is Korean), ``right`` the right value or statement, ``why`` the working.
``value`` is the exact right number where the erratum is about one number (base units:
parameters, MACs, bytes, pixels; a ratio or a share where the note states one), else None.
``kind``: "arithmetic" (a computed number is wrong), "rounding" (right number, wrongly rounded),
"config" (a layer setting stated wrongly), "fact" (a figure or date quoted from a paper) or
"statement" (a wrong description of how something works). ``cell`` names the summary cell a
footnote goes under: the column, the layer type and its input and output shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.errors import ConfigError, suggest

SEEDS = ("000", "001", "002", "003", "004")
KINDS = ("arithmetic", "rounding", "config", "fact", "statement")
FIELDS = ("id", "seed", "section", "says", "right", "why")  # the JSON contract


@dataclass(frozen=True)
class Cell:
    """A per-layer summary cell: ``column`` of the row of a ``type`` layer with these shapes."""

    column: str  # a LayerRow field: params, macs, activation_bytes, weights
    type: str  # Conv2d, Linear
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


@dataclass(frozen=True)
class Erratum:
    id: str
    seed: str  # "000" .. "004"
    section: str  # where in the note
    says: str  # what the note prints
    right: str  # the right value or statement
    why: str  # the working
    value: int | float | None = None  # the right number, exact (None for statements)
    kind: str = "arithmetic"
    cell: Cell | None = None  # the summary cell this erratum footnotes

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in FIELDS}
        d.update(kind=self.kind, value=self.value)
        return d


def _fc(column: str, n_in: int, n_out: int) -> Cell:
    return Cell(column, "Linear", (n_in,), (n_out,))


def _conv(column: str, c_in: int, hw_in: int, c_out: int, hw_out: int) -> Cell:
    return Cell(column, "Conv2d", (c_in, hw_in, hw_in), (c_out, hw_out, hw_out))


ERRATA: tuple[Erratum, ...] = (
    # ---- seed 001: AlexNet table (torchvision widths 64-192-384-256-256, input 227)
    Erratum(
        id="001-alexnet-conv4-macs",
        seed="001",
        section="AlexNet table, conv4 row, flop (M)",
        says="145",
        right="150 (149,520,384 MACs = 149.5 M)",
        value=256 * 13 * 13 * 384 * 3 * 3,
        why="MACs = (C_out*H'*W') * (C_in*K*K) = (256*13*13) * (384*3*3) = 43,264 * 3,456 "
        "= 149,520,384; no rounding of the inputs gives 145",
        cell=_conv("macs", 384, 13, 256, 13),
    ),
    Erratum(
        id="001-alexnet-fc6-params",
        seed="001",
        section="AlexNet table, fc6 row, params (k)",
        says="37,749",
        right="37,753 (9216*4096 + 4096 = 37,752,832)",
        value=9216 * 4096 + 4096,
        why="the seed counts the weights 9216*4096 = 37,748,736 and forgets the 4,096 biases, "
        "although it includes the bias for every conv row (conv1: 64*3*11*11 + 64)",
        cell=_fc("params", 9216, 4096),
    ),
    Erratum(
        id="001-alexnet-fc7-params",
        seed="001",
        section="AlexNet table, fc7 row, params (k)",
        says="16,777",
        right="16,781 (4096*4096 + 4096 = 16,781,312)",
        value=4096 * 4096 + 4096,
        why="bias left out: 4096*4096 = 16,777,216 weights plus 4,096 biases",
        cell=_fc("params", 4096, 4096),
    ),
    Erratum(
        id="001-alexnet-fc8-params",
        seed="001",
        section="AlexNet table, fc8 row, params (k)",
        says="4,096",
        right="4,097 (4096*1000 + 1000 = 4,097,000)",
        value=4096 * 1000 + 1000,
        why="bias left out: 4096*1000 = 4,096,000 weights plus 1,000 biases",
        cell=_fc("params", 4096, 1000),
    ),
    # ---- seed 001: VGG
    Erratum(
        id="001-vgg-padding",
        seed="001",
        section="VGG-16 slide: 'Filter 3x3, Padding 2, Stride 1'",
        says="Padding 2",
        right="Padding 1",
        value=1,
        why="VGG keeps H and W through every 3x3 conv: (N - 3 + 2P)/1 + 1 = N needs P = 1; "
        "with P = 2 every conv would grow the map by 2 (224 -> 226)",
        kind="config",
    ),
    Erratum(
        id="001-vgg-channel-growth",
        seed="001",
        section="VGG-16 slide: channels 'double or triple' at each max-pool",
        says="두 배 혹은 세 배 (x2 or x3)",
        right="x2, then x1 (64-128-256-512-512)",
        value=None,
        why="VGG's stages have 64, 128, 256, 512, 512 channels: each pool doubles C except the "
        "last, which keeps 512; no stage triples it",
        kind="config",
    ),
    Erratum(
        id="001-vgg16-fc6-params",
        seed="001",
        section="GAP slide, VGG-16 fc6 row, params (K)",
        says="102760",
        right="102,765 (25088*4096 + 4096 = 102,764,544)",
        value=25088 * 4096 + 4096,
        why="bias left out (25088*4096 = 102,760,448 weights) as in the AlexNet table",
        cell=_fc("params", 25088, 4096),
    ),
    Erratum(
        id="001-vgg16-fc7-params",
        seed="001",
        section="GAP slide, VGG-16 fc7 row, params (K)",
        says="16777",
        right="16,781 (16,781,312)",
        value=4096 * 4096 + 4096,
        why="bias left out",
        cell=_fc("params", 4096, 4096),
    ),
    Erratum(
        id="001-vgg16-fc8-params",
        seed="001",
        section="GAP slide, VGG-16 fc8 row, params (K)",
        says="4096",
        right="4,097 (4,097,000)",
        value=4096 * 1000 + 1000,
        why="bias left out",
        cell=_fc("params", 4096, 1000),
    ),
    # ---- seed 001: GoogLeNet
    Erratum(
        id="001-googlenet-fc-memory",
        seed="001",
        section="GoogLeNet GAP table, fc row, memory (KB)",
        says="0",
        right="4 (1000 * 4 B / 1024 = 3.9 KB)",
        value=1000 * 4,
        why="1,000 float32 outputs take 4,000 bytes; the seed prints 4 KB for AlexNet's fc8, "
        "which has the same 1,000 outputs",
        kind="rounding",
        cell=_fc("activation_bytes", 1024, 1000),
    ),
    Erratum(
        id="001-googlenet-conv1-floor",
        seed="001",
        section="GoogLeNet stem table, first conv (7x7, stride 2, pad 3 at 224): H/W 112",
        says="112",
        right="112, but only by flooring (224 - 7 + 2*3)/2 + 1 = 112.5",
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
        section="Receptive field: R_out = R_in + (K - 1) x S, and its table",
        says="R_out = R_in + (K-1)*S;  9+(3-1)*2=11",
        right="R_out = R_in + (K_eff - 1) * J_in, J_out = J_in * S;  9 + (3-1)*1 = 11",
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
        section="AlexNet table, Conv1 #Parameter",
        says="11.6K",
        right="34,944 (11*11*3*96 + 96); 34.8K weights",
        value=11 * 11 * 3 * 96 + 96,
        why="11.6K = 11*11*96 = 11,616: the input channels (3) are missing, and the bias; it is "
        "not a per-GPU count either (11*11*3*48 = 17,424)",
        cell=_conv("params", 3, 227, 96, 55),
    ),
    Erratum(
        id="000-alexnet-conv2-params",
        seed="000",
        section="AlexNet table, Conv2 #Parameter",
        says="6.4K",
        right="307,456 (5*5*48*256 + 256, the paper's two GPU groups); 614,656 on one GPU",
        value=5 * 5 * 48 * 256 + 256,
        why="6.4K = 5*5*256: K*K*C_out without the input channels (48 per group of the 96)",
        cell=_conv("params", 96, 27, 256, 27),
    ),
    Erratum(
        id="000-alexnet-conv3-params",
        seed="000",
        section="AlexNet table, Conv3 #Parameter",
        says="3.5K",
        right="885,120 (3*3*256*384 + 384; conv3 sees both GPUs' maps)",
        value=3 * 3 * 256 * 384 + 384,
        why="3.5K = 3*3*384 = 3,456: the 256 input channels are missing",
        cell=_conv("params", 256, 13, 384, 13),
    ),
    Erratum(
        id="000-alexnet-conv4-params",
        seed="000",
        section="AlexNet table, Conv4 #Parameter",
        says="3.5K",
        right="663,936 (3*3*192*384 + 384, two groups); 1,327,488 on one GPU",
        value=3 * 3 * 192 * 384 + 384,
        why="3.5K = 3*3*384: the 192 input channels per group are missing",
        cell=_conv("params", 384, 13, 384, 13),
    ),
    Erratum(
        id="000-alexnet-conv5-params",
        seed="000",
        section="AlexNet table, Conv5 #Parameter",
        says="2.3K",
        right="442,624 (3*3*192*256 + 256, two groups); 884,992 on one GPU",
        value=3 * 3 * 192 * 256 + 256,
        why="2.3K = 3*3*256 = 2,304: the 192 input channels per group are missing",
        cell=_conv("params", 384, 13, 256, 13),
    ),
    Erratum(
        id="000-alexnet-fc6-params",
        seed="000",
        section="AlexNet table, FC6 #Parameter",
        says="37749K",
        right="37,753K (37,752,832)",
        value=9216 * 4096 + 4096,
        why="bias left out, as in seed 001",
        cell=_fc("params", 9216, 4096),
    ),
    Erratum(
        id="000-alexnet-fc7-params",
        seed="000",
        section="AlexNet table, FC7 #Parameter",
        says="16777K",
        right="16,781K (16,781,312)",
        value=4096 * 4096 + 4096,
        why="bias left out",
        cell=_fc("params", 4096, 4096),
    ),
    Erratum(
        id="000-alexnet-fc8-params",
        seed="000",
        section="AlexNet table, FC8 #Parameter",
        says="4096K",
        right="4,097K (4,097,000)",
        value=4096 * 1000 + 1000,
        why="bias left out",
        cell=_fc("params", 4096, 1000),
    ),
    Erratum(
        id="000-googlenet-top5",
        seed="000",
        section="ResNet section: 'GoogleNet (22 layers - 6.3%)'",
        says="6.3%",
        right="6.7% (6.67% top-5, ILSVRC 2014)",
        value=None,
        why="GoogLeNet's ILSVRC 2014 classification result is 6.67% top-5 error (Szegedy et al. "
        "2015, Going Deeper with Convolutions, Table 2)",
        kind="fact",
    ),
    # ---- seed 002
    Erratum(
        id="002-zfnet-conv1-stride",
        seed="002",
        section="AlexNet vs ZFNet: '11x11 -> 7x7, stride -> 1'",
        says="stride 1",
        right="stride 2",
        value=2,
        why="ZFNet's first layer is 7x7 with stride 2 (Zeiler & Fergus 2014, Fig. 3); seed 000 "
        "says so too. Stride 1 at 224 would give a 218x218 map instead of 110x110: "
        "3.9x the activations and MACs",
        kind="fact",
    ),
    Erratum(
        id="002-gap-fc-weights",
        seed="002",
        section="GoogLeNet GAP: '7 x 7 x 1024 x 1024 = 51.3M'",
        says="51.3M",
        right="51.4M (51,380,224)",
        value=7 * 7 * 1024 * 1024,
        why="7*7*1024*1024 = 51,380,224, which rounds to 51.4M (51.3M truncates); plus 1,024 "
        "biases for an FC layer",
        kind="rounding",
        cell=Cell("weights", "Linear", (50176,), (1024,)),
    ),
    # ---- seed 004
    Erratum(
        id="004-bottleneck-30pct",
        seed="004",
        section="GoogLeNet: '1x1 convolution reduces 30% of the parameters'",
        says="30% 줄일 수 있습니다 (reduce by 30%)",
        right="reduces them TO about 30% (by about 70%)",
        value=1 * 1 * 128 * 32 + 3 * 3 * 32 * 128,
        why="the usual example, 3x3 conv 128->128 (147,456 weights) against 1x1 128->32 then "
        "3x3 32->128 (4,096 + 36,864 = 40,960), keeps 27.8% of the weights: a 72% cut",
    ),
    Erratum(
        id="004-densenet-vs-resnet",
        seed="004",
        section="DenseNet: 'not concatenation like ResNet's x + f(x) but addition'",
        says="DenseNet adds, ResNet concatenates",
        right="ResNet adds (x + f(x)); DenseNet concatenates [x, f(x)]",
        value=None,
        why="swapped: ResNet's shortcut is an elementwise sum, so channels stay fixed; DenseNet "
        "concatenates, which is why its channels grow (as the same paragraph then says)",
        kind="fact",
    ),
    # ---- statements and figures the notes get wrong (checked against the papers)
    Erratum(
        id="000-googlenet-no-fc",
        seed="000",
        section="GoogleNet: 'Fully-connected layer를 사용하지 않기 때문에' "
        "(because it uses no FC layer)",
        says="GoogLeNet uses no fully-connected layer",
        right="GoogLeNet keeps one FC layer, the 1024 -> 1000 classifier (1,025,000 parameters), "
        "after global average pooling; it drops AlexNet's and VGG's 4096-wide FC layers",
        why="Szegedy et al. 2015, Table 1: 'avg pool 7x7/1, dropout (40%), linear 1x1x1000'. "
        "1024*1000 + 1000 = 1,025,000. Seed 002 says the same ('not a single weight is needed'): "
        "the pooling has none, the classifier after it does",
        value=1024 * 1000 + 1000,
        kind="statement",
        cell=_fc("params", 1024, 1000),
    ),
    Erratum(
        id="000-googlenet-12x-fewer",
        seed="000",
        section="GoogleNet: 'AlexNet 대비 12배 적은 parameter' (12x fewer parameters than AlexNet)",
        says="12x fewer parameters than AlexNet",
        right="8.7x fewer (paper forms: 60,965,224 / 6,998,552) or 9.2x (torchvision's forms: "
        "61,100,840 / 6,624,904), auxiliary heads left out",
        why="the 12x is the GoogLeNet paper's own claim (Szegedy et al. 2015, section 1); "
        "counting the networks as the papers build them gives 8.7x. The auxiliary classifiers "
        "(used only in training) add 6.4 M more, which would make it 4.6x",
        value=8.7,
        kind="arithmetic",
    ),
    Erratum(
        id="000-vgg-fewer-params",
        seed="000",
        section="VGGNet: '또한 parameter 수를 줄였다' (it also reduced the number of parameters)",
        says="VGG has fewer parameters (than AlexNet)",
        right="VGG-16 has 138,357,544 parameters, 2.26x AlexNet's 61,100,840 (2.27x the paper's "
        "60,965,224)",
        why="3x3 stacks need fewer weights than one large kernel for the same receptive field "
        "(2 x 9C^2 < 25C^2), but VGG is much deeper and its fc6 alone (25088*4096 + 4096 = "
        "102,764,544) is larger than the whole of AlexNet",
        value=2.26,
        kind="arithmetic",
    ),
    Erratum(
        id="004-alexnet-11x11-params",
        seed="004",
        section="AlexNet: '11x11 filter를 사용하면 ... parameter 숫자가 엄청나게 늘어나게 됩니다' "
        "(the 11x11 filter makes the parameter count grow enormously)",
        says="the 11x11 filters make AlexNet's parameters grow enormously",
        right="conv1 (11*11*3*96 + 96 = 34,944) holds 0.06% of AlexNet's 60,965,224 parameters; "
        "the three FC layers hold 58,631,144 (96%)",
        why="a kernel's weights are K*K*C_in*C_out: conv1 has only 3 input channels. The "
        "parameters sit in fc6 (9216*4096 + 4096 = 37,752,832) and fc7/fc8",
        value=34944,
        kind="arithmetic",
    ),
    Erratum(
        id="004-vgg-year",
        seed="004",
        section="'2) VGGNet (2015)'",
        says="VGGNet (2015)",
        right="VGGNet was an ILSVRC 2014 entry (2nd in classification, 1st in localisation); "
        "the paper appeared at ICLR 2015",
        why="Simonyan & Zisserman, arXiv 1409.1556 (September 2014), 'our ImageNet Challenge "
        "2014 submission'",
        value=2014,
        kind="fact",
    ),
    Erratum(
        id="004-googlenet-year",
        seed="004",
        section="'3) GoogleNet (2015)'",
        says="GoogleNet (2015)",
        right="GoogLeNet won ILSVRC 2014 classification; the paper appeared at CVPR 2015",
        why="Szegedy et al., arXiv 1409.4842 (September 2014): 'the ILSVRC 2014 classification "
        "challenge'",
        value=2014,
        kind="fact",
    ),
    Erratum(
        id="004-yolo-b-times-5",
        seed="004",
        section="YOLO: 'S x S x (B * 5 + C)', with 'B * 5 : 5개의 bounding box에 대한 (x,y,w,h)의 "
        "값' (B*5: the (x, y, w, h) of 5 bounding boxes)",
        says="B·5 = (x, y, w, h) of 5 bounding boxes",
        right="B·5 = B boxes x 5 numbers (x, y, w, h, confidence); 7 x 7 x (2*5 + 20) = "
        "7 x 7 x 30 = 1,470",
        why="the 5 is the five numbers each box carries, x, y, w, h and a confidence "
        "(Pr(object) * IoU), not a count of boxes, and there are B boxes per cell, not 5 "
        "(Redmon et al. 2016, section 2: S = 7, B = 2, C = 20 gives a 7 x 7 x 30 tensor). Read "
        "as '4 numbers of 5 boxes' it would be 20 numbers per cell and leave out the confidence",
        value=7 * 7 * (2 * 5 + 20),
        kind="statement",
    ),
    Erratum(
        id="004-densenet-growth",
        seed="004",
        section="DenseNet: '채널이 기하급수적으로 늘어나게 되고' (the channels grow exponentially)",
        says="DenseNet's channels grow exponentially",
        right="linearly: each layer adds k channels (the growth rate), so layer l of a block "
        "sees k0 + (l-1)*k; DenseNet-121's first block ends at 64 + 6*32 = 256",
        why="Huang et al. 2017, section 3 ('growth rate'); transitions then halve the channels "
        "(compression 0.5): 256 -> 128 -> 128 + 12*32 = 512",
        value=64 + 6 * 32,
        kind="statement",
    ),
    Erratum(
        id="004-resnet-bottleneck",
        seed="004",
        section="ResNet: '1x1 convolution을 3x3 convolution 사이에 넣어서' (a 1x1 conv put between "
        "3x3 convs)",
        says="the bottleneck puts a 1x1 convolution between 3x3 convolutions",
        right="the bottleneck is 1x1 (reduce) -> 3x3 -> 1x1 (restore); in ResNet-50: "
        "256 -> 64, 3x3 64 -> 64, 64 -> 256: 69,632 weights against 1,179,648 for two 3x3 "
        "convs at 256 channels",
        why="He et al. 2016, Fig. 5 (right). 1*1*256*64 + 3*3*64*64 + 1*1*64*256 = 16,384 + "
        "36,864 + 16,384 = 69,632",
        value=1 * 1 * 256 * 64 + 3 * 3 * 64 * 64 + 1 * 1 * 64 * 256,
        kind="statement",
    ),
    Erratum(
        id="004-deconv-same-filter",
        seed="004",
        section="Deconvolution: 'filter는 convolution했던 filter와 같아야하며' (the filter must be "
        "the one the convolution used)",
        says="a deconvolution must reuse the convolution's filter",
        right="a transposed convolution learns its own kernel; it only has the transposed "
        "shape of a convolution (it maps the output size back to the input size)",
        why="Long et al. 2015 (FCN), section 3.3: upsampling by a deconvolution layer whose "
        "filter is initialised to bilinear interpolation and then learned. nn.ConvTranspose2d "
        "has its own weight tensor [C_in, C_out/groups, K, K]",
        kind="statement",
    ),
    Erratum(
        id="004-rcnn-random-regions",
        seed="004",
        section="R-CNN: '2000개의 일정한 region을 랜덤으로 뽑고' "
        "(picks 2000 fixed regions at random)",
        says="R-CNN picks 2,000 uniform regions at random",
        right="about 2,000 region proposals per image come from selective search, a bottom-up "
        "grouping of superpixels; they vary in size and are warped to 227x227",
        why="Girshick et al. 2014, section 2.1 ('we use selective search')",
        value=2000,
        kind="statement",
    ),
    Erratum(
        id="004-lrn-kills-inputs",
        seed="004",
        section="AlexNet: 'Local response (... response가 많이 나오면 입력 몇 개를 죽이는 것) "
        "normalization' (kills some inputs where responses are large)",
        says="LRN kills some inputs where responses are large",
        right="LRN divides each activation by (k + alpha * sum of the squares of n = 5 "
        "neighbouring channels at the same position)^beta; nothing is set to zero",
        why="Krizhevsky et al. 2012, section 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75 "
        "(nn.LocalResponseNorm). It damps, it never drops",
        kind="statement",
    ),
    Erratum(
        id="004-dropout-weights",
        seed="004",
        section="AlexNet: 'Dropout (neural network의 가중치 일부분을 0으로 바꾸는 것)' (sets some "
        "weights to 0)",
        says="dropout sets some of the network's weights to zero",
        right="dropout zeroes units' outputs (activations), each with probability p, and scales "
        "the kept ones by 1/(1-p); zeroing weights is DropConnect (Wan et al. 2013)",
        why="Srivastava et al. 2014; AlexNet used p = 0.5 in fc6 and fc7 (Krizhevsky et al. "
        "2012, section 4.2). nn.Dropout acts on its input tensor, not on a weight",
        kind="statement",
    ),
    Erratum(
        id="001-lenet-sigmoid",
        seed="001",
        section="LeNet-5: '비선형함수도 ReLU가 아닌 Sigmoid' "
        "(the nonlinearity is a sigmoid, not ReLU)",
        says="LeNet-5's nonlinearity is a sigmoid",
        right="a scaled hyperbolic tangent, f(a) = 1.7159 * tanh(2/3 * a)",
        why="LeCun et al. 1998, section II.B and Appendix A: A = 1.7159, S = 2/3 so that "
        "f(1) = 1 and f(-1) = -1 (cnnlab's lenet5_1998 uses it)",
        value=1.7159,
        kind="statement",
    ),
    Erratum(
        id="001-bn-sigma-std",
        seed="001",
        section="Batch Normalization: sigma_j^2 = (1/N) sum (x_ij - mu_j)^2, 'Per-channel std'",
        says="sigma_j^2 is the per-channel standard deviation",
        right="sigma_j^2 is the per-channel variance; the standard deviation is sigma_j = its "
        "square root, and x is divided by sqrt(sigma_j^2 + eps)",
        why="the formula shown is the (biased) variance, Ioffe & Szegedy 2015, Algorithm 1",
        kind="statement",
    ),
    Erratum(
        id="001-covariate-shift",
        seed="001",
        section="Batch Normalization: 'Batch 단위로 학습하기 때문에 ... Internal Covariant Shift' "
        "(because we train in batches, ... internal covariant shift)",
        says="'Internal Covariant Shift', caused by training in batches",
        right="internal covariate shift: each layer's input distribution changes because the "
        "parameters of the layers before it change during training",
        why="Ioffe & Szegedy 2015, section 2: 'the change in the distributions of internal "
        "nodes of a deep network, in the course of training'; a covariate is an input "
        "variable. It would happen with full-batch training too",
        kind="statement",
    ),
)


def errata(seed: str | None = None, kind: str | None = None) -> list[Erratum]:
    """The errata of one seed ("000".."004"; "1" means "001") and/or kind, in document order."""
    if seed is not None and seed.isdigit():
        seed = seed.zfill(3)
    if seed is not None and seed not in SEEDS:
        raise ConfigError(f"unknown seed {seed!r}", f"choose one of: {', '.join(SEEDS)}")
    if kind is not None and kind not in KINDS:
        raise ConfigError(
            f"unknown kind {kind!r}", suggest(kind, KINDS) or f"choose one of: {', '.join(KINDS)}"
        )
    return [
        e for e in ERRATA if (seed is None or e.seed == seed) and (kind is None or e.kind == kind)
    ]


def by_id(erratum_id: str) -> Erratum:
    """One erratum by its id; ``KeyError`` lists the ids."""
    for e in ERRATA:
        if e.id == erratum_id:
            return e
    raise KeyError(f"no erratum {erratum_id!r}; known: {', '.join(e.id for e in ERRATA)}")


# ------------------------------------------------------------------------------------------
# footnotes for cnnlab summary / compare


def _matches(cell: Cell, row, value) -> bool:
    return (
        row.type == cell.type
        and tuple(row.input_shape or ()) == cell.input_shape
        and tuple(row.output_shape or ()) == cell.output_shape
        and getattr(row, cell.column, None) == value
    )


def footnotes(rows, label: str = "") -> list[str]:
    """One footnote per summary row holding a value a note prints wrong: which row, which
    column, what each note prints and the erratum ids (``cnnlab errata`` explains them).
    ``rows`` are :class:`cnnlab.analysis.summary.LayerRow` objects (per batch of 1)."""
    notes = []
    for row in rows:
        hits: dict[str, list[Erratum]] = {}
        for e in ERRATA:
            if e.cell is not None and _matches(e.cell, row, e.value):
                hits.setdefault(e.cell.column, []).append(e)
        for column, es in hits.items():
            said = "; ".join(
                f"seed {e.seed} says {e.says!r}"
                if e.kind == "statement"
                else f"seed {e.seed} {e.section.split(',')[0]} prints {e.says}"
                for e in es
            )
            where = f"{label}{row.name}"
            notes.append(
                f"errata: {where} {column.replace('_', ' ')} = {getattr(row, column):,}, where "
                f"the notes are wrong ({said}); see `cnnlab errata` [{', '.join(e.id for e in es)}]"
            )
    return notes


# ------------------------------------------------------------------------------------------
# renderings for cnnlab errata


def to_json(entries: list[Erratum]) -> str:
    import json

    return json.dumps([e.to_dict() for e in entries], indent=2, ensure_ascii=False) + "\n"


def to_markdown(entries: list[Erratum]) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = ["| id | seed | section | the note says | right | why |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cell(str(getattr(e, k))) for k in FIELDS) + " |" for e in entries]
    return "\n".join(lines) + "\n"


def to_text(entries: list[Erratum]) -> str:
    import textwrap

    out = []
    for e in entries:
        out.append(f"[{e.id}]  seed {e.seed} · {e.kind}")
        for label, text in (("where", e.section), ("says", e.says), ("right", e.right),
                            ("why", e.why)):  # fmt: skip
            out.append(
                textwrap.fill(
                    text, 96, initial_indent=f"  {label:<6} ", subsequent_indent=" " * 9
                )  # fmt: skip
            )
        out.append("")
    n_num = sum(e.value is not None for e in entries)
    out.append(f"{len(entries)} errata ({n_num} with a number cnnlab recomputes)")
    return "\n".join(out) + "\n"


def render(entries: list[Erratum], fmt: str = "text") -> str:
    renderers = {"text": to_text, "json": to_json, "markdown": to_markdown}
    if fmt not in renderers:
        raise ConfigError(f"unknown format {fmt!r}", f"choose one of: {', '.join(renderers)}")
    return renderers[fmt](entries)
