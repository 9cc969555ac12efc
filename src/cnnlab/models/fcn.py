"""FCN: fully convolutional networks for semantic segmentation (seed 004, section 4).

Paper: J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015 (arXiv:1411.4038). A classifier's fully connected layers become
convolutions (section 3.1), a 1x1 convolution scores every class at every position, and
transposed convolutions ("deconvolution", section 3.3) upsample the coarse scores back to the
input size. Skip connections (section 4.2, Figure 3) add finer scores from earlier pools:

========  ===========================================================================
name      what comes out
========  ===========================================================================
fcn32s    score_fr (stride 32) upsampled x32 in one step
fcn16s    2 x score_fr + score_pool4 (stride 16), upsampled x16
fcn8s     2 x (2 x score_fr + score_pool4) + score_pool3 (stride 8), upsampled x8
========  ===========================================================================

The paper forms follow the authors' VGG-16 nets: the first convolution pads by 100 so that any
input size survives the 7x7 ``fc6`` convolution, pools round up (Caffe's ceil mode), and each
score map is cropped by the offsets the authors' Caffe ``Crop`` layers use (5 and 9 for the
pool4 and pool3 scores; 19, 27 and 31 for the final 32x, 16x and 8x outputs), so the output has
exactly the input's height and width. Transposed convolutions start as bilinear upsampling
(:func:`bilinear_kernel`); the intermediate ones (``upscore2``, ``upscore_pool4``) learn, the
final one stays fixed, and the new score layers start at zero (section 4.3). ``features`` keeps
torchvision's VGG-16 names, so ``vgg16`` weights load into it.

The small forms (``fcn32s_small``, ``fcn16s_small``, ``fcn8s_small``; not from the paper) keep
the three skip structures on a five-pool 3x3 stack with batch norm and "same" padding, so no
100-pixel border is needed: each transposed convolution (kernel 2f, stride f, padding f/2)
upsamples exactly f times and the crop is at offset 0. Their fixed final upsampling is
depthwise (one bilinear kernel per class, ``groups=classes``: the same map as the paper's
diagonal kernel with ``classes`` times fewer multiplications). Every form runs that fixed layer
in float32 under bf16 autocast (a CPU has no fast bf16 transposed convolution). They train on a
CPU in minutes on ``digits-seg``.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.registry import register_model
from cnnlab.models.vgg import CONFIGS, M, make_features

__all__ = ["FCN", "bilinear_kernel", "bilinear_upsampler"]

PAPER = "Long, Shelhamer & Darrell, 2015"
STRIDES = (32, 16, 8)

# (upscore2 crop of score_pool4, crop of score_pool3, final crop) in the paper nets (pad 100)
PAPER_OFFSETS = {
    32: {"out": 19},
    16: {"pool4": 5, "out": 27},
    8: {"pool4": 5, "pool3": 9, "out": 31},
}

SMALL_CONFIG = [16, M, 32, M, 64, 64, M, 128, 128, M, 128, 128, M]


def bilinear_kernel(channels: int, kernel_size: int, *, depthwise: bool = False) -> torch.Tensor:
    """A ``[channels, channels, k, k]`` transposed-conv weight that upsamples each channel
    bilinearly by ``f = ceil(k / 2)`` (channel c feeds only channel c); ``depthwise``: the
    ``[channels, 1, k, k]`` weight of the same upsampling as a grouped (``groups=channels``) one.

    Filter value at (i, j): (1 - |i - centre| / f) (1 - |j - centre| / f), centre = f - 1 for
    odd k and f - 0.5 for even k, the kernel of the authors' ``surgery.upsample_filt``.
    """
    f = (kernel_size + 1) // 2
    centre = f - 1 if kernel_size % 2 == 1 else f - 0.5
    # on the CPU even inside a meta-device build (cnnlab summary): it is small, and meta
    # arange is a Python decomposition whose first call imports torch._dynamo (seconds)
    og = torch.arange(kernel_size, dtype=torch.float64, device="cpu")
    filt = 1 - (og - centre).abs() / f
    k2 = (filt[:, None] * filt[None, :]).float()
    if depthwise:
        return k2.expand(channels, 1, kernel_size, kernel_size).clone()
    weight = torch.zeros(channels, channels, kernel_size, kernel_size, device="cpu")
    weight[range(channels), range(channels)] = k2
    return weight


def bilinear_upsampler(
    channels: int,
    factor: int,
    *,
    padding: int = 0,
    trainable: bool = True,
    depthwise: bool = False,
) -> nn.ConvTranspose2d:
    """ConvTranspose2d(kernel 2f, stride f, no bias) initialised to bilinear upsampling;
    ``depthwise``: grouped per channel (the same map while the weight is bilinear, with
    ``channels`` times fewer weights and multiplications; it cannot learn to mix classes)."""
    groups = channels if depthwise else 1
    up = nn.ConvTranspose2d(
        channels, channels, 2 * factor, factor, padding, bias=False, groups=groups
    )
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, 2 * factor, depthwise=depthwise))
    up.weight.requires_grad_(trainable)
    return up


def _crop(x: torch.Tensor, like: torch.Tensor, offset: int) -> torch.Tensor:
    """x[..., o:o+H, o:o+W] with (H, W) of ``like`` (Caffe's Crop layer)."""
    h, w = like.shape[-2:]
    return x[..., offset : offset + h, offset : offset + w]


def _pool_indices(features: nn.Sequential) -> list[int]:
    return [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]


class FCN(nn.Module):
    """A VGG-style ``features`` stack, fc6/fc7 as convolutions, class scores and upsampling.

    ``stride`` 32, 16 or 8 picks FCN-32s, -16s or -8s; ``offsets`` are the crops (see the
    module docstring); ``head_kernel`` is fc6's kernel (7 for the paper, 3 for small forms);
    ``zero_init`` starts the score layers at zero (the paper, whose backbone is pre-trained;
    a net trained from scratch keeps PyTorch's default initialisation there instead);
    ``depthwise_upscore`` makes the fixed final upsampling grouped per class (the same map).
    """

    def __init__(
        self,
        features: nn.Sequential,
        num_classes: int,
        *,
        stride: int = 8,
        head_width: int = 4096,
        head_kernel: int = 7,
        dropout: float = 0.5,
        offsets: dict | None = None,
        batch_norm: bool = False,
        zero_init: bool = True,
        depthwise_upscore: bool = False,
    ):
        super().__init__()
        if stride not in STRIDES:
            raise ConfigError(f"FCN stride must be one of {STRIDES}, got {stride}")
        pools = _pool_indices(features)
        if len(pools) != 5:
            raise ConfigError(f"FCN needs a features stack with 5 max-pools, got {len(pools)}")
        self.stride = stride
        self.offsets = dict(offsets or {})
        self.taps = {pools[2]: "pool3", pools[3]: "pool4"}
        convs = [m for m in features if isinstance(m, nn.Conv2d)]
        width = {t: _width_before(features, pools[i]) for i, t in ((2, "pool3"), (3, "pool4"))}
        self.features = features
        # the paper nets crop a padded-by-100 result; "same"-padded nets need no border, and
        # a transposed conv with padding f/2 upsamples them exactly f times
        self.paper = paper = bool(self.offsets)
        layers: list[nn.Module] = []
        c_in = convs[-1].out_channels
        for k in (head_kernel, 1):  # fc6, fc7 as convolutions (section 3.1)
            layers.append(nn.Conv2d(c_in, head_width, k, padding=0 if paper else k // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(head_width))
            layers += [nn.ReLU(inplace=True), nn.Dropout2d(dropout)]
            c_in = head_width
        self.head = nn.Sequential(*layers)
        self.score_fr = nn.Conv2d(head_width, num_classes, 1)

        def up(f: int, trainable: bool = True, depthwise: bool = False) -> nn.ConvTranspose2d:
            pad = 0 if paper else f // 2
            return bilinear_upsampler(
                num_classes, f, padding=pad, trainable=trainable, depthwise=depthwise
            )

        if stride <= 16:
            self.upscore2 = up(2)
            self.score_pool4 = nn.Conv2d(width["pool4"], num_classes, 1)
        if stride == 8:
            self.upscore_pool4 = up(2)
            self.score_pool3 = nn.Conv2d(width["pool3"], num_classes, 1)
        # the last upsampling stays bilinear (section 4.3: "fixed to bilinear interpolation")
        self.upscore = up(stride, trainable=False, depthwise=depthwise_upscore)
        for n in ("score_fr", "score_pool4", "score_pool3") if zero_init else ():
            if hasattr(self, n):  # the class scoring and skip layers start at zero (4.3)
                nn.init.zeros_(getattr(self, n).weight)
                nn.init.zeros_(getattr(self, n).bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = {}
        h = x
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                taps[self.taps[i]] = h
        score = self.score_fr(self.head(h))
        off = self.offsets
        if self.stride <= 16:
            score = self._fuse(self.upscore2(score), self.score_pool4(taps["pool4"]), "pool4")
        if self.stride == 8:
            score = self._fuse(self.upscore_pool4(score), self.score_pool3(taps["pool3"]), "pool3")
        # the fixed upsampling in float32 even under bf16 autocast: a CPU has no fast bf16
        # transposed convolution (fcn8s_small's took 70 ms a batch of 32 where fp32 took 8)
        return _crop(_without_autocast(self.upscore, score), x, off.get("out", 0))

    def _fuse(self, up: torch.Tensor, skip: torch.Tensor, tap: str) -> torch.Tensor:
        # paper nets: the skip scores (larger, from the padded input) are cropped to the
        # upsampled ones; small nets: rounded-up pools leave the upsampled map larger
        if self.paper:
            return up + _crop(skip, up, self.offsets[tap])
        return _crop(up, skip, 0) + skip


def _without_autocast(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    kind = x.device.type  # autocast knows cpu and cuda, not meta (cnnlab summary's builds)
    if torch.amp.is_autocast_available(kind) and torch.is_autocast_enabled(kind):
        with torch.autocast(kind, enabled=False):
            return layer(x.float())
    return layer(x)


def _width_before(features: nn.Sequential, index: int) -> int:
    return [m for m in features[:index] if isinstance(m, nn.Conv2d)][-1].out_channels


def _vgg16_paper_features(in_channels: int) -> nn.Sequential:
    features = make_features(CONFIGS["D"], in_channels)
    features[0].padding = (100, 100)  # any input size survives fc6's 7x7 kernel
    for m in features:
        if isinstance(m, nn.MaxPool2d):
            m.ceil_mode = True  # Caffe rounds pooled sizes up
    return features


def _small_features(in_channels: int, widths) -> nn.Sequential:
    features = make_features(widths, in_channels, batch_norm=True)
    for m in features:
        if isinstance(m, nn.MaxPool2d):
            m.ceil_mode = True  # inputs not divisible by 32 still map back to their size
    return features


def _register(stride: int) -> None:
    name = f"fcn{stride}s"

    def build(num_classes: int = 21, in_channels: int = 3, dropout: float = 0.5) -> FCN:
        return FCN(
            _vgg16_paper_features(in_channels),
            num_classes,
            stride=stride,
            dropout=dropout,
            offsets=PAPER_OFFSETS[stride],
        )

    build.__name__ = name
    build.__doc__ = f"FCN-{stride}s on VGG-16 (Long et al. 2015, Figure 3)."
    register_model(
        name,
        family="FCN",
        paper=PAPER,
        year=2015,
        input_size=(3, 224, 224),
        num_classes=21,
        description=f"FCN-{stride}s, VGG-16, PASCAL VOC's 21 classes",
    )(build)

    def build_small(
        num_classes: int = 11, in_channels: int = 1, head_width: int = 128, dropout: float = 0.1
    ) -> FCN:
        return FCN(
            _small_features(in_channels, SMALL_CONFIG),
            num_classes,
            stride=stride,
            head_width=head_width,
            head_kernel=3,
            dropout=dropout,
            batch_norm=True,
            zero_init=False,  # from scratch: zero scores would cut the backbone's gradient
            depthwise_upscore=True,  # 11x fewer multiplications in the largest layer
        )

    build_small.__name__ = name + "_small"
    build_small.__doc__ = f"Small FCN-{stride}s (5-pool 3x3 BN stack) for digits-seg."
    register_model(
        name + "_small",
        family="FCN",
        paper=PAPER,
        year=2015,
        input_size=(1, 64, 64),
        num_classes=11,
        variant="digits",
        description=f"small FCN-{stride}s for digits-seg (not from the paper)",
    )(build_small)


for _s in STRIDES:
    _register(_s)
