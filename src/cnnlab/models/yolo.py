"""YOLO v1: detection as one regression, an S x S x (B*5 + C) tensor (seed 004, section 5).

Paper: J. Redmon, S. Divvala, R. Girshick, A. Farhadi, "You Only Look Once: Unified, Real-Time
Object Detection", CVPR 2016 (arXiv:1506.02640).

The image is divided into an S x S grid; the cell that holds an object's centre is responsible
for it. Each cell predicts B boxes (x, y, w, h, confidence: the 5 of "B*5") and C class
probabilities shared by its boxes, so S=7, B=2, C=20 gives 7 x 7 x 30 (section 2). Layout of
one cell in cnnlab: ``[x, y, sqrt(w), sqrt(h), conf] * B`` then ``C`` class scores, where x, y
are the centre's offsets inside the cell (0..1) and w, h are fractions of the image; the network
predicts the square roots of w and h, as the paper does, so the loss can compare them directly.

- ``yolov1``: the paper's network (Figure 3): 24 convolutional layers (1x1 reductions followed
  by 3x3 convolutions, after GoogLeNet), two fully connected layers (4096, then S*S*(B*5+C)),
  leaky ReLU (0.1) everywhere but the last layer, dropout 0.5 after the first FC; 448x448 input.
- ``yolov1_small``: a small conv body (batch norm, three stride-2 stages: 96 -> 12 x 12 cells
  of 8 pixels) with the same output layout and loss, for ``digits-det`` (1x96x96, C=10) on a
  CPU. Not from the paper: its head is per cell (a 3x3 and a 1x1 convolution on the 12 x 12
  map, as YOLO v2 later did) because the paper's FC head learned too slowly here (mAP@0.5 under
  1% after 200 steps of 32 images; ``head="fc"`` keeps it), and its grid is finer than the
  paper's 7 x 7 relative to the objects (digits of 16-36 pixels; 6 x 6 cells of 16 pixels
  reached 23% validation mAP@0.5 in 436 steps at lr 1e-3, 12 x 12 cells of 8 pixels 75% in
  370 steps at lr 2e-3; docs/dense.md).
  The body starts with a stride-2 convolution, so no layer runs at the full 96 x 96.

:class:`YoloLoss` is the paper's sum-squared loss (equation 3) with lambda_coord = 5 and
lambda_noobj = 0.5; :func:`encode_targets` and :func:`decode` turn boxes into the target grid
and predictions back into boxes (torchvision's ``{"boxes", "scores", "labels"}`` dicts).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from cnnlab.arithmetic import conv_output_size
from cnnlab.errors import ConfigError
from cnnlab.models.registry import register_model

__all__ = ["YOLOv1", "YoloLoss", "decode", "encode_targets", "LAMBDA_COORD", "LAMBDA_NOOBJ"]

PAPER = "Redmon et al., 2016"
LAMBDA_COORD = 5.0  # section 2.2
LAMBDA_NOOBJ = 0.5

# Figure 3: (kernel, filters, stride) convs and "M" (2x2 max-pool, stride 2)
M = "M"
PAPER_BODY = (
    [(7, 64, 2), M, (3, 192, 1), M, (1, 128, 1), (3, 256, 1), (1, 256, 1), (3, 512, 1), M]
    + [(1, 256, 1), (3, 512, 1)] * 4
    + [(1, 512, 1), (3, 1024, 1), M]
    + [(1, 512, 1), (3, 1024, 1)] * 2
    + [(3, 1024, 1), (3, 1024, 2), (3, 1024, 1), (3, 1024, 1)]
)
# stride 8: 96 -> 12 x 12; the first convolution already halves the image (digits >= 16 px)
SMALL_BODY = [(3, 16, 2), (3, 32, 1), (3, 32, 2), (3, 64, 1), (3, 64, 2), (3, 128, 1), (3, 128, 1)]


def _body(spec, in_channels: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = in_channels
    for item in spec:
        if item == M:
            layers.append(nn.MaxPool2d(2, 2))
            continue
        k, out, s = item
        layers.append(nn.Conv2d(c, out, k, s, k // 2, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.LeakyReLU(0.1, inplace=True))
        c = out
    return nn.Sequential(*layers)


class YOLOv1(nn.Module):
    """Conv ``features`` -> ``classifier`` -> [N, S, S, B*5+C].

    ``head="fc"`` is the paper's (FC ``hidden``, leaky ReLU, dropout, FC to S*S*(B*5+C));
    ``head="conv"`` computes each cell from its own position of an S x S feature map (a 3x3
    conv to ``hidden`` channels, then a 1x1 conv to B*5+C, the per-cell head YOLO v2 adopted).
    """

    def __init__(
        self,
        features: nn.Sequential,
        feature_shape: tuple[int, int, int],
        *,
        num_classes: int = 20,
        grid: int = 7,
        boxes: int = 2,
        hidden: int = 4096,
        dropout: float = 0.5,
        head: str = "fc",
    ):
        super().__init__()
        if grid < 1 or boxes < 1 or num_classes < 1:
            raise ConfigError("YOLO needs grid >= 1, boxes >= 1 and num_classes >= 1")
        if head not in ("fc", "conv"):
            raise ConfigError(f"unknown YOLO head {head!r}", "use 'fc' (the paper) or 'conv'")
        self.grid, self.boxes, self.num_classes, self.head = grid, boxes, num_classes, head
        self.features = features
        c, h, w = feature_shape
        d = boxes * 5 + num_classes
        if head == "fc":
            self.pool = nn.AdaptiveAvgPool2d((h, w))  # identity at the design size
            self.classifier = nn.Sequential(
                nn.Flatten(),
                nn.Linear(c * h * w, hidden),
                nn.LeakyReLU(0.1, inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, grid * grid * d),
            )
        else:
            self.pool = nn.AdaptiveAvgPool2d((grid, grid))  # identity when the map is S x S
            self.classifier = nn.Sequential(
                nn.Conv2d(c, hidden, 3, padding=1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.LeakyReLU(0.1, inplace=True),
                nn.Dropout2d(dropout),
                nn.Conv2d(hidden, d, 1),
            )

    @property
    def cell_size(self) -> int:
        return self.boxes * 5 + self.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.classifier(self.pool(self.features(x)))
        if self.head == "conv":
            return out.permute(0, 2, 3, 1)  # [N, S, S, B*5+C]
        return out.view(-1, self.grid, self.grid, self.cell_size)


# ----------------------------------------------------------------------------- targets


def encode_targets(
    targets: list[dict], grid: int, num_classes: int, image_size: tuple[int, int]
) -> torch.Tensor:
    """Boxes (xyxy pixels) and labels per image -> ``[N, S, S, 5 + C]`` targets.

    Per cell: ``[x, y, sqrt(w), sqrt(h), 1, one-hot C]`` for the object whose centre lies in
    it (x, y offsets in the cell, w, h fractions of the image); zeros where no centre falls.
    When two centres share a cell the larger object is kept (v1 detects one object per cell).
    """
    h_img, w_img = image_size
    out = torch.zeros(len(targets), grid, grid, 5 + num_classes)
    for n, t in enumerate(targets):
        boxes = t["boxes"].float().reshape(-1, 4)
        labels = t["labels"].reshape(-1)
        if len(boxes) == 0:
            continue
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        for i in area.argsort().tolist():  # small first, so a larger object overwrites it
            x0, y0, x1, y1 = boxes[i].tolist()
            cx, cy = (x0 + x1) / 2 / w_img * grid, (y0 + y1) / 2 / h_img * grid
            col, row = min(int(cx), grid - 1), min(int(cy), grid - 1)
            cell = out[n, row, col]
            cell.zero_()
            cell[0], cell[1] = cx - col, cy - row
            cell[2] = max(x1 - x0, 0.0) ** 0.5 / w_img**0.5
            cell[3] = max(y1 - y0, 0.0) ** 0.5 / h_img**0.5
            cell[4] = 1.0
            cell[5 + int(labels[i])] = 1.0
    return out


def _cell_boxes(p: torch.Tensor, grid: int) -> torch.Tensor:
    """[..., S, S, 4] (x, y, sqrt w, sqrt h) -> xyxy in image fractions."""
    s = torch.arange(grid, dtype=p.dtype, device=p.device)
    cx = (p[..., 0] + s.view(1, -1)) / grid  # column offset
    cy = (p[..., 1] + s.view(-1, 1)) / grid
    w, h = p[..., 2].square(), p[..., 3].square()
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


class YoloLoss(nn.Module):
    """Equation 3 of the paper, summed over cells and averaged over the batch.

    The responsible predictor in a cell with an object is the one of the B whose box has the
    highest IoU with the truth; its confidence target is that IoU. Every other predictor, and
    every predictor in cells without an object, is pushed to confidence 0 with weight
    lambda_noobj. Class scores are penalised only in cells that hold an object.
    """

    def __init__(
        self,
        grid: int,
        boxes: int,
        num_classes: int,
        *,
        lambda_coord: float = LAMBDA_COORD,
        lambda_noobj: float = LAMBDA_NOOBJ,
    ):
        super().__init__()
        self.grid, self.boxes, self.num_classes = grid, boxes, num_classes
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n, s, b = pred.shape[0], self.grid, self.boxes
        boxes = pred[..., : b * 5].reshape(n, s, s, b, 5)
        obj = target[..., 4] > 0  # [N, S, S]
        with torch.no_grad():  # which predictor is responsible, and its IoU (the conf target)
            pb = _cell_boxes(boxes[..., :4].movedim(3, 0), s)  # [B, N, S, S, 4]
            tb = _cell_boxes(target[..., :4], s)
            ious = torch.stack([_pair_iou(pb[k], tb) for k in range(b)], -1)  # [N, S, S, B]
            best = ious.argmax(-1)
            resp = torch.nn.functional.one_hot(best, b).bool() & obj[..., None]
            conf_target = torch.where(resp, ious, torch.zeros_like(ious))
        r = resp.float()
        coord = ((boxes[..., :2] - target[..., None, :2]).square().sum(-1) * r).sum()
        size = ((boxes[..., 2:4] - target[..., None, 2:4]).square().sum(-1) * r).sum()
        conf_err = (boxes[..., 4] - conf_target).square()
        conf_obj = (conf_err * r).sum()
        conf_noobj = (conf_err * (1 - r)).sum()
        cls = ((pred[..., b * 5 :] - target[..., 5:]).square().sum(-1) * obj.float()).sum()
        total = self.lambda_coord * (coord + size) + conf_obj + self.lambda_noobj * conf_noobj + cls
        return total / n


def _pair_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise IoU of two [..., 4] xyxy tensors (torchvision's box_iou is all-pairs)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    return inter / (_area(a) + _area(b) - inter).clamp(min=1e-9)


def _area(t: torch.Tensor) -> torch.Tensor:
    return (t[..., 2] - t[..., 0]).clamp(min=0) * (t[..., 3] - t[..., 1]).clamp(min=0)


def decode(
    pred: torch.Tensor,
    boxes: int,
    num_classes: int,
    image_size: tuple[int, int],
    *,
    score_threshold: float = 0.05,
    nms_iou: float = 0.5,
    max_detections: int = 100,
) -> list[dict]:
    """``[N, S, S, B*5+C]`` -> per image ``{"boxes" (xyxy pixels), "scores", "labels"}``.

    Score = confidence x class probability (section 2, "class-specific confidence"); boxes
    under ``score_threshold`` are dropped, then per-class non-maximum suppression
    (torchvision's ``batched_nms``) at ``nms_iou``. Accepts the target grid of
    :func:`encode_targets` too (one box per cell), which is how the round trip is tested.
    """
    from torchvision.ops import batched_nms  # here: importing torchvision costs 1.5-2 s

    n, s = pred.shape[0], pred.shape[1]
    h_img, w_img = image_size
    per = 5 * boxes
    if pred.shape[-1] == 5 + num_classes:  # a target grid
        per, boxes = 5, 1
    bx = pred[..., :per].reshape(n, s, s, boxes, 5)
    cls = pred[..., per:].clamp(min=0)
    xyxy = _cell_boxes(bx[..., :4].movedim(3, 0), s)  # [B, N, S, S, 4]
    scale = torch.tensor([w_img, h_img, w_img, h_img], dtype=pred.dtype, device=pred.device)
    xyxy = (xyxy.movedim(0, 3) * scale).clamp(min=0)  # [N, S, S, B, 4]
    xyxy[..., 0::2] = xyxy[..., 0::2].clamp(max=w_img)
    xyxy[..., 1::2] = xyxy[..., 1::2].clamp(max=h_img)
    score, label = cls.max(-1)  # [N, S, S]
    conf = bx[..., 4].clamp(0, 1) * score[..., None]  # [N, S, S, B]
    out = []
    for i in range(n):
        sc = conf[i].reshape(-1)
        bb = xyxy[i].reshape(-1, 4)
        lb = label[i][..., None].expand(s, s, boxes).reshape(-1)
        keep = sc > score_threshold
        sc, bb, lb = sc[keep], bb[keep], lb[keep]
        k = batched_nms(bb, sc, lb, nms_iou)[:max_detections]
        out.append({"boxes": bb[k], "scores": sc[k], "labels": lb[k]})
    return out


# ----------------------------------------------------------------------------- builders


def _feature_shape(spec, input_size: tuple[int, int, int]) -> tuple[int, int, int]:
    """The body's output (C, H, W), by the lectures' (N - K + 2P)/S + 1 (floored, as torch)."""
    c, h, w = input_size
    with warnings.catch_warnings():  # flooring is intended here, as in torch
        warnings.simplefilter("ignore")
        for item in spec:
            k, c, s, p = (2, c, 2, 0) if item == M else (item[0], item[1], item[2], item[0] // 2)
            h, w = (conv_output_size(n, k, s, p, strict=False) for n in (h, w))
    return c, h, w


@register_model(
    "yolov1",
    family="YOLO",
    paper=PAPER,
    year=2016,
    input_size=(3, 448, 448),
    num_classes=20,
    description="YOLO v1: 24 convs + 2 FC, 7x7x30 output (S=7, B=2, C=20)",
)
def yolov1(
    num_classes: int = 20, in_channels: int = 3, grid: int = 7, boxes: int = 2, dropout: float = 0.5
) -> YOLOv1:
    """YOLO v1 as in Redmon et al. 2016, Figure 3 (448x448 input)."""
    body = _body(PAPER_BODY, in_channels, batch_norm=False)
    shape = _feature_shape(PAPER_BODY, (in_channels, 448, 448))  # 1024 x 7 x 7
    return YOLOv1(body, shape, num_classes=num_classes, grid=grid, boxes=boxes, dropout=dropout)


@register_model(
    "yolov1_small",
    family="YOLO",
    paper=PAPER,
    year=2016,
    input_size=(1, 96, 96),
    num_classes=10,
    variant="digits",
    description="small YOLO v1 for digits-det: 12x12x20 output, per-cell head (not the paper's)",
)
def yolov1_small(
    num_classes: int = 10,
    in_channels: int = 1,
    grid: int = 12,
    boxes: int = 2,
    hidden: int = 128,
    dropout: float = 0.0,
    size: int = 96,
    head: str = "conv",
) -> YOLOv1:
    """A 7-conv batch-norm body (stride 8: 96 -> 12x12 cells of 8 px) with YOLO v1's output
    layout and loss; ``head="fc"`` gives the paper's FC head (``hidden`` 512 is a fair size)."""
    body = _body(SMALL_BODY, in_channels, batch_norm=True)
    shape = _feature_shape(SMALL_BODY, (in_channels, size, size))
    return YOLOv1(body, shape, num_classes=num_classes, grid=grid, boxes=boxes, hidden=hidden,
                  dropout=dropout, head=head)  # fmt: skip
