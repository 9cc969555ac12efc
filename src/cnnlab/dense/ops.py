"""The ops of seed 004's detection line: spatial pyramid pooling, anchors and the box coder.

cnnlab's own code is what the lectures teach and no library packages this way:

- :class:`SpatialPyramidPooling` (He et al. 2014, SPPnet): a pyramid of n x n max (or average)
  pools over the whole map, concatenated; C * sum(n^2) features for any input size;
- :func:`grid_anchors` (Ren et al. 2015, Faster R-CNN): sizes x ratios anchors at every feature
  position, with seed 004's parameters by default (128, 256, 512; 0.5, 1, 2; stride 16), equal to
  torchvision's ``AnchorGenerator``; :func:`seed_anchor_generator` builds that torchvision module
  for ``FasterRCNN`` with the same parameters;
- :class:`BoxCoder`: the R-CNN box regression targets (Girshick et al. 2014, appendix C)
  tx = (x - xa)/wa, ty = (y - ya)/ha, tw = log(w/wa), th = log(h/ha), and back.

RoI pooling and align, IoU, NMS and box conversion are torchvision's (``torchvision.ops``),
re-exported here so the dense code has one place to import them from.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.arithmetic.dense import anchor_boxes, spp_output
from cnnlab.errors import ConfigError, ShapeError

__all__ = [
    "SEED_ANCHOR_RATIOS",
    "SEED_ANCHOR_SIZES",
    "SEED_FEATURE_STRIDE",
    "BoxCoder",
    "SpatialPyramidPooling",
    "base_anchors",
    "grid_anchors",
    "seed_anchor_generator",
]  # and TORCHVISION_OPS, added below

# seed 004: "anchor box 3 sizes (128*128, 256*256, 512*512), ratios (1:1, 1:2, 2:1)", on
# VGG-16's conv5_3 (stride 16), as in Ren et al. 2015
SEED_ANCHOR_SIZES = (128, 256, 512)
SEED_ANCHOR_RATIOS = (0.5, 1.0, 2.0)
SEED_FEATURE_STRIDE = 16

# torchvision.ops' names, re-exported on first use: importing torchvision costs 1.5-2 s here (its
# ops import torch._dynamo), which every zoo model built on these ops would otherwise pay
TORCHVISION_OPS = frozenset(
    {"RoIAlign", "RoIPool", "batched_nms", "box_area", "box_convert", "box_iou",
     "clip_boxes_to_image", "nms", "remove_small_boxes", "roi_align", "roi_pool"}
)  # fmt: skip


__all__ += sorted(TORCHVISION_OPS)


def __getattr__(name: str):
    if name in TORCHVISION_OPS:
        import torchvision.ops

        return getattr(torchvision.ops, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SpatialPyramidPooling(nn.Module):
    """Pool a [N, C, H, W] map into [N, C * sum(h*w)] for any H x W (SPPnet, He et al. 2014).

    ``bins`` holds one pyramid level per entry: n (n x n bins) or an (h, w) pair; ``mode`` is
    "max" (the paper) or "avg". Each level is PyTorch's adaptive pooling, whose bins cover
    floor(i*H/n) .. ceil((i+1)*H/n), so every level gives exactly n x n bins at every size
    (``cnnlab shape --type spp`` shows the edges). The output is each level flattened
    channel-major ([C, h, w]) and the levels concatenated in the order given.
    """

    def __init__(self, bins=(4, 2, 1), mode: str = "max"):
        super().__init__()
        bins = [bins] if isinstance(bins, int) else list(bins)
        # the arithmetic validates the levels and is the reference for the output size
        self.bins = tuple(spp_output((1, 1, 1), bins).bins)
        if mode not in ("max", "avg"):
            raise ConfigError(f"unknown SPP mode {mode!r}", "use 'max' (SPPnet) or 'avg'")
        self.mode = mode
        self._pool = F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d

    def output_features(self, channels: int) -> int:
        """Length of the output vector for ``channels`` input maps: C * sum(h*w)."""
        return spp_output((channels, 1, 1), self.bins).features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ShapeError(
                f"SpatialPyramidPooling expects [N, C, H, W], got {tuple(x.shape)}",
                "add a batch dimension with x.unsqueeze(0)",
            )
        return torch.cat([self._pool(x, b).flatten(1) for b in self.bins], dim=1)

    def extra_repr(self) -> str:
        levels = ", ".join(f"{h}x{w}" for h, w in self.bins)
        return f"bins=({levels}), mode={self.mode!r}"


def base_anchors(sizes=SEED_ANCHOR_SIZES, ratios=SEED_ANCHOR_RATIOS, dtype=torch.float32):
    """The A = len(sizes) * len(ratios) anchors centred at 0, [A, 4] xyxy, ratio-major.

    ratio = height / width and each anchor's area is size^2; the corners are rounded to whole
    pixels as torchvision's ``AnchorGenerator`` does (``cnnlab anchors`` shows the working).
    """
    row = anchor_boxes(sizes, ratios)
    return torch.tensor([a["box"] for a in row.anchors], dtype=dtype)


def grid_anchors(
    feature_size,
    stride=SEED_FEATURE_STRIDE,
    sizes=SEED_ANCHOR_SIZES,
    ratios=SEED_ANCHOR_RATIOS,
    *,
    device=None,
    dtype=torch.float32,
) -> torch.Tensor:
    """All anchors over an H x W feature map: [H * W * A, 4] xyxy in image pixels.

    Position (i, j) is centred at (j * stride_w, i * stride_h); rows run over positions
    (row-major) and, within a position, over the A base anchors: the order torchvision's
    ``AnchorGenerator`` and ``RPNHead`` use, so ``grid_anchors((38, 50))`` is the 17,100 anchors
    of a 600 x 800 image on VGG-16's conv5_3.
    """
    if isinstance(feature_size, int):
        feature_size = (feature_size, feature_size)
    if isinstance(stride, int):
        stride = (stride, stride)
    if len(feature_size) != 2 or len(stride) != 2:
        raise ConfigError(
            f"feature_size and stride take (h, w), got {feature_size!r} and {stride!r}",
            "e.g. grid_anchors((38, 50), stride=16)",
        )
    (fh, fw), (sh, sw) = feature_size, stride
    if min(fh, fw, sh, sw) < 1:
        raise ConfigError(
            f"feature size {fh}x{fw} and stride {sh}x{sw} must be positive", "e.g. (38, 50), 16"
        )
    base = base_anchors(sizes, ratios, dtype=dtype).to(device)
    ys = torch.arange(fh, device=device, dtype=torch.int32).to(dtype) * sh
    xs = torch.arange(fw, device=device, dtype=torch.int32).to(dtype) * sw
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    shifts = torch.stack([x, y, x, y], dim=-1).reshape(-1, 1, 4)
    return (shifts + base.view(1, -1, 4)).reshape(-1, 4)


def seed_anchor_generator(sizes=SEED_ANCHOR_SIZES, ratios=SEED_ANCHOR_RATIOS):
    """torchvision's ``AnchorGenerator`` for one feature map with seed 004's 9 anchors.

    For ``torchvision.models.detection.FasterRCNN(backbone, rpn_anchor_generator=...)``; it
    yields the same anchors as :func:`grid_anchors` (a test checks it).
    """
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    return AnchorGenerator(sizes=(tuple(sizes),), aspect_ratios=(tuple(ratios),))


class BoxCoder:
    """Box regression targets relative to anchors (R-CNN's parameterisation) and back.

    encode: tx = wx * (x - xa) / wa, ty = wy * (y - ya) / ha, tw = ww * log(w / wa),
    th = wh * log(h / ha), with (x, y) box centres and (w, h) sizes in pixels (w = x2 - x1);
    decode inverts it, clamping tw, th at ``clamp`` (log(1000/16), as torchvision) so that
    exp() cannot overflow early in training. ``weights`` (1, 1, 1, 1) for an RPN; Fast R-CNN's
    heads in torchvision use (10, 10, 5, 5). Matches ``torchvision``'s internal BoxCoder.
    """

    def __init__(self, weights=(1.0, 1.0, 1.0, 1.0), clamp: float = math.log(1000.0 / 16)):
        if len(weights) != 4 or not all(float(w) > 0 for w in weights):
            raise ConfigError(
                f"BoxCoder weights must be 4 positive numbers, got {weights!r}",
                "e.g. (1, 1, 1, 1) for an RPN or (10, 10, 5, 5) for a Fast R-CNN head",
            )
        self.weights = tuple(float(w) for w in weights)
        self.clamp = float(clamp)

    @staticmethod
    def _check(name: str, t: torch.Tensor, other: torch.Tensor, other_name: str) -> None:
        if t.dim() != 2 or t.shape[1] != 4:
            raise ShapeError(f"{name} must be [N, 4], got {tuple(t.shape)}", "pass boxes as xyxy")
        if t.shape != other.shape:
            raise ShapeError(
                f"{name} {tuple(t.shape)} and {other_name} {tuple(other.shape)} differ in shape",
                f"pass one {other_name[:-1]} per row",
            )

    @staticmethod
    def _centres(boxes: torch.Tensor, name: str):
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        bad = (w <= 0) | (h <= 0)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ShapeError(
                f"{name} {i} {boxes[i].tolist()} has zero or negative width or height",
                "boxes must be xyxy with x2 > x1 and y2 > y1 "
                "(torchvision.ops.remove_small_boxes drops degenerate ones)",
            )
        return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h

    def encode(self, boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """[N, 4] targets (tx, ty, tw, th) that move each anchor onto its box (both xyxy)."""
        self._check("boxes", boxes, anchors, "anchors")
        ax, ay, aw, ah = self._centres(anchors, "anchor")
        x, y, w, h = self._centres(boxes, "box")
        wx, wy, ww, wh = self.weights
        return torch.stack(
            [
                wx * (x - ax) / aw,
                wy * (y - ay) / ah,
                ww * torch.log(w / aw),
                wh * torch.log(h / ah),
            ],
            dim=1,
        )

    def decode(self, deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """[N, 4] xyxy boxes from targets (tx, ty, tw, th) applied to the anchors."""
        self._check("deltas", deltas, anchors, "anchors")
        ax, ay, aw, ah = self._centres(anchors, "anchor")
        wx, wy, ww, wh = self.weights
        dx, dy = deltas[:, 0] / wx, deltas[:, 1] / wy
        dw = (deltas[:, 2] / ww).clamp(max=self.clamp)
        dh = (deltas[:, 3] / wh).clamp(max=self.clamp)
        x, y = dx * aw + ax, dy * ah + ay
        w, h = torch.exp(dw) * aw, torch.exp(dh) * ah
        return torch.stack([x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h], dim=1)
