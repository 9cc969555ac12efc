"""The resolved configuration of a training run: every knob in one flat, YAML-able dataclass.

Precedence when a run starts: dataclass defaults < recipe (``--recipe``) < explicit flags.
The resolved config is written to ``runs/<name>/config.yaml`` and into every checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.errors import ConfigError, suggest

OPTIMIZERS = ("sgd", "nesterov", "adamw")


@dataclass
class TrainConfig:
    # what
    model: str = "lenet5"
    model_options: dict = field(default_factory=dict)  # extra builder options (e.g. dropout)
    data: str = "digits"
    data_dir: str | None = None
    download: bool = False  # fetch missing official archives (torchvision) when online
    input_size: int | None = None  # model input side; None: the zoo's registered size
    val_fraction: float = 0.0  # >0: hold out this fraction of train as validation (else: test)
    # how long / how big
    epochs: float = 10
    batch_size: int = 128
    eval_batch_size: int = 1024
    # optimizer
    optimizer: str = "sgd"  # sgd | nesterov | adamw
    lr: float = 0.05
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 5e-4  # decoupled / optimizer-side, weights only (not bias/BN)
    # schedule
    schedule: str = "cosine"  # constant | step | cosine | onecycle
    warmup: float = 0.0  # epochs of linear warm-up (fractions allowed)
    final_lr_fraction: float = 0.0
    step_gamma: float = 0.1
    step_milestones: tuple[float, ...] = (0.5, 0.75)
    # loss
    label_smoothing: float = 0.0
    l2: float = 0.0  # L2 as a loss term: l2 * sum W^2
    l1: float = 0.0  # L1 loss term: l1 * sum |W| (also the elastic net's lambda)
    elastic_net: float | None = None  # beta: l1 * sum(beta W^2 + |W|) (seed 001)
    aux_weight: float | None = None  # GoogLeNet aux losses; None: the zoo's AUX_LOSS_WEIGHT
    # data pipeline
    augment: str = "none"  # an Augment preset of cnnlab.data
    preprocess: str = "standardize"  # standardize | channel-mean | mean-image | none
    tta: str = "none"  # TTA of the final evaluation
    # extras
    ema: float | None = None  # EMA decay (e.g. 0.999); None: off
    amp: bool = False  # bf16 autocast (CUDA; allowed on CPU but rarely faster there)
    channels_last: bool | None = None  # None: on (NHWC convs are faster on CUDA and oneDNN)
    compile: bool = False
    deterministic: bool = False
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch intra-op threads on CPU (None: all cores we may use)
    target_top1: float | None = None  # stop once the evaluated top-1 reaches this (percent)
    eval_every: int = 1  # epochs between evaluations (the last epoch is always evaluated)
    # fine-tuning
    finetune: str | None = None  # checkpoint or state-dict path to start from
    freeze_backbone: bool = False
    backbone_lr_mult: float = 1.0
    # run folder
    name: str | None = None
    runs_dir: str = "runs"
    recipe: str | None = None
    quiet: bool = False
    plots: bool = True  # loss/accuracy/confusion PNGs at the end (CSV files are always written)

    def validate(self) -> TrainConfig:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}",
                suggest(self.optimizer, OPTIMIZERS) or f"choose one of: {', '.join(OPTIMIZERS)}",
            )
        for k in ("epochs", "batch_size", "lr"):
            if not getattr(self, k) > 0:
                raise ConfigError(f"--{k.replace('_', '-')} must be > 0, got {getattr(self, k)}")
        for k in ("weight_decay", "l2", "l1", "warmup", "label_smoothing"):
            if getattr(self, k) < 0:
                raise ConfigError(f"--{k.replace('_', '-')} must be >= 0, got {getattr(self, k)}")
        if self.label_smoothing >= 1:
            raise ConfigError(f"--label-smoothing must be < 1, got {self.label_smoothing}")
        if self.elastic_net is not None and self.l1 <= 0:
            raise ConfigError(
                "--elastic-net BETA needs a strength: the penalty is l1 * sum(beta*W^2 + |W|)",
                "add --l1 LAMBDA, e.g. --elastic-net 0.5 --l1 1e-5",
            )
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.backbone_lr_mult < 0:
            raise ConfigError(f"--backbone-lr-mult must be >= 0, got {self.backbone_lr_mult}")
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in d if k not in names]
        if unknown:
            raise ConfigError(
                f"unknown config key(s): {', '.join(unknown)}",
                suggest(unknown[0], names) or "see `cnnlab train --help`",
            )
        d = dict(d)
        for k in ("betas", "step_milestones"):
            if k in d and d[k] is not None:
                d[k] = tuple(d[k])
        return cls(**d)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def save_yaml(self, path: str | Path) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load_yaml(cls, path: str | Path) -> TrainConfig:
        import yaml

        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})
