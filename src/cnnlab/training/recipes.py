"""Named training recipes: ``cnnlab train --recipe NAME`` (``cnnlab recipes`` lists them).

A recipe is a set of :class:`TrainConfig` values; flags given on the command line override it.
The figures quoted are the ones measured here (see docs/training.md and benchmarks/RESULTS.md
for the machine, date and command); a recipe that was not run to the end says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnlab.errors import ConfigError, suggest


@dataclass(frozen=True)
class Assignment:
    """A graded exercise: the run passes when ``metric`` (a fraction) reaches ``target``.
    ``cnnlab train`` records ``{"metric", "target", "value", "passed"}`` in summary.json."""

    metric: str  # "val_top1": the best validation top-1, validation held out of training data
    target: float  # e.g. 0.60


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    config: dict = field(default_factory=dict)
    measured: str = "not measured yet"
    assignment: Assignment | None = None


RECIPES: dict[str, Recipe] = {}


def _add(name: str, summary: str, measured: str = "not measured yet", *,
         assignment: Assignment | None = None, **config) -> None:  # fmt: skip
    RECIPES[name] = Recipe(name, summary, config, measured, assignment)


_add(
    "demo",
    "LeNet-5 on the embedded digits: the README's first run (under a minute on 2 cores)",
    "95.82% test top-1 (359 digits) with best.pt chosen on 144 validation digits (epoch 6), "
    "1.9 s in train(); 2026-11-29 19:00 UTC, fresh clone, 2-core Xeon (95.54% before the "
    "fused SGD of 2026-11-29 18:00)",
    model="lenet5", data="digits", epochs=12, batch_size=64, optimizer="nesterov", lr=0.05,
    schedule="cosine", warmup=1, weight_decay=5e-4, label_smoothing=0.0, preprocess="standardize",
)  # fmt: skip
_add(
    "lenet5-mnist",
    "LeNet-5 (modern form) on MNIST, 99.0%+ validation accuracy in 1.5 epochs (Muon + AdamW)",
    "99.05% validation (6,000 held-out images) after 1.5 epochs at batch 512, test 99.17%; "
    "2.6-3.4 s in nine rounds of benchmarks/train_cpu.py on 2 cores (6.60-7.97x the course loop "
    "with the same settings, medians 7.03-7.34x); 2026-11-30 04:34-04:38 UTC, 2-core Xeon, "
    "nothing else running. Seeds 0-5 (each its own hold-out): 99.05 / 99.05 / 99.20 / 99.22 / "
    "99.35 / 98.87%",
    model="lenet5",
    model_options={"relu_after_pool": True, "fused_first_stage": True, "fused_second_stage": True},
    data="mnist", epochs=1.5,
    batch_size=512, optimizer="muon-adamw", lr=0.03, muon_lr=0.07, muon_momentum=0.9,
    schedule="onecycle", warmup=0.3, weight_decay=5e-4, label_smoothing=0.1, ema=0.98,
    preprocess="standardize", amp=False, eval_every=2,
)  # fmt: skip
_add(
    "fashion-mnist",
    "a small VGG-style net (fashion-vgg, widths 16/32) on Fashion-MNIST, 93%+ test accuracy",
    "93.00% with flip TTA (92.94% without) after 10 epochs, 887 s on 1 thread; 2026-11-23, "
    "shared 2-core EPYC",
    model="fashion-vgg", model_options={"widths": [16, 32]}, data="fashion-mnist", epochs=10,
    batch_size=128, optimizer="nesterov", lr=0.1, schedule="onecycle", warmup=1,
    weight_decay=5e-4, label_smoothing=0.1, preprocess="standardize", augment="flip", tta="flip",
)  # fmt: skip
_add(
    "cifar-fast",
    "airbench94_muon-style: whitened first conv, identity-initialised convs, BN without scale, "
    "Muon on the conv filters, label smoothing, alternating flips, flip+shift TTA",
    "CPU (2-core Xeon, bf16 on AMX), CIFAR-10 (JPEG), benchmarks/train_cifar.py: 90.27% test "
    "(flip-shift TTA) in 10 min (7.2 epochs), 91.25% in 25 min (13.8 epochs), each ahead of an "
    "airbench94 port in bf16 (89.98%, 90.97%; one run each); 2026-11-29; a re-run on slower "
    "minutes of the VM fit 5.5 epochs into 10 min: 89.54% (2026-11-30); GPU not measured",
    model="cifar-fast-net", data="cifar10-jpeg", epochs=8, batch_size=2000, optimizer="muon",
    # Jordan's airbench94_muon values (2024), for this trainer's mean loss: his SGD rates are
    # per summed example (biases 0.053, head 0.67), so x2000 here; the head's larger rate is
    # folded into the net (head_std 1/3.56, logit_scale 3.56/256, 3.56 = sqrt(0.67/0.053))
    lr=106.0, momentum=0.85, muon_lr=0.24, muon_momentum=0.6, weight_decay=3.8e-5,
    schedule="onecycle", warmup=0, final_lr_fraction=0.0, label_smoothing=0.2,
    model_options={"dirac": True, "bn_weight": False, "head_std": 0.28125,
                   "logit_scale": 0.013889},
    preprocess="standardize", augment="alternating-flip", tta="flip-shift", amp=True,
)  # fmt: skip
_add(
    "cifar100-assignment",
    "seed 001's assignment: ResNet-56 on CIFAR-100 with the lectures' practice, graded PASS at "
    "60% validation top-1 (10% of the training images held out)",
    assignment=Assignment("val_top1", 0.60),
    model="resnet56", data="cifar100", val_fraction=0.1, epochs=60, batch_size=128,
    optimizer="nesterov", lr=0.1, schedule="cosine", warmup=2, weight_decay=5e-4,
    label_smoothing=0.1, preprocess="standardize", augment="cifar",
)  # fmt: skip
_add(
    "cifar10-assignment",
    "the assignment on CIFAR-10 (JPEG): cifar-fast-net (widths 32/64/128), graded PASS at 80% "
    "validation top-1 (5,000 training images held out), stopping once reached; designed for "
    "15 minutes on 2 CPU cores",
    "not measured alone (the machine was shared); designed from the cifar-fast run: 88.06% in "
    "25 epochs, 73 s an epoch on 2 cores",
    assignment=Assignment("val_top1", 0.80),
    model="cifar-fast-net", model_options={"widths": [32, 64, 128]}, data="cifar10-jpeg",
    val_fraction=0.1, epochs=10, batch_size=512, optimizer="nesterov", lr=0.2, momentum=0.85,
    schedule="onecycle", warmup=0.5, weight_decay=5e-4, label_smoothing=0.2,
    preprocess="standardize", augment="alternating-flip", target_top1=80.0,
)  # fmt: skip
_add(
    "fcn8s-digits-seg",
    "FCN-8s (small form) on the generated digits-seg, fed at 160x160, bf16: mIoU per epoch",
    "benchmarks/dense.py: validation mIoU 88.18% at epoch 10 (stops at 86.5%, 284 s; 85% "
    "first at epoch 8, 233 s), test mIoU 87.61%, pixel accuracy 98.8%, 291 s in all; 1 thread "
    "of a 2-core Xeon (AMX), 2026-11-29 12:16, load 1.0",
    model="fcn8s_small", data="digits-seg", input_size=160, epochs=16, batch_size=32,
    optimizer="adamw", lr=3e-3, schedule="cosine", warmup=1, weight_decay=1e-4,
    preprocess="standardize", amp=True,
)  # fmt: skip
_add(
    "yolov1-digits-det",
    "YOLO v1 (small form) on the generated digits-det: the paper's loss, mAP@0.5 per epoch",
    "benchmarks/dense.py (stops at 86.5% validation): validation mAP@0.5 89.60% at epoch 7, "
    "test mAP@0.5 87.40% / COCO mAP 49.1% in 102 s; 1 thread of a 2-core Xeon, 2026-11-29, "
    "load 1.0",
    model="yolov1_small", data="digits-det", epochs=8, batch_size=32, optimizer="adamw",
    lr=2e-3, schedule="cosine", warmup=0.5, weight_decay=5e-4, preprocess="standardize",
)  # fmt: skip
_add(
    "fasterrcnn-digits-det",
    "Faster R-CNN (small form: one map, 9 anchors, RoI pooling) on digits-det, mAP@0.5",
    "benchmarks/dense.py (stops at 91.5% validation): validation mAP@0.5 93.34% at epoch 6, "
    "test mAP@0.5 92.71% / COCO mAP 48.8% in 335 s; 1 thread of a 2-core Xeon, 2026-11-29, "
    "load 1.0",
    model="fasterrcnn_small", data="digits-det", epochs=18, batch_size=16, optimizer="adamw",
    lr=1e-3, schedule="cosine", warmup=0.5, weight_decay=1e-4, preprocess="standardize",
)  # fmt: skip


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown recipe {name!r}",
            suggest(name, RECIPES) or f"run `cnnlab recipes`; known: {', '.join(RECIPES)}",
        ) from None
