"""Dense-prediction arithmetic, working shown (seed 004 §5): SPP, RoI pooling, YOLO, anchors.

Pure Python, no torch, like the rest of :mod:`cnnlab.arithmetic`. Each function returns a small
record whose ``working`` lines are what ``cnnlab shape --type spp|roipool|yolo`` and
``cnnlab anchors`` print, and whose numbers the ops in :mod:`cnnlab.dense` are tested against:

- :func:`spp_output`: spatial pyramid pooling (He et al. 2014, SPPnet): a pyramid of n x n bin
  grids over a C x H x W map gives C * sum(n^2) features whatever H and W are (4, 2, 1 bins over
  256 maps: 21 * 256 = 5,376);
- :func:`roi_pool_output`: RoI pooling (Girshick 2015, Fast R-CNN): one RoI of any size -> an
  h x w grid of max-pooled bins, C x h x w features (512 x 7 x 7 = 25,088, VGG-16's fc6 input);
  with a RoI, the cells and bins exactly as ``torchvision.ops.roi_pool`` takes them;
- :func:`yolo_output`: YOLO v1 (Redmon et al. 2016): S x S x (B*5 + C), 7 x 7 x 30 for S=7, B=2,
  C=20, and the layout of one cell;
- :func:`anchor_boxes`: Faster R-CNN anchors (Ren et al. 2015): sizes x ratios per position,
  their widths and heights, the count over a feature map and the RPN heads' 2A and 4A channels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from cnnlab.arithmetic.core import _int, linear_params
from cnnlab.errors import ConfigError, ShapeError

__all__ = [
    "AnchorRow",
    "RoiPoolRow",
    "SppRow",
    "YoloRow",
    "adaptive_bin_edges",
    "anchor_boxes",
    "anchor_shape",
    "roi_pool_output",
    "roi_pool_bins",
    "spp_output",
    "yolo_output",
]


def _n(x: int) -> str:
    return f"{x:,}"


def _g(x: float) -> str:
    """A float as the working prints it: whole numbers plainly, others to 4 decimals."""
    return str(int(x)) if float(x).is_integer() else f"{x:.4f}".rstrip("0")


def _chw(input_shape, what: str) -> tuple[int, int, int]:
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ShapeError(
            f"{what} needs a feature map C x H x W, got {input_shape!r}",
            "pass the input as (C, H, W), e.g. (256, 13, 13); on the CLI --input 256x13x13",
        )
    c, h, w = (_int(v, "input size", 1) for v in input_shape)
    return c, h, w


def _hw_pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ConfigError(f"{name} must be n or an (h, w) pair, got {value!r}")
        return _int(value[0], name, 1), _int(value[1], name, 1)
    v = _int(value, name, 1)
    return v, v


@dataclass
class _Worked:
    working: list[str] = field(default_factory=list, kw_only=True)
    notes: list[str] = field(default_factory=list, kw_only=True)

    def to_dict(self) -> dict:
        def plain(v):
            if isinstance(v, (tuple, list)):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        return {k: plain(v) for k, v in asdict(self).items()}


# ----------------------------------------------------------------------------- SPP


def adaptive_bin_edges(size: int, bins: int) -> list[tuple[int, int]]:
    """[start, end) of each of ``bins`` bins over ``size`` cells, as PyTorch's adaptive pooling.

    Bin i covers floor(i*size/bins) .. ceil((i+1)*size/bins): neighbouring bins may share a cell
    when size/bins is not whole, and every bin holds at least one cell even when bins > size.
    """
    size, bins = _int(size, "size", 1), _int(bins, "bins", 1)
    return [(i * size // bins, -(-(i + 1) * size // bins)) for i in range(bins)]


@dataclass
class SppRow(_Worked):
    input_shape: tuple[int, int, int]
    bins: list[tuple[int, int]]  # (h, w) grid of each pyramid level
    per_level: list[int]  # features contributed by each level: C * h * w
    features: int  # C * sum(h * w): the same for every H x W
    output_shape: tuple[int]


def spp_output(input_shape, bins=(4, 2, 1)) -> SppRow:
    """Spatial pyramid pooling of a C x H x W map: C * sum(n^2) features for any H x W.

    ``bins`` holds one entry per level: n (an n x n grid) or an (h, w) pair.

    >>> spp_output((256, 13, 13), (4, 2, 1)).features
    5376
    """
    c, h, w = _chw(input_shape, "spp")
    bins = [bins] if isinstance(bins, int) else list(bins)  # (4, 2) is two levels, not 4 x 2
    levels = [_hw_pair(b, "bins") for b in bins]
    if not levels:
        raise ConfigError("spp needs at least one pyramid level", "e.g. bins 4,2,1")
    per_level = [c * bh * bw for bh, bw in levels]
    features = sum(per_level)
    cells = [bh * bw for bh, bw in levels]
    working = [f"input: C x H x W = {c} x {h} x {w}"]
    for (bh, bw), n_cells, feats in zip(levels, cells, per_level):
        working.append(
            f"level {bh}x{bw}: {bh}*{bw} = {n_cells} bin{'s' * (n_cells != 1)}, one max per bin "
            f"and channel -> {n_cells} x {c} = {_n(feats)} features"
        )
        for axis, size, nb in (("H", h, bh), ("W", w, bw)):
            if axis == "W" and (w, bw) == (h, bh):
                continue
            edges = adaptive_bin_edges(size, nb)
            spans = " ".join(f"[{a},{b})" for a, b in edges)
            label = "H and W" if (w, bw) == (h, bh) else axis
            working.append(
                f"  bin size {label}: {size}/{nb} = {_g(size / nb)} cells; "
                f"bin edges floor(i*{size}/{nb})..ceil((i+1)*{size}/{nb}): {spans}"
            )
    total = " + ".join(map(str, cells))
    working.append(
        f"features = ({total}) x {c} = {sum(cells)} x {c} = {_n(features)}, whatever H and W are"
    )
    notes = [
        "the bins scale with the map, so any input size gives the same vector for the FC head "
        "(He et al. 2014, SPPnet)"
    ]
    # the paper builds each level as a pool with window ceil(a/n) and stride floor(a/n); say
    # where that recipe gives a different number of bins than the level asks for
    for bh, bw in levels:
        for size, nb in ((h, bh), (w, bw)):
            note = None
            if size < nb:
                note = (
                    f"{size} cells < {nb} bins: adaptive pooling repeats cells; SPPnet's "
                    f"window/stride recipe (stride floor({size}/{nb}) = 0) cannot"
                )
            else:
                win, stride = -(-size // nb), size // nb
                got = (size - win) // stride + 1  # a pool without padding, floored
                if got != nb:
                    note = (
                        f"SPPnet's recipe for {nb} bins over {size} cells (window ceil({size}/"
                        f"{nb}) = {win}, stride floor({size}/{nb}) = {stride}) gives {got} bins, "
                        f"not {nb}; adaptive pooling's edges above always give exactly n"
                    )
            if note and note not in notes:  # a square map: H and W would say it twice
                notes.append(note)
    return SppRow(
        input_shape=(c, h, w),
        bins=levels,
        per_level=per_level,
        features=features,
        output_shape=(features,),
        working=working,
        notes=notes,
    )


# ----------------------------------------------------------------------------- RoI pooling


def _round_half_away(x: float) -> int:
    """C's round(): halves go away from zero (torchvision's roi_pool rounds RoI corners so)."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def roi_pool_bins(roi, out, height: int, width: int, spatial_scale: float = 1.0):
    """The feature cells each bin of ``torchvision.ops.roi_pool`` maxes over.

    ``roi`` is (x1, y1, x2, y2) in image pixels; ``spatial_scale`` = 1 / the feature stride.
    Returns ``(cells, row_edges, col_edges)``: the RoI's (x1, y1, x2, y2) in feature cells
    (corners rounded, inclusive) and, per axis, the [start, end) cells of each bin, clipped to
    the map. An empty bin (start == end) outputs 0.
    """
    oh, ow = _hw_pair(out, "out")
    x1, y1, x2, y2 = (float(v) for v in roi)
    sx, sy = _round_half_away(x1 * spatial_scale), _round_half_away(y1 * spatial_scale)
    ex, ey = _round_half_away(x2 * spatial_scale), _round_half_away(y2 * spatial_scale)
    rh, rw = max(ey - sy + 1, 1), max(ex - sx + 1, 1)

    def edges(start, extent, n, limit):
        out_edges = []
        for i in range(n):
            a = math.floor(i * extent / n) + start
            b = math.ceil((i + 1) * extent / n) + start
            out_edges.append((min(max(a, 0), limit), min(max(b, 0), limit)))
        return out_edges

    return (sx, sy, ex, ey), edges(sy, rh, oh, height), edges(sx, rw, ow, width)


@dataclass
class RoiPoolRow(_Worked):
    input_shape: tuple[int, int, int]
    out: tuple[int, int]
    features: int  # per RoI: C * h * w
    output_shape: tuple[int, int, int]  # per RoI
    roi: tuple[float, float, float, float] | None = None
    stride: int = 1
    roi_cells: tuple[int, int, int, int] | None = None
    row_edges: list[tuple[int, int]] | None = None
    col_edges: list[tuple[int, int]] | None = None


def roi_pool_output(input_shape, out=(7, 7), roi=None, stride: int = 1) -> RoiPoolRow:
    """RoI pooling: every RoI, whatever its size, becomes C x h x w (max over an h x w bin grid).

    ``roi`` (x1, y1, x2, y2 in image pixels) with the feature ``stride`` adds the cells and bins
    torchvision's ``roi_pool`` uses for it (``spatial_scale = 1/stride``).

    >>> roi_pool_output((512, 38, 50), (7, 7)).features
    25088
    """
    c, h, w = _chw(input_shape, "roipool")
    oh, ow = _hw_pair(out, "out")
    stride = _int(stride, "stride", 1)
    features = c * oh * ow
    working = [
        f"feature map: C x H x W = {c} x {h} x {w} (the whole image, convolved once)",
        f"each RoI, whatever its size, is cut into a {oh} x {ow} grid of bins; one max per bin "
        "and channel",
        f"output per RoI: C x {oh} x {ow} = {c} x {oh} x {ow} = {_n(features)} features",
        f"memory per RoI: {_n(features)} * 4 B (float32) = {_n(features * 4)} B "
        f"= {_g(features * 4 / 1024)} KB",
        "params: 0 (pooling has no weights)",
    ]
    notes = [
        "RoI pooling is SPP with one pyramid level (Girshick 2015, Fast R-CNN)",
    ]
    if (c, oh, ow) == (512, 7, 7):
        notes.append(
            "512 x 7 x 7 is exactly VGG-16's pool5 output, so Fast R-CNN reuses VGG's fc6 and "
            "fc7 unchanged on every RoI"
        )
    row = RoiPoolRow(
        input_shape=(c, h, w),
        out=(oh, ow),
        features=features,
        output_shape=(c, oh, ow),
        stride=stride,
        working=working,
        notes=notes,
    )
    if roi is None:
        return row
    if len(roi) != 4:
        raise ConfigError(f"roi must be (x1, y1, x2, y2), got {roi!r}", "e.g. --roi 64,48,320,240")
    x1, y1, x2, y2 = (float(v) for v in roi)
    if x2 < x1 or y2 < y1:
        raise ShapeError(
            f"roi {roi!r} has x2 < x1 or y2 < y1", "give the corners as x1,y1,x2,y2 (xyxy)"
        )
    cells, rows, cols = roi_pool_bins((x1, y1, x2, y2), (oh, ow), h, w, 1 / stride)
    sx, sy, ex, ey = cells
    rh, rw = max(ey - sy + 1, 1), max(ex - sx + 1, 1)
    working += [
        f"RoI ({_g(x1)}, {_g(y1)}, {_g(x2)}, {_g(y2)}) / stride {stride}: cells x "
        f"round({_g(x1)}/{stride}) = {sx} .. round({_g(x2)}/{stride}) = {ex}, y "
        f"round({_g(y1)}/{stride}) = {sy} .. round({_g(y2)}/{stride}) = {ey}",
        f"RoI on the map: {rh} x {rw} cells (ends inclusive); bin = {rh}/{oh} x {rw}/{ow} = "
        f"{_g(rh / oh)} x {_g(rw / ow)} cells",
        "bin rows: " + " ".join(f"[{a},{b})" for a, b in rows),
        "bin cols: " + " ".join(f"[{a},{b})" for a, b in cols),
    ]
    if any(a == b for a, b in rows + cols):
        notes.append("some bins are empty (the RoI leaves the map): they output 0")
    if rh < oh or rw < ow:
        notes.append(
            f"the RoI covers fewer cells than the {oh} x {ow} grid: bins repeat cells "
            "(RoI align, torchvision.ops.roi_align, samples between cells instead)"
        )
    row.roi = (x1, y1, x2, y2)
    row.roi_cells, row.row_edges, row.col_edges = cells, rows, cols
    return row


# ----------------------------------------------------------------------------- YOLO


@dataclass
class YoloRow(_Worked):
    S: int
    B: int
    C: int
    per_cell: int  # B*5 + C
    output_shape: tuple[int, int, int]  # S x S x (B*5 + C)
    outputs: int
    boxes_per_image: int  # S*S*B
    layout: list[tuple[int, int, str]]  # [start, end) of each part of one cell's vector
    fc_params: int  # the paper's last layer: fc 4096 -> S*S*(B*5 + C)


def yolo_output(S: int = 7, B: int = 2, C: int = 20) -> YoloRow:
    """YOLO v1's output tensor: S x S cells, each B boxes x (x, y, w, h, confidence) + C classes.

    >>> yolo_output(7, 2, 20).output_shape
    (7, 7, 30)
    """
    S, B, C = _int(S, "S", 1), _int(B, "B", 1), _int(C, "C", 1)
    per_cell = B * 5 + C
    outputs = S * S * per_cell
    layout = []
    for b in range(B):
        layout.append((5 * b, 5 * b + 5, f"box {b + 1}: x, y, w, h, confidence"))
    layout.append(
        (5 * B, per_cell, f"{C} class probabilities Pr(class | object), one set per cell")
    )
    fc_w, fc_b = linear_params(4096, outputs)
    working = [
        f"grid: S x S = {S} x {S} = {S * S} cells; the cell holding an object's centre predicts it",
        "per box: 5 numbers (x, y, w, h, confidence); per cell: B boxes and one set of C classes",
        f"per cell: B*5 + C = {B}*5 + {C} = {per_cell}",
        f"output: S x S x (B*5 + C) = {S} x {S} x {per_cell} = {_n(outputs)} numbers",
        f"boxes per image: S*S*B = {S}*{S}*{B} = {S * S * B}",
        "cell layout: " + "; ".join(f"[{a}:{b}] {what}" for a, b, what in layout),
        f"the paper's last layer: fc 4096 -> {_n(outputs)}, reshaped to {S}x{S}x{per_cell}: "
        f"4096*{_n(outputs)} + {_n(outputs)} = {_n(fc_w + fc_b)} params",
    ]
    notes = [
        "x, y: the box centre as an offset inside its cell (0..1); w, h: relative to the image "
        "(the loss compares sqrt(w), sqrt(h)); confidence = Pr(object) * IoU(box, truth)",
        "B*5 is 5 numbers for each of the B boxes, not 'the (x, y, w, h) of 5 boxes' as seed 004 "
        "puts it (docs/errata.md, 004-yolo-b-times-5)",
    ]
    return YoloRow(
        S=S,
        B=B,
        C=C,
        per_cell=per_cell,
        output_shape=(S, S, per_cell),
        outputs=outputs,
        boxes_per_image=S * S * B,
        layout=layout,
        fc_params=fc_w + fc_b,
        working=working,
        notes=notes,
    )


# ----------------------------------------------------------------------------- anchors


def anchor_shape(size: float, ratio: float) -> tuple[float, float]:
    """(width, height) of an anchor of ``size`` (sqrt of its area) and ``ratio`` = height / width.

    w = size / sqrt(ratio), h = size * sqrt(ratio): the area stays size^2 (torchvision's
    ``AnchorGenerator`` convention; ratio 0.5 is a wide box, 2 a tall one).
    """
    size, ratio = float(size), float(ratio)
    if not (size > 0 and ratio > 0 and math.isfinite(size) and math.isfinite(ratio)):
        raise ConfigError(
            f"anchor size and ratio must be positive, got size {size}, ratio {ratio}",
            "e.g. sizes 128,256,512 and ratios 0.5,1,2",
        )
    return size / math.sqrt(ratio), size * math.sqrt(ratio)


@dataclass
class AnchorRow(_Worked):
    sizes: list[float]
    ratios: list[float]
    stride: int
    anchors: list[dict]  # one per (ratio, size), in torchvision's order: ratio-major
    per_position: int  # A = len(sizes) * len(ratios)
    rpn_cls_channels: int  # 2A: object / not object per anchor (the paper's softmax)
    rpn_reg_channels: int  # 4A: (tx, ty, tw, th) per anchor
    channels: int  # channels of the RPN's intermediate 3x3 layer
    rpn_params: int  # both 1x1 heads' weights and biases
    feature: tuple[int, int] | None = None
    positions: int | None = None
    total: int | None = None


def anchor_boxes(
    sizes=(128, 256, 512), ratios=(0.5, 1.0, 2.0), feature=None, stride: int = 16, channels=512
) -> AnchorRow:
    """Faster R-CNN's anchors (seed 004: 3 sizes x 3 ratios = 9 per position) and the RPN heads.

    ``feature`` (H, W) adds the number of anchors over the map (H*W*A), centred every
    ``stride`` pixels. ``channels`` is the RPN's intermediate layer width (512 for VGG-16).

    >>> r = anchor_boxes(feature=(38, 50))
    >>> r.per_position, r.total, r.rpn_cls_channels, r.rpn_reg_channels
    (9, 17100, 18, 36)
    """
    sizes = [float(s) for s in sizes]
    ratios = [float(r) for r in ratios]
    if not sizes or not ratios:
        raise ConfigError(
            "anchors need at least one size and one ratio", "e.g. --sizes 128,256,512"
        )
    stride = _int(stride, "stride", 1)
    channels = _int(channels, "channels", 1)
    a = len(sizes) * len(ratios)
    anchors = []
    for r in ratios:  # torchvision orders the base anchors ratio by ratio, sizes within
        for s in sizes:
            w, h = anchor_shape(s, r)
            # torchvision rounds the corners of the anchor centred at 0 (halves to even)
            box = [round(-w / 2), round(-h / 2), round(w / 2), round(h / 2)]
            anchors.append(
                {
                    "size": s,
                    "ratio": r,
                    "width": w,
                    "height": h,
                    "box": box,
                    "box_width": box[2] - box[0],
                    "box_height": box[3] - box[1],
                }  # fmt: skip
            )
    cls, reg = 2 * a, 4 * a
    params = channels * cls + cls + channels * reg + reg
    sz = ", ".join(_g(s) for s in sizes)
    rt = ", ".join(_g(r) for r in ratios)
    working = [
        "w = size / sqrt(ratio), h = size * sqrt(ratio), ratio = h / w: each anchor keeps area "
        "size^2",
    ]
    for an in anchors:
        s, r = an["size"], an["ratio"]
        working.append(
            f"size {_g(s)}, ratio {_g(r)}: w = {_g(s)}/sqrt({_g(r)}) = {an['width']:.2f}, "
            f"h = {_g(s)}*sqrt({_g(r)}) = {an['height']:.2f} -> box {an['box']} "
            f"({an['box_width']} x {an['box_height']} as torchvision rounds it)"
        )
    working += [
        f"anchors per position: A = {len(sizes)} sizes ({sz}) x {len(ratios)} ratios ({rt}) = {a}",
        f"RPN objectness head: 1x1 conv, 2 x A = 2 x {a} = {cls} channels (object or not)",
        f"RPN box head: 1x1 conv, 4 x A = 4 x {a} = {reg} channels (tx, ty, tw, th per anchor)",
        f"both heads: {channels}*{cls} + {cls} + {channels}*{reg} + {reg} = {_n(params)} params "
        f"(on a {channels}-channel 3x3 intermediate layer)",
    ]
    notes = [
        f"torchvision's RPNHead predicts one sigmoid objectness logit per anchor ({a} channels), "
        f"not the paper's two-class softmax ({cls})",
    ]
    row = AnchorRow(
        sizes=sizes,
        ratios=ratios,
        stride=stride,
        anchors=anchors,
        per_position=a,
        rpn_cls_channels=cls,
        rpn_reg_channels=reg,
        channels=channels,
        rpn_params=params,
        working=working,
        notes=notes,
    )
    if feature is not None:
        fh, fw = _hw_pair(feature, "feature")
        positions = fh * fw
        row.feature, row.positions, row.total = (fh, fw), positions, positions * a
        working += [
            f"positions: H x W = {fh} x {fw} = {_n(positions)} (one every {stride} px: centres "
            f"x = 0, {stride}, ..., {(fw - 1) * stride}; y = 0, ..., {(fh - 1) * stride})",
            f"anchors: H x W x A = {fh} x {fw} x {a} = {_n(positions * a)}",
            f"RPN outputs: {fh} x {fw} x {cls} scores and {fh} x {fw} x {reg} offsets "
            f"= {fh} x {fw} x {cls + reg}",
        ]
        notes.append(
            "centres sit on the cells' top-left corners (x * stride), as torchvision's "
            f"AnchorGenerator puts them; the cells' centres would add {_g(stride / 2)}"
        )
    return row
