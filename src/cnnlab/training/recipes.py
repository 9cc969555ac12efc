"""Named training recipes: ``cnnlab train --recipe NAME`` (``cnnlab recipes`` lists them).

A recipe is a set of :class:`TrainConfig` values; flags given on the command line override it.
The figures quoted are the ones measured here (see docs/training.md and benchmarks/RESULTS.md
for the machine, date and command); a recipe that was not run to the end says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnlab.errors import ConfigError, suggest


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    config: dict = field(default_factory=dict)
    measured: str = "not measured yet"


RECIPES: dict[str, Recipe] = {}


def _add(name: str, summary: str, measured: str = "not measured yet", **config) -> None:
    RECIPES[name] = Recipe(name, summary, config, measured)


_add(
    "demo",
    "LeNet-5 on the embedded digits: the README's first run (under a minute on 2 cores)",
    "95.54% test top-1 (359 digits) with best.pt chosen on 144 validation digits (epoch 6), "
    "26.5 s training, 37.6 s wall for `cnnlab demo`; 2026-11-29, shared 2-core EPYC, load 4-7",
    model="lenet5", data="digits", epochs=12, batch_size=64, optimizer="nesterov", lr=0.05,
    schedule="cosine", warmup=1, weight_decay=5e-4, label_smoothing=0.0, preprocess="standardize",
)  # fmt: skip
_add(
    "lenet5-mnist",
    "LeNet-5 (modern form) on MNIST, 99.0%+ test accuracy",
    "99.29% after 6 epochs; 99.0% reached in 19.8 s (epoch 4) on 2 cores, 5.86x faster than "
    "a course DataLoader loop; 2026-11-23, 2-core EPYC",
    model="lenet5", data="mnist", epochs=6, batch_size=128, optimizer="nesterov", lr=0.05,
    schedule="onecycle", warmup=1, weight_decay=5e-4, label_smoothing=0.0,
    preprocess="standardize",
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
    "airbench-style: whitened first conv, BN, label smoothing, alternating flips, flip TTA",
    "CPU, CIFAR-10 (JPEG), widths 32/64/128, 25 epochs: 88.06% (flip TTA) in 30.4 min on "
    "2 cores; GPU not measured",
    model="cifar-fast-net", data="cifar10-jpeg", epochs=10, batch_size=512, optimizer="nesterov",
    lr=0.2, momentum=0.85, schedule="onecycle", warmup=0.5, weight_decay=5e-4,
    label_smoothing=0.2, preprocess="standardize", augment="alternating-flip", tta="flip",
)  # fmt: skip
_add(
    "cifar100-assignment",
    "seed 001's assignment: ResNet-56 on CIFAR-100 with the lectures' practice, aiming at 60%+",
    model="resnet56", data="cifar100", epochs=60, batch_size=128, optimizer="nesterov", lr=0.1,
    schedule="cosine", warmup=2, weight_decay=5e-4, label_smoothing=0.1,
    preprocess="standardize", augment="cifar",
)  # fmt: skip
_add(
    "fcn8s-digits-seg",
    "FCN-8s (small form) on the generated digits-seg: per-pixel classes, mIoU per epoch",
    model="fcn8s_small", data="digits-seg", epochs=15, batch_size=32, optimizer="adamw",
    lr=3e-3, schedule="cosine", warmup=1, weight_decay=1e-4, preprocess="standardize",
)  # fmt: skip
_add(
    "yolov1-digits-det",
    "YOLO v1 (small form) on the generated digits-det: the paper's loss, mAP@0.5 per epoch",
    model="yolov1_small", data="digits-det", epochs=40, batch_size=32, optimizer="adamw",
    lr=1e-3, schedule="cosine", warmup=1, weight_decay=5e-4, preprocess="standardize",
)  # fmt: skip
_add(
    "fasterrcnn-digits-det",
    "Faster R-CNN (small form: one map, 9 anchors, RoI pooling) on digits-det, mAP@0.5",
    model="fasterrcnn_small", data="digits-det", epochs=15, batch_size=16, optimizer="adamw",
    lr=1e-3, schedule="cosine", warmup=1, weight_decay=1e-4, preprocess="standardize",
)  # fmt: skip


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown recipe {name!r}",
            suggest(name, RECIPES) or f"run `cnnlab recipes`; known: {', '.join(RECIPES)}",
        ) from None
