"""The resolved configuration of a training run: every knob in one flat, YAML-able dataclass.

Precedence when a run starts: dataclass defaults < recipe (``--recipe``) < explicit flags.
The resolved config is written to ``runs/<name>/config.yaml`` and into every checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab._util import atomic_write
from cnnlab.errors import ConfigError, suggest

OPTIMIZERS = ("sgd", "nesterov", "adamw", "muon", "muon-adamw")  # muon*: training.muon
LOSSES = ("cross-entropy", "hinge")  # training.tasks.LOSSES
SCHEDULES = ("constant", "step", "cosine", "onecycle")  # training.schedule uses these
# cnnlab.data's names (data.preprocess.MODES, data.tta.TTA_MODES; a test keeps them equal),
# restated here because `cnnlab --help` builds the train flags without importing torch.
PREPROCESS_MODES = ("standardize", "channel-mean", "mean-image", "none")
TTA_MODES = ("none", "flip", "flip-shift", "10crop", "multiscale")


def opt(default=None, help: str = "", *, flag: str | None = None, factory=None, **argparse_kw):
    """A config field that is also a ``cnnlab train`` flag: ``--field-name`` (or ``flag``),
    with ``help``; type, choices and default come from the field (``cli/train.py``)."""
    meta = {"help": help, "flag": flag, "argparse": argparse_kw}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Every knob of a run. Fields made with :func:`opt` are ``cnnlab train`` flags."""

    # what
    model: str = "lenet5"
    model_options: dict = field(default_factory=dict)  # extra builder options (-O key=value)
    data: str = opt(
        "digits",
        "digits (built in), mnist, fashion-mnist, cifar10, cifar100, "
        "cifar10-jpeg, or an image folder",
        metavar="NAME",
    )
    data_dir: str | None = opt(
        None,
        "where the dataset files are [default: $CNNLAB_DATA or ~/.cache/cnnlab/data]",
        metavar="DIR",
    )
    download: bool = opt(False, "fetch a missing MNIST / Fashion-MNIST / CIFAR archive when online")
    image_size: int | None = opt(
        None,
        "resize every image on load: its shorter side to N, then the centre N x N crop "
        "(for image folders of mixed sizes)",
        metavar="N",
    )
    input_size: int | None = opt(None, "model input side [default: the model's]", metavar="PX")
    val_fraction: float = opt(
        0.1,
        "fraction of the training split held out for validation, which chooses best.pt, early "
        "stopping and --target (a dataset's own val split is used when it has one); 0: none",
    )
    test: bool = opt(
        True,
        "score the test split once at the end, with the weights validation chose; --no-test "
        "leaves it unseen (tune on validation, then score it once: cnnlab eval RUN)",
    )
    # how long / how big
    epochs: float = opt(10, "epochs (fractions allowed)")
    budget_min: float = opt(
        0.0,
        "train for this many minutes of wall time instead of --epochs: the schedule runs on the "
        "share of the budget spent, and training stops in time for the final evaluation "
        "(0: off; under torchrun rank 0's clock decides for every process)",
        metavar="MIN",
    )
    batch_size: int = opt(128, "global batch size")
    eval_batch_size: int = opt(1024, "batch size of the evaluations")
    # optimizer
    optimizer: str = opt(
        "sgd",
        "muon: Muon (orthogonalised momentum) on the hidden weights (conv filters, fully "
        "connected matrices but the classifier) at --muon-lr, Nesterov SGD on the rest at --lr; "
        "muon-adamw: the same with AdamW on the rest",
        choices=OPTIMIZERS,
    )
    lr: float = opt(0.05, "peak learning rate")
    momentum: float = opt(0.9, "SGD momentum")
    muon_lr: float = opt(0.24, "--optimizer muon*: the hidden weights' peak learning rate")
    muon_momentum: float = opt(0.6, "--optimizer muon*: the hidden weights' momentum")
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's
    weight_decay: float = opt(5e-4, "decoupled weight decay on weights (not biases/BN)")
    # schedule
    schedule: str = opt("cosine", "lr schedule after the warm-up", choices=SCHEDULES)
    warmup: float = opt(0.0, "epochs of linear warm-up (fractions allowed)", metavar="EPOCHS")
    final_lr_fraction: float = 0.0
    step_gamma: float = 0.1
    step_milestones: tuple[float, ...] = (0.5, 0.75)
    # loss
    loss: str = opt(
        "cross-entropy",
        "cross-entropy (softmax) or hinge (seed 001's multiclass SVM loss, margin 1: "
        "mean over images of sum over j != y of max(0, s_j - s_y + 1))",
        choices=LOSSES,
    )
    label_smoothing: float = opt(0.0, "")
    l2: float = opt(0.0, "L2 loss term LAMBDA*sum W^2", metavar="LAMBDA")
    l1: float = opt(
        0.0,
        "L1 loss term LAMBDA*sum |W|; with --elastic-net the elastic net's strength",
        metavar="LAMBDA",
    )
    elastic_net: float | None = opt(
        None, "elastic net (seed 001): l1 * sum(BETA*W^2 + |W|)", metavar="BETA"
    )
    aux_weight: float | None = opt(None, "GoogLeNet's auxiliary loss weight [default: 0.3]")
    # data pipeline
    augment: str = opt(
        "none",
        "batch augmentation preset or spec of cnnlab.data, e.g. flip-crop,cutout=8",
        metavar="PRESET",
    )
    preprocess: str = opt(
        "standardize",
        "fitted on the training split, stored in the checkpoint",
        choices=PREPROCESS_MODES,
    )
    tta: str = opt("none", "test-time augmentation of the final evaluation", choices=TTA_MODES)
    # extras
    ema: float | None = opt(None, "keep an EMA of the weights, e.g. 0.999", metavar="DECAY")
    amp: bool = opt(False, "bf16 autocast (CUDA, and CPUs with AMX or AVX512-BF16)")
    channels_last: bool | None = opt(
        None,
        "channels_last (NHWC) tensors, on unless --no-channels-last (NCHW): 1.5-2x faster "
        "LeNet steps on a CPU",
    )  # None (older configs): on
    compile: bool = opt(False, "torch.compile the model")
    deterministic: bool = opt(False, "deterministic algorithms: runs repeat exactly")
    seed: int = opt(0, "")
    device: str = opt("auto", "cpu, cuda, cuda:N or auto")
    threads: int | None = opt(None, "CPU threads [default: all cores this process may use]")
    target_top1: float | None = opt(
        None, "stop once the validation top-1 reaches TOP1 percent", flag="--target", metavar="TOP1"
    )
    patience: int | None = opt(
        None,
        "early stopping: stop after N evaluations without a better validation score",
        metavar="N",
    )
    eval_every: int = opt(
        1, "epochs between evaluations (the last is always evaluated)", metavar="EPOCHS"
    )
    # fine-tuning
    finetune: str | None = opt(
        None,
        "start from a cnnlab checkpoint or a state-dict file "
        "(e.g. torchvision's); the head is replaced for the new class "
        "count",
        metavar="CKPT",
    )
    freeze_backbone: bool = opt(False, "fine-tuning: train only the new head")
    backbone_lr_mult: float = opt(1.0, "backbone lr = M x --lr when fine-tuning", metavar="M")
    # run folder
    name: str | None = opt(None, "run folder name [default: MODEL-DATA-TIME]")
    runs_dir: str = opt("runs", "", metavar="DIR")
    recipe: str | None = None
    task: str = "classification"  # training.tasks.TASKS
    quiet: bool = False
    plots: bool = True  # loss/accuracy/confusion PNGs at the end (CSV files are always written)

    def validate(self) -> TrainConfig:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}",
                suggest(self.optimizer, OPTIMIZERS) or f"choose one of: {', '.join(OPTIMIZERS)}",
            )
        for f in dataclasses.fields(self):  # nan and inf pass every comparison test below
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                _out_of_range(f.name, v, "finite", self)
        for k in ("epochs", "batch_size", "lr", "muon_lr"):
            if not getattr(self, k) > 0:
                _out_of_range(k, getattr(self, k), "> 0", self)
        for k in ("weight_decay", "l2", "l1", "warmup", "label_smoothing", "backbone_lr_mult",
                  "budget_min"):  # fmt: skip
            if getattr(self, k) < 0:
                _out_of_range(k, getattr(self, k), ">= 0", self)
        for k in ("momentum", "muon_momentum"):  # 1 or more: the velocity never decays
            if not 0 <= getattr(self, k) < 1:
                _out_of_range(k, getattr(self, k), "in [0, 1)", self)
        if self.target_top1 is not None and not 0 < self.target_top1 <= 100:
            _out_of_range("target_top1", self.target_top1, "in (0, 100] (a percentage)", self)
        if self.name is not None and (self.name in ("", ".", "..") or any(
            sep in self.name for sep in "/\\")):  # a path would leave --runs-dir  # fmt: skip
            raise ConfigError(
                f"--name {self.name!r} is not a folder name",
                "give a plain name like --name my-run; --runs-dir says where the folder goes",
            )
        fixed = [k for k in ("num_classes", "in_channels") if k in self.model_options]
        if fixed:  # the builder gets both from the data; a second value would clash with it
            raise ConfigError(
                f"-O {fixed[0]}=... is set by the data (--data {self.data}: its classes and "
                "channels), not by an option",
                "drop it; to train on other classes, give other data (e.g. a folder of "
                "images, <dir>/train/<class>/*.jpg)",
            )
        if self.label_smoothing >= 1:
            _out_of_range("label_smoothing", self.label_smoothing, "< 1", self)
        if self.loss not in LOSSES:
            raise ConfigError(
                f"unknown loss {self.loss!r}",
                suggest(self.loss, LOSSES) or f"choose one of: {', '.join(LOSSES)}",
            )
        if self.loss == "hinge" and self.label_smoothing:
            raise ConfigError(
                "--label-smoothing softens cross-entropy's targets; the hinge loss has none",
                "drop --label-smoothing, or use --loss cross-entropy",
            )
        if self.loss == "hinge" and _mixup_on(self.augment):
            raise ConfigError(
                "mixup makes soft targets and the hinge loss needs one class per image",
                "drop mixup from --augment, or use --loss cross-entropy",
            )
        if self.elastic_net is not None and self.l1 <= 0:
            raise ConfigError(
                "--elastic-net BETA needs a strength: the penalty is l1 * sum(beta*W^2 + |W|)",
                "add --l1 LAMBDA, e.g. --elastic-net 0.5 --l1 1e-5",
            )
        if not 0 <= self.val_fraction < 1:
            _out_of_range("val_fraction", self.val_fraction, "in [0, 1)", self)
        for k in ("eval_every", "eval_batch_size", "patience", "image_size", "input_size",
                  "threads"):  # fmt: skip
            v = getattr(self, k)
            if v is not None and v < 1:
                _out_of_range(k, v, ">= 1", self)
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "the config") -> TrainConfig:
        """A config from plain data (a YAML file, a checkpoint); each value's type is checked
        against its field, so a typo says which key and what it should be."""
        if not isinstance(d, dict):
            raise ConfigError(
                f"{source} is not a mapping of keys to values (it holds a {type(d).__name__})",
                "write one `key: value` per line, like runs/<name>/config.yaml",
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = [str(k) for k in d if k not in names]
        if unknown:
            raise ConfigError(
                f"unknown key(s) in {source}: {', '.join(unknown)}",
                suggest(unknown[0], names) or "see `cnnlab train --help`",
            )
        d = {k: _checked(k, v, source) for k, v in d.items()}
        return cls(**d)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save_yaml(self, path: str | Path) -> None:
        atomic_write(path, self.to_yaml())

    @classmethod
    def load_yaml(cls, path: str | Path) -> TrainConfig:
        import yaml

        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            what = (
                "is not UTF-8 text"
                if isinstance(e, UnicodeDecodeError)
                else ("does not exist" if not path.exists() else f"cannot be read ({e.strerror})")
            )
            raise ConfigError(
                f"--config {path} {what}",
                "give the config.yaml of an earlier run (runs/<name>/config.yaml)",
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            raise ConfigError(
                f"--config {path} is not valid YAML{at}: {getattr(e, 'problem', e)}",
                "write one `key: value` per line, like runs/<name>/config.yaml",
            ) from None
        return cls.from_dict(data or {}, source=f"--config {path}")


def _out_of_range(key: str, value, rule: str, cfg: TrainConfig):
    """A range error naming the flag, the rule and the default."""
    field_ = TrainConfig.__dataclass_fields__[key]
    flag = field_.metadata.get("flag") or "--" + key.replace("_", "-")
    default = getattr(TrainConfig, key, None)
    example = f" (the default is {default})" if default is not None else ""
    raise ConfigError(
        f"{flag} must be {rule}, got {value}", f"give {flag} a value that is {rule}{example}"
    )


def _checked(key: str, value, source: str):
    """``value`` as field ``key``'s type, or a ConfigError naming the key and the type."""
    import types
    import typing

    hint = typing.get_type_hints(TrainConfig)[key]
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
    if optional:
        hint = next(t for t in typing.get_args(hint) if t is not type(None))
    kind = typing.get_origin(hint) or hint
    if value is None:
        if optional:
            return None
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if isinstance(value, int) else value
    elif kind is tuple and isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return tuple(value)
    elif (
        kind is int
        and isinstance(value, int)
        and not isinstance(value, bool)
        or kind in (str, bool, dict)
        and isinstance(value, kind)
    ):
        return value
    want = {float: "a number", int: "a whole number", str: "text", bool: "true or false",
            tuple: "a list of numbers", dict: "a mapping"}[kind]  # fmt: skip
    raise ConfigError(
        f"{key} in {source} must be {want}, got {value!r}",
        f"fix the value of {key} (see `cnnlab train --help` for --{key.replace('_', '-')})",
    )


def _mixup_on(augment: str) -> bool:
    """Whether an --augment spec (``preset,key=value,...``) switches mixup on."""
    for part in str(augment or "").split(","):
        key, _, value = part.partition("=")
        if key.strip().replace("-", "_") == "mixup":
            try:
                return float(value) > 0
            except ValueError:
                return True  # a bad value: the augmentation parser names it later
    return False
