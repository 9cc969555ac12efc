"""R-CNN against Fast R-CNN (seed 004): the CNN run on every warped proposal, or once per image
with each proposal pooled from the shared feature map.

Seed 004: R-CNN warps each of about 2,000 region proposals to 227x227 and runs the CNN on each
(Girshick et al., CVPR 2014), then scores the features with linear SVMs; SPPNet (He et al.,
ECCV 2014) and Fast R-CNN (Girshick, ICCV 2015) run the CNN once over the image and pool a
fixed-size feature for every region from its map (RoI pooling).

The experiment on the generated ``digits-det`` set (96x96, 1-4 digits):

- proposals: selective search (Uijlings et al., IJCV 2013) from OpenCV's contrib module
  (``opencv-contrib-python-headless``, fast mode); without it, sliding windows (4 sizes x 3
  aspect ratios, stride 1/4 of the window), and the result says which;
- one CNN body for both (three 3x3 convs, stride 4) and one head (a 4x4 grid of 64 channels ->
  FC 128 -> 11 classes: ten digits and background), so only *where the features come from*
  differs:
  - R-CNN: each proposal is cropped and warped (bilinear, ``roi_align`` on the image) to
    32x32, the body runs on every crop, the 4x4 grid is a max pool of its map; after
    fine-tuning, a linear multiclass SVM (hinge loss) is trained on the frozen FC features and
    scores the regions;
  - Fast R-CNN: the body runs once on the image; ``roi_pool`` (Fast R-CNN's RoI max pooling)
    takes each proposal's 4x4 grid from the shared map; the softmax head scores the regions;
- training regions: proposals with IoU >= 0.5 to a digit take its class, < 0.3 background
  (R-CNN's thresholds), plus the ground-truth boxes; no bounding-box regression in either;
- detection: per class, non-maximum suppression at IoU 0.3; mAP (VOC, IoU 0.5, and COCO
  0.5:0.95) from :func:`cnnlab.metrics.detection_map`;
- time per test image (one image at a time, as deployed) for the CNN part of each, with the
  proposal time reported apart (it is the same for both), and a sweep of the CNN time over the
  number of proposals (25 ... 2,000 boxes): R-CNN grows with it, Fast R-CNN barely.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import batched_nms, box_iou, roi_align, roi_pool

from cnnlab.errors import ConfigError
from cnnlab.teaching.experiments._common import Outcome, Scale

NUM_CLASSES = 11  # ten digits + background (index 10)
BACKGROUND = 10
WARP = 32  # R-CNN's warp size here (227 in the paper, for 227x227 AlexNet inputs)
GRID = 4  # the fixed feature grid both take from a region (RoI pooling's 7x7 in the paper)
STRIDE = 4  # the body's total stride


# --------------------------------------------------------------------------- proposals


def selective_search_available() -> bool:
    try:
        import cv2

        return hasattr(cv2, "ximgproc")
    except ImportError:
        return False


def selective_search(image: torch.Tensor, base_k: int = 50) -> torch.Tensor:
    """Boxes ``[P, 4]`` xyxy from OpenCV's selective search (fast mode) on one uint8 image
    ``[C, H, W]``."""
    import cv2

    cv2.setNumThreads(1)
    a = image.permute(1, 2, 0).numpy()
    rgb = np.ascontiguousarray(np.repeat(a, 3, 2) if a.shape[2] == 1 else a[:, :, :3])
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(rgb)
    ss.switchToSelectiveSearchFast(base_k=base_k, inc_k=base_k, sigma=0.8)
    xywh = torch.as_tensor(np.asarray(ss.process()).reshape(-1, 4), dtype=torch.float32)
    return torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)


def sliding_windows(h: int, w: int, sizes=(16, 24, 32, 40), ratios=(0.5, 1.0, 2.0)):
    """Boxes ``[P, 4]`` xyxy: every size x ratio (height / width) window at a stride of a
    quarter of its width/height, inside the image."""
    boxes = []
    for s in sizes:
        for r in ratios:
            bh, bw = s * math.sqrt(r), s / math.sqrt(r)
            if bh > h or bw > w:
                continue
            ys = torch.arange(0, h - bh + 1e-6, max(bh / 4, 1))
            xs = torch.arange(0, w - bw + 1e-6, max(bw / 4, 1))
            y, x = torch.meshgrid(ys, xs, indexing="ij")
            y, x = y.flatten(), x.flatten()
            boxes.append(torch.stack([x, y, x + bw, y + bh], 1))
    return torch.cat(boxes)


def propose(images: torch.Tensor, method: str) -> tuple[list[torch.Tensor], float]:
    """Proposals for each image and the mean seconds per image."""
    t0 = time.perf_counter()
    if method == "selective-search":
        out = [selective_search(im) for im in images]
    else:
        fixed = sliding_windows(*images.shape[-2:])
        out = [fixed.clone() for _ in images]
    return out, (time.perf_counter() - t0) / max(len(images), 1)


# --------------------------------------------------------------------------- the networks


class Body(nn.Module):
    """Three 3x3 conv layers with batch norm, two 2x2 max pools: stride 4, 64 channels."""

    def __init__(self, in_channels: int = 1):
        super().__init__()

        def block(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.layers = nn.Sequential(
            *block(in_channels, 32),
            nn.MaxPool2d(2),
            *block(32, 64),
            nn.MaxPool2d(2),
            *block(64, 64),
        )

    def forward(self, x):
        return self.layers(x)


class Head(nn.Module):
    """A region's 64 x 4 x 4 grid -> FC 128 ("fc7", the SVM's features) -> 11 class scores."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * GRID * GRID, 128), nn.ReLU())
        self.cls = nn.Linear(128, NUM_CLASSES)

    def forward(self, grid, features=False):
        f = self.fc(grid)
        return f if features else self.cls(f)


def _prep(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0


class RCNN(nn.Module):
    """The CNN on every warped region: crop + bilinear warp to 32x32, body, 4x4 max pool."""

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.body, self.head = Body(in_channels), Head()

    def warp(self, images, boxes):
        """Each region of ``boxes`` (list per image) cropped and warped to WARP x WARP."""
        return roi_align(_prep(images), boxes, WARP, spatial_scale=1.0, sampling_ratio=2)

    def grids(self, images, boxes):
        return F.adaptive_max_pool2d(self.body(self.warp(images, boxes)), GRID)

    def forward(self, images, boxes, features=False):
        return self.head(self.grids(images, boxes), features)


class FastRCNN(nn.Module):
    """The CNN once per image; every region's 4x4 grid RoI-pooled from the shared map."""

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.body, self.head = Body(in_channels), Head()

    def grids(self, images, boxes):
        return roi_pool(self.body(_prep(images)), boxes, GRID, spatial_scale=1.0 / STRIDE)

    def forward(self, images, boxes, features=False):
        return self.head(self.grids(images, boxes), features)


# --------------------------------------------------------------------------- training regions


def label_regions(proposals, gt_boxes, gt_labels, fg=0.5, bg=0.3):
    """(boxes, labels) for training: the ground truth boxes, proposals with IoU >= ``fg`` to a
    digit (its class) and proposals whose best IoU is below ``bg`` (background); the ones in
    between are left out, as in R-CNN."""
    if len(gt_boxes) == 0:
        return proposals, torch.full((len(proposals),), BACKGROUND)
    iou = box_iou(proposals, gt_boxes)
    best, idx = iou.max(1)
    pos, neg = best >= fg, best < bg
    labels = torch.cat([gt_labels, gt_labels[idx[pos]], torch.full((int(neg.sum()),), BACKGROUND)])
    boxes = torch.cat([gt_boxes, proposals[pos], proposals[neg]])
    return boxes, labels


def _sample(labels, n, generator):
    """Up to ``n`` region indices, a quarter of them foreground where there are enough."""
    fg = torch.nonzero(labels != BACKGROUND).flatten()
    bg = torch.nonzero(labels == BACKGROUND).flatten()
    nf = min(len(fg), n // 4)
    nb = min(len(bg), n - nf)
    pick = lambda ix, k: ix[torch.randperm(len(ix), generator=generator)[:k]]  # noqa: E731
    return torch.cat([pick(fg, nf), pick(bg, nb)])


def train_detector(model, images, regions, *, epochs, batch_images, rois_per_image, lr, seed):
    """Fine-tune ``model`` with cross-entropy on the labelled regions of each image."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * math.ceil(len(images) / batch_images)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=g)
        for i in range(0, len(images), batch_images):
            idx = order[i : i + batch_images]
            boxes, labels = [], []
            for j in idx.tolist():
                b, lab = regions[j]
                k = _sample(lab, rois_per_image, g)
                boxes.append(b[k])
                labels.append(lab[k])
            loss = F.cross_entropy(model(images[idx], boxes), torch.cat(labels))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def train_svm(features, labels, *, steps=300, lr=0.1, l2=1e-4):
    """R-CNN's linear SVMs, as one multiclass SVM (seed 001's hinge loss, margin 1) on frozen
    features, by full-batch gradient descent. Returns the linear layer."""
    svm = nn.Linear(features.shape[1], NUM_CLASSES)
    opt = torch.optim.SGD(svm.parameters(), lr=lr, momentum=0.9)
    for _ in range(steps):
        # MultiMarginLoss divides the seed's sum over j != y by the number of classes
        loss = F.multi_margin_loss(svm(features), labels) * NUM_CLASSES
        loss = loss + l2 * svm.weight.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return svm.eval()


# --------------------------------------------------------------------------- detection


def detect(scores: torch.Tensor, boxes: torch.Tensor, *, nms=0.3, min_score=0.05, softmax=True):
    """Per-class NMS over one image's region scores ``[P, 11]``: torchvision prediction dict."""
    probs = scores.softmax(1) if softmax else scores
    p, cls = probs[:, :BACKGROUND].max(1)
    keep = p > (min_score if softmax else -math.inf)
    boxes, p, cls = boxes[keep], p[keep], cls[keep]
    k = batched_nms(boxes, p, cls, nms)
    return {"boxes": boxes[k], "scores": p[k], "labels": cls[k]}


@dataclass
class Result:
    """One method's numbers on the test split."""

    method: str
    map_50_voc: float
    map_coco: float
    seconds_per_image: float  # the CNN part (features + head + NMS), one image at a time
    macs_per_image: int  # of the body, at the mean number of proposals
    proposals_per_image: float
    sweep: dict = field(default_factory=dict)  # proposals -> seconds per image


def _time_per_image(fn, images, proposals, repeat=1):
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for im, props in zip(images, proposals):
            fn(im[None], [props])
        best = min(best, (time.perf_counter() - t0) / len(images))
    return best


def _body_macs(size: int) -> int:
    from cnnlab.analysis import summary

    return summary(Body(), (1, size, size)).totals["macs"]


def rcnn_vs_fast(
    *,
    train_images: int = 600,
    test_images: int = 200,
    epochs: int = 6,
    proposals: str = "selective-search",
    sweep=(25, 100, 500, 2000),
    lr: float = 0.05,
    batch_images: int = 8,
    seed: int = 0,
    out_dir=None,
    log=print,
) -> dict:
    """Train both detectors on ``digits-det`` and compare them (see the module docstring).

    Returns a dict with the settings, one :class:`Result` per method and the notes; with
    ``out_dir`` also writes ``results.json`` and ``rcnn_vs_fast.png`` there.
    """
    from cnnlab.data.synthetic import load_preset
    from cnnlab.metrics.detection import detection_map

    if proposals not in ("selective-search", "sliding-window"):
        raise ConfigError(
            f"unknown proposal method {proposals!r}", "use selective-search or sliding-window"
        )
    if train_images < 1 or test_images < 1 or epochs < 1:
        raise ConfigError("train_images, test_images and epochs must be at least 1")
    notes = []
    if proposals == "selective-search" and not selective_search_available():
        proposals = "sliding-window"
        notes.append(
            "selective search needs OpenCV's contrib module (pip install "
            "opencv-contrib-python-headless); this run used sliding windows instead"
        )
    torch.manual_seed(seed)
    train = load_preset("digits-det", "train", size=train_images)
    test = load_preset("digits-det", "test", size=test_images)
    log(f"proposals ({proposals}) for {len(train)} train and {len(test)} test images")
    train_props, _ = propose(train.images, proposals)
    test_props, prop_seconds = propose(test.images, proposals)
    targets = train.targets()
    regions = [label_regions(p, t["boxes"], t["labels"]) for p, t in zip(train_props, targets)]
    test_targets = test.targets()
    n_props = float(np.mean([len(p) for p in test_props]))

    results = {}
    for name, cls in (("R-CNN", RCNN), ("Fast R-CNN", FastRCNN)):
        log(f"training {name}: {epochs} epochs")
        torch.manual_seed(seed)
        model = train_detector(
            cls(),
            train.images,
            regions,
            epochs=epochs,
            batch_images=batch_images,
            rois_per_image=32,
            lr=lr,
            seed=seed,
        )
        svm = None
        if name == "R-CNN":  # fixed features, then linear SVMs on them (R-CNN's recipe)
            with torch.no_grad():
                feats = [model(train.images[i : i + 1], [regions[i][0]], features=True)
                         for i in range(len(train))]  # fmt: skip
            svm = train_svm(torch.cat(feats), torch.cat([r[1] for r in regions]))

        @torch.no_grad()
        def run(im, props, model=model, svm=svm):
            if svm is None:
                return detect(model(im, props), props[0])
            return detect(svm(model(im, props, features=True)), props[0], softmax=False)

        with torch.no_grad():
            preds = [run(test.images[i : i + 1], [test_props[i]]) for i in range(len(test))]
        scores = detection_map(preds, test_targets)
        timed = min(len(test), 50)
        seconds = _time_per_image(run, test.images[:timed], test_props[:timed], repeat=2)
        sweep_t = {}
        for k in sweep:
            boxes = _random_boxes(k, test.images.shape[-1], seed)
            sweep_t[k] = _time_per_image(run, test.images[:5], [boxes] * 5, repeat=2)
        warp_macs, image_macs = _body_macs(WARP), _body_macs(test.images.shape[-1])
        macs = int(round(n_props * warp_macs)) if name == "R-CNN" else image_macs
        results[name] = Result(
            name,
            float(scores["map_50_voc"]),
            float(scores["map"]),
            seconds,
            macs,
            n_props,
            sweep_t,
        )
        log(
            f"{name}: mAP@0.5 {scores['map_50_voc']:.3f}, COCO mAP {scores['map']:.3f}, "
            f"{seconds * 1000:.1f} ms per image"
        )
    out = {
        "experiment": "rcnn-vs-fast",
        "settings": {
            "data": "digits-det",
            "train_images": len(train),
            "test_images": len(test),
            "epochs": epochs,
            "lr": lr,
            "batch_images": batch_images,
            "proposals": proposals,
            "warp": WARP,
            "grid": GRID,
            "seed": seed,
        },
        "proposal_seconds_per_image": prop_seconds,
        "results": {k: asdict(v) for k, v in results.items()},
        "notes": notes,
    }
    if out_dir is not None:
        write_run(out, out_dir)
    return out


def _random_boxes(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * (size - 16)
    wh = 8 + torch.rand(n, 2, generator=g) * (size / 2)
    return torch.cat([xy, (xy + wh).clamp(max=size)], 1)


def write_run(out: dict, out_dir) -> Path:
    """``results.json`` and ``rcnn_vs_fast.png`` (mAP bars, time vs proposals) in ``out_dir``."""
    from cnnlab._util import atomic_write
    from cnnlab.viz.figure import save_figure
    from cnnlab.viz.plots import _pyplot

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(out, indent=2, default=str)
    atomic_write(out_dir / "results.json", lambda f: f.write(text.encode()))
    plt = _pyplot()
    res = out["results"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    names = list(res)
    a1.bar(
        [f"{n}\nmAP@0.5" for n in names] + [f"{n}\nCOCO mAP" for n in names],
        [res[n]["map_50_voc"] for n in names] + [res[n]["map_coco"] for n in names],
        color=["#3f72af", "#f08a5d"] * 2,
    )
    a1.set_ylim(0, 1)
    a1.set_title(f"digits-det test ({out['settings']['test_images']} images)")
    for n, c in zip(names, ("#3f72af", "#f08a5d")):
        ks = sorted(int(k) for k in res[n]["sweep"])
        a2.plot(ks, [res[n]["sweep"][k] * 1000 for k in ks], "o-", color=c, label=n)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("proposals per image")
    a2.set_ylabel("CNN time per image (ms)")
    a2.set_title("the CNN per region vs once per image")
    a2.legend()
    fig.tight_layout()
    save_figure(fig, out_dir / "rcnn_vs_fast.png")
    return out_dir


# --------------------------------------------------------------------------- cnnlab experiment

NAME = "rcnn-vs-fast"
CLAIM = (
    "R-CNN runs the CNN on each of about 2,000 warped region proposals; SPPNet and Fast R-CNN "
    "run it once per image and pool every region from the shared feature map, which is much "
    "faster (seed 004)."
)
MEASURES = (
    "mAP (VOC IoU 0.5 and COCO 0.5:0.95) and CNN time per test image of two detectors sharing "
    "the proposals (selective search), the CNN body and the head on the generated digits-det "
    "set: the body on every proposal warped to 32x32 with linear SVMs (R-CNN), or once per "
    "image with RoI pooling (Fast R-CNN); and the time against the number of proposals"
)
QUICK = Scale(data="digits-det", n_train=120, n_test=60, epochs=3, batch_size=8, lr=0.05)
FULL = Scale(data="digits-det", n_train=600, n_test=200, epochs=6, batch_size=8, lr=0.05)
FULL_SCALE = (
    "Here about 30 selective-search boxes per 96x96 image and a 3-layer body; the paper's R-CNN "
    "warps about 2,000 proposals to 227x227 for a 5-conv AlexNet or VGG16, where the per-region "
    "cost dominates: Fast R-CNN reports 213x faster test time than R-CNN with VGG16 (Girshick, "
    "ICCV 2015, abstract). The proposal sweep shows the trend that gap comes from."
)


def run(ctx) -> Outcome:
    s = ctx.scale
    if s.data != "digits-det":
        raise ConfigError(
            f"rcnn-vs-fast runs on the generated digits-det set (boxes and labels), not {s.data!r}",
            "drop --data",
        )
    out = rcnn_vs_fast(
        train_images=s.n_train or 600,
        test_images=s.n_test or 200,
        epochs=max(1, int(s.epochs)),
        lr=s.lr,
        batch_images=s.batch_size,
        sweep=tuple(s.extra.get("sweep", (25, 100, 500, 2000))),  # proposals per image to time
        seed=ctx.seed,
        out_dir=ctx.out,
        log=lambda m: None,
    )
    res = out["results"]
    rows = [
        {
            "method": name,
            "mAP@0.5": round(r["map_50_voc"], 4),
            "COCO mAP": round(r["map_coco"], 4),
            "ms per image": round(r["seconds_per_image"] * 1000, 2),
            "body MACs": r["macs_per_image"],
            "proposals per image": round(r["proposals_per_image"], 1),
        }
        for name, r in res.items()
    ]
    rc, fast = res["R-CNN"], res["Fast R-CNN"]
    biggest = max(rc["sweep"], key=int) if rc["sweep"] else None
    speed = rc["seconds_per_image"] / fast["seconds_per_image"]
    finding = (
        f"Fast R-CNN takes {fast['seconds_per_image'] * 1000:.1f} ms of CNN time per image "
        f"against R-CNN's {rc['seconds_per_image'] * 1000:.1f} ms ({speed:.1f}x) at "
        f"{rc['proposals_per_image']:.0f} proposals per image"
        + (
            f", {rc['sweep'][biggest] / fast['sweep'][biggest]:.0f}x at {biggest} proposals"
            if biggest
            else ""
        )
        + f"; mAP@0.5 {fast['map_50_voc']:.3f} vs {rc['map_50_voc']:.3f}."
    )
    faster = fast["seconds_per_image"] < rc["seconds_per_image"]
    notes = list(out["notes"]) + [
        "Both detectors are fine-tuned with SGD, momentum 0.9 (not Nesterov), one-cycle lr "
        f"{s.lr:g}, weight decay 5e-4, {max(1, int(s.epochs))} epochs of {s.batch_size} images "
        "x 32 regions per step; R-CNN's linear SVMs after that (300 full-batch steps).",
        "Accuracy is reported, not judged: at this scale the warped crops see each digit at a "
        "finer grain than a stride-4 shared map, and neither detector regresses boxes.",
    ]
    return Outcome(rows, ctx.out / "rcnn_vs_fast.png", finding, faster, notes)
