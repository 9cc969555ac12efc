"""The trainer: one function, :func:`train`, that reads top to bottom.

    config -> devices and determinism -> data in memory -> model (zoo, or a fine-tuned start)
    -> input pipeline (fitted preprocessor) -> optimizer + schedule (+ EMA) -> run folder
    -> [resume] -> epochs of steps -> final evaluation -> summary.json

Every random draw of optimizer step ``k`` (augmentation, dropout) comes from the global torch
generator re-seeded with ``(seed, k, rank)``, and the order of epoch ``e`` is a pure function of
``(seed, e)``. So a run's whole random state is two integers, which is why ``--resume`` from a
checkpoint -- saved at an epoch's end or mid-epoch on Ctrl-C -- ends, with ``--deterministic``
on the CPU, with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError, ConfigError, DataError
from cnnlab.training import distributed as D
from cnnlab.training.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.training.config import TrainConfig
from cnnlab.training.ema import EMA
from cnnlab.training.evaluate import evaluate
from cnnlab.training.finetune import (
    find_heads,
    freeze_backbone,
    load_start_weights,
    replace_head,
    split_params,
)
from cnnlab.training.models import build_model, default_num_classes, model_input_size
from cnnlab.training.pipeline import InputPipeline
from cnnlab.training.progress import TrainProgress
from cnnlab.training.regularization import is_weight, penalty
from cnnlab.training.schedule import Schedule

__all__ = ["RunResult", "StepState", "TrainingDiverged", "derive_seed", "train"]

METRIC_KEYS = [
    "epoch",
    "step",
    "lr",
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "val_top5",
    "epoch_seconds",
    "wall_seconds",
    "images_per_second",
]


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


@dataclass
class StepState:
    """What a callback sees after each optimizer step."""

    epoch: int  # 0-based epoch being trained
    step: int  # optimizer steps completed in the whole run
    batch: int  # batches completed in this epoch
    loss: torch.Tensor
    lr: float
    model: nn.Module  # the bare model (not the DDP/compiled wrapper)


@dataclass
class RunResult:
    status: str  # completed | target-reached | interrupted | diverged
    run_dir: Path | None
    summary: dict
    history: list[dict]
    model: nn.Module
    message: str = ""
    final: object | None = None  # EvalResult of the final evaluation
    extras: dict = field(default_factory=dict)


def derive_seed(*parts) -> int:
    """A 63-bit seed from any parts: independent streams for (seed, step, rank) triples."""
    h = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}", "use cpu, cuda, cuda:1 or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was asked for, but no CUDA GPU is available",
            "use --device cpu (or auto)",
        )
    return dev


def configure_torch(cfg: TrainConfig, device: torch.device) -> None:
    """Threads, determinism and the fast paths, set once per process."""
    if device.type == "cpu":
        want = cfg.threads or len(os.sched_getaffinity(0))
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = not cfg.deterministic
        torch.backends.cudnn.allow_tf32 = not cfg.deterministic


# --------------------------------------------------------------------------------------------
# data


def load_data(cfg: TrainConfig):
    """(train, eval) ImageSets: the test split, or a seeded hold-out of ``val_fraction``."""
    from cnnlab.data import load_dataset

    get = dict(data_dir=cfg.data_dir, download=cfg.download)
    train_set = load_dataset(cfg.data, split="train", **get)
    if cfg.val_fraction > 0:
        return split_holdout(train_set, cfg.val_fraction, cfg.seed)
    return train_set, load_dataset(cfg.data, split="test", **get)


def split_holdout(ds, fraction: float, seed: int):
    import dataclasses

    g = torch.Generator().manual_seed(derive_seed(seed, "holdout"))
    perm = torch.randperm(len(ds.labels), generator=g)
    k = max(1, int(round(fraction * len(perm))))
    val, tr = perm[:k].sort().values, perm[k:].sort().values

    def part(ix, tag):
        return dataclasses.replace(
            ds, images=ds.images[ix], labels=ds.labels[ix], name=f"{ds.name}[{tag}]"
        )

    return part(tr, "train"), part(val, "val")


def make_augment(spec: str, num_classes: int):
    """cnnlab.data's batch augmentation from a preset or a spec such as
    ``flip-crop,cutout=8,mixup=0.2`` (None for ``none``). Its random draws come from torch's
    global generator, which the trainer re-seeds every step."""
    if not spec or spec == "none":
        return None
    from cnnlab.data.augment import Augment

    return Augment.from_spec(spec, num_classes=num_classes, out_dtype=torch.float32)


def apply_augment(aug, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor | None = None):
    """uint8 batch -> (augmented [0, 1] float batch, targets). Targets are class indices, or
    soft ``[B, K]`` probabilities when the augmentation mixes images (mixup)."""
    if aug is None:
        return x, y
    return aug(x, y, index=index)


# --------------------------------------------------------------------------------------------
# model


def _build(cfg: TrainConfig, num_classes: int, in_channels: int, device: torch.device):
    """Model at its start (fresh, or fine-tuned from --finetune) and the head names."""
    opts = dict(cfg.model_options)
    if not cfg.finetune:
        model = build_model(cfg.model, num_classes=num_classes, in_channels=in_channels, **opts)
        heads = []
        if cfg.freeze_backbone or cfg.backbone_lr_mult != 1.0:
            raise ConfigError(
                "--freeze-backbone / --backbone-lr-mult need --finetune CKPT",
                "give the checkpoint to start from with --finetune",
            )
        return model.to(device), heads
    src = Path(cfg.finetune)
    state = load_checkpoint(src)
    if state.get("format") == "cnnlab-checkpoint":
        mname = state["model_name"]
        if mname != cfg.model:
            raise ConfigError(
                f"--finetune {src} holds a {mname!r} model, not {cfg.model!r}",
                f"use `cnnlab train {mname} --finetune {src} ...`",
            )
        mopts = dict(state["model_options"])
        old_classes = mopts.pop("num_classes")
        model = build_model(mname, num_classes=old_classes, **mopts)
        weights = state["model"]
    else:  # a plain state dict (e.g. torchvision's), for the zoo's default head
        old_classes = default_num_classes(cfg.model)
        model = build_model(cfg.model, num_classes=old_classes, in_channels=in_channels, **opts)
        weights = state.get("state_dict", state.get("model", state))
    load_start_weights(model, weights, str(src))
    if old_classes != num_classes:
        heads = replace_head(model, old_classes, num_classes)
    else:
        heads = find_heads(model, num_classes)
    return model.to(device), heads


def _param_groups(model, cfg: TrainConfig, heads: list[str]):
    """Weights get decoupled weight decay, biases/norms none; a fine-tuned backbone may get a
    smaller learning rate (``backbone_lr_mult``) or none at all (frozen)."""
    if heads:
        backbone, head = split_params(model, heads)
        sets = [(head, cfg.lr)]
        if not cfg.freeze_backbone and cfg.backbone_lr_mult > 0:
            sets.append((backbone, cfg.lr * cfg.backbone_lr_mult))
    else:
        sets = [(list(model.parameters()), cfg.lr)]
    names = {id(p): n for n, p in model.named_parameters()}
    groups = []
    for params, lr in sets:
        params = [p for p in params if p.requires_grad]
        dec = [p for p in params if is_weight(names[id(p)], p)]
        nodec = [p for p in params if not is_weight(names[id(p)], p)]
        for ps, wd in ((dec, cfg.weight_decay), (nodec, 0.0)):
            if ps:
                groups.append({"params": ps, "lr": lr, "base_lr": lr, "weight_decay": wd})
    if not groups:
        raise ConfigError("no parameter is left to train (everything is frozen)")
    return groups


def make_optimizer(groups, cfg: TrainConfig, device: torch.device):
    fused = {"fused": True} if device.type == "cuda" else {}
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), **fused)
    return torch.optim.SGD(
        groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.optimizer == "nesterov", **fused
    )


def aux_weight(cfg: TrainConfig) -> float:
    if cfg.aux_weight is not None:
        return cfg.aux_weight
    try:
        from cnnlab.models.googlenet import AUX_LOSS_WEIGHT
    except ImportError:  # pragma: no cover
        return 0.3  # Szegedy et al. 2015, section 5
    return AUX_LOSS_WEIGHT


def classification_loss(out, target, *, label_smoothing: float, aux_w: float):
    """Cross-entropy (+ ``aux_w`` x each auxiliary head's, when the model returns
    ``(logits, aux1, aux2, ...)`` in training mode, as GoogLeNet does)."""
    if isinstance(out, (tuple, list)):
        main, *aux = out
        loss = F.cross_entropy(main, target, label_smoothing=label_smoothing)
        for a in aux:
            if a is not None:
                loss = loss + aux_w * F.cross_entropy(a, target, label_smoothing=label_smoothing)
        return loss, main
    return F.cross_entropy(out, target, label_smoothing=label_smoothing), out


# --------------------------------------------------------------------------------------------
# run folder


def _run_name(cfg: TrainConfig) -> str:
    return cfg.name or f"{cfg.model}-{cfg.data.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    """metrics.csv and metrics.jsonl rewritten from the history (so a resumed run has no rows
    from after its checkpoint)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_KEYS, extrasaction="ignore")
    w.writeheader()
    for r in history:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in METRIC_KEYS})
    (run_dir / "metrics.csv").write_text(buf.getvalue())
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))


class _TensorBoard:
    def __init__(self, run_dir: Path | None):
        self.w = None
        if run_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # tensorboard not installed: CSV/JSONL only
            return
        self.w = SummaryWriter(str(run_dir / "tensorboard"))

    def row(self, r: dict) -> None:
        if self.w is not None:
            for k, v in r.items():
                if k not in ("epoch", "step") and isinstance(v, (int, float)):
                    self.w.add_scalar(k, v, r["epoch"])
            self.w.flush()

    def close(self) -> None:
        if self.w is not None:
            self.w.close()


class _SigintFlag:
    """First Ctrl-C sets a flag checked between steps (so the saved state is consistent);
    a second one interrupts at once."""

    def __init__(self):
        self.hit = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


# --------------------------------------------------------------------------------------------
# the run


def train(
    cfg: TrainConfig,
    *,
    train_set=None,
    eval_set=None,
    callbacks: list[Callable[[StepState], None]] | None = None,
    resume: str | Path | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data`` (or the given ImageSets) and write ``runs/<name>/``.

    ``resume`` is a run folder or a checkpoint: the run continues with the checkpoint's
    config (``cfg`` only supplies a new ``epochs`` when it is larger).
    """
    callbacks = list(callbacks or [])
    ckpt = None
    if resume is not None:
        ckpt_path = Path(resume)
        ckpt_path = ckpt_path / "last.pt" if ckpt_path.is_dir() else ckpt_path
        ckpt = load_checkpoint(ckpt_path)
        if ckpt.get("format") != "cnnlab-checkpoint" or "optimizer" not in ckpt:
            raise DataError(f"{ckpt_path} is not a resumable cnnlab training checkpoint")
        stored = TrainConfig.from_dict(ckpt["config"])
        cfg = stored.replace(
            epochs=max(stored.epochs, cfg.epochs) if cfg else stored.epochs,
            quiet=cfg.quiet if cfg else stored.quiet,
        )
    cfg = cfg.validate()
    t_start = time.perf_counter()

    # devices, processes, determinism
    device = resolve_device(cfg.device)
    dist = D.setup(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    configure_torch(cfg, device)
    main = dist.is_main
    # NHWC: 1.5-2x faster LeNet/VGG steps on this 2-core EPYC (oneDNN), the tensor-core layout
    channels_last = cfg.channels_last is not False

    # data, held in memory as uint8
    if train_set is None:
        train_set, eval_set = load_data(cfg)
    elif eval_set is None:  # only a training set given: hold out part of it
        train_set, eval_set = split_holdout(train_set, cfg.val_fraction or 0.1, cfg.seed)
    classes = list(train_set.classes)
    num_classes = len(classes)
    in_ch, data_h, data_w = train_set.images.shape[1:]
    if cfg.batch_size % dist.world_size:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} does not split over {dist.world_size} processes",
            "use a multiple of the process count",
        )

    # model
    torch.manual_seed(derive_seed(cfg.seed, "init"))  # every rank starts from the same weights
    model, heads = _build(cfg, num_classes, in_ch, device)
    frozen_norms = freeze_backbone(model, heads) if cfg.freeze_backbone else []
    if cfg.input_size:
        model_hw = (cfg.input_size, cfg.input_size)
    else:
        model_hw = model_input_size(cfg.model)[1:]
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    # input pipeline: preprocessing fitted on the training split
    from cnnlab.data.preprocess import Preprocessor

    pre = Preprocessor(cfg.preprocess)
    if ckpt is not None:
        pre.load_state_dict(ckpt["pipeline"]["preprocessor"])
    else:
        pre.fit(train_set.images)
    pipeline = InputPipeline(pre, (data_h, data_w), model_hw, channels_last)
    augment = make_augment(cfg.augment, num_classes)
    if hasattr(model, "data_init") and ckpt is None and not cfg.finetune:
        # e.g. cifar-fast-net's whitening filters, from (up to) 5,000 training images
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "data_init"))
        pick = torch.randperm(len(train_set.labels), generator=g)[:5000]
        model.data_init(pipeline(train_set.images[pick].to(device)))

    # optimizer, schedule, EMA
    sampler = D.ShardSampler(len(train_set.labels), dist.rank, dist.world_size, cfg.seed)
    from cnnlab.data.loader import BatchLoader

    local_batch = cfg.batch_size // dist.world_size
    loader = BatchLoader(
        train_set.images,
        train_set.labels,
        local_batch,
        drop_last=True,
        device=device,
        seed=cfg.seed,
        sampler=sampler,
        return_index=True,  # alternating flips need the dataset index of each image
    )
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} is larger than the training set "
            f"({len(train_set.labels)} images)",
            "use a smaller --batch-size",
        )
    total_steps = max(1, round(cfg.epochs * steps_per_epoch))
    n_epochs = math.ceil(total_steps / steps_per_epoch)
    optimizer = make_optimizer(_param_groups(model, cfg, heads), cfg, device)
    schedule = Schedule(
        cfg.schedule,
        total_steps,
        warmup_steps=min(total_steps, round(cfg.warmup * steps_per_epoch)),
        final=cfg.final_lr_fraction,
        gamma=cfg.step_gamma,
        milestones=tuple(cfg.step_milestones),
    )
    ema = EMA(model, cfg.ema) if cfg.ema else None
    net = model
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile:
        net = torch.compile(net)
    aux_w = aux_weight(cfg)
    beta = cfg.elastic_net

    # run folder (rank 0 writes)
    history: list[dict] = []
    best = {"epoch": None, "top1": None}
    start_epoch, skip_batches, step, wall_before = 0, 0, 0, 0.0
    if ckpt is not None:
        run_dir = Path(resume) if Path(resume).is_dir() else Path(resume).parent
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None and ckpt.get("ema"):
            ema.load_state_dict(ckpt["ema"])
        start_epoch, skip_batches = int(ckpt["epoch"]), int(ckpt["batch_in_epoch"])
        step = int(ckpt["step"])
        history, best = list(ckpt["history"]), dict(ckpt["best"])
        wall_before = float(ckpt["wall_seconds"])
    else:
        run_dir = Path(cfg.runs_dir) / _run_name(cfg)
        if main:
            if (run_dir / "last.pt").exists():
                raise ConfigError(
                    f"run folder {run_dir} already holds a run",
                    f"continue it with --resume {run_dir}, or pick another --name",
                )
            run_dir.mkdir(parents=True, exist_ok=True)
    cfg = cfg.replace(name=run_dir.name)
    if main:
        cfg.save_yaml(run_dir / "config.yaml")
    tb = _TensorBoard(run_dir if main else None)

    model_options = {"num_classes": num_classes, "in_channels": int(in_ch), **cfg.model_options}

    def state_dict(epoch: int, batch_in_epoch: int) -> dict:
        return {
            "kind": "train",
            "config": cfg.to_dict(),
            "model_name": cfg.model,
            "model_options": model_options,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": {"name": schedule.name, "step": step, "total_steps": total_steps},
            "ema": ema.state_dict() if ema is not None else None,
            "pipeline": pipeline.state_dict(),
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "step": step,
            "classes": classes,
            "data": {
                "name": getattr(train_set, "name", cfg.data),
                "size": [int(in_ch), int(data_h), int(data_w)],
            },
            "history": history,
            "best": best,
            "wall_seconds": wall_before + time.perf_counter() - t_start,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
            },
        }

    def save(name: str, epoch: int, batch_in_epoch: int) -> None:
        if main:
            save_checkpoint(state_dict(epoch, batch_in_epoch), run_dir / name)

    def eval_model():
        return ema.module if ema is not None else model

    eval_images, eval_labels = eval_set.images, eval_set.labels
    if device.type == "cuda":  # GPU-resident like the training set
        eval_images, eval_labels = eval_images.to(device), eval_labels.to(device)

    def run_eval(tta="none"):
        return evaluate(
            eval_model(),
            eval_images,
            eval_labels,
            pipeline,
            num_classes=num_classes,
            batch_size=cfg.eval_batch_size,
            device=device,
            tta=tta,
            amp=cfg.amp,
            classes=classes,
            dist=dist,
        )

    # ---------------------------------------------------------------------------------- loop
    def show_progress(epoch, seen, loss_sum, correct, t_epoch) -> None:
        speed = seen * dist.world_size / (time.perf_counter() - t_epoch)
        bar.update(step, loss=float(loss_sum) / seen, acc=100 * float(correct) / seen,
                   speed=speed, desc=f"epoch {epoch + 1}")  # fmt: skip

    def reseed(seed: int) -> None:
        # the CPU generator (and this GPU's): torch.manual_seed would cost ~0.5 ms a step
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.default_generators[device.index or 0].manual_seed(seed)

    bar = TrainProgress(
        total_steps, enabled=progress if main else False, quiet=cfg.quiet or not main
    )
    amp_ctx = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp)
    check_every = 1 if device.type == "cpu" else 25  # reading the loss syncs a GPU
    status, message, epoch, batch_i = "completed", "", start_epoch, skip_batches
    epoch_done = False
    lr_f, last_ev = schedule.factor(max(0, step - 1)), None
    pending: list[tuple[int, float, torch.Tensor]] = []  # (step, lr, loss) not yet checked
    model.train()
    for m in frozen_norms:
        m.eval()
    sigint = _SigintFlag()
    try:
        with sigint:
            for epoch in range(start_epoch, n_epochs):
                t_epoch, seen, epoch_done = time.perf_counter(), 0, False
                loss_sum = torch.zeros((), device=device)
                correct = torch.zeros((), device=device, dtype=torch.int64)
                loader.set_epoch(epoch)
                if augment is not None:
                    augment.set_epoch(epoch)
                batch_i = 0
                for x, y, index in loader:
                    if batch_i < skip_batches:  # resuming mid-epoch: these were trained
                        batch_i += 1
                        continue
                    if step >= total_steps:
                        break
                    reseed(derive_seed(cfg.seed, step, dist.rank))
                    lr_f = schedule.apply(optimizer, step)
                    x, target = apply_augment(augment, x, y, index)
                    with amp_ctx:
                        out = net(pipeline(x))
                        loss, logits = classification_loss(
                            out, target, label_smoothing=cfg.label_smoothing, aux_w=aux_w
                        )
                    reg = penalty(model, l2=cfg.l2, l1=cfg.l1, beta=beta)
                    total = loss + reg
                    pending.append((step, lr_f * cfg.lr, total.detach()))
                    if len(pending) >= check_every:
                        _check_finite(pending)
                    optimizer.zero_grad(set_to_none=True)
                    total.backward()
                    optimizer.step()
                    if ema is not None:
                        ema.update(model)
                    step += 1
                    batch_i += 1
                    n = len(y)
                    seen += n
                    loss_sum += loss.detach().float() * n
                    hard = target if target.ndim == 1 else target.argmax(1)
                    correct += (logits.detach().argmax(1) == hard).sum()
                    if callbacks:
                        st = StepState(epoch, step, batch_i, total.detach(), lr_f * cfg.lr, model)
                        for cb in callbacks:
                            cb(st)
                    if bar.due():
                        show_progress(epoch, seen, loss_sum, correct, t_epoch)
                    if sigint.hit:
                        raise KeyboardInterrupt
                skip_batches = 0
                _check_finite(pending)
                if seen and bar.bar is not None:  # the bar's last refresh of the epoch
                    show_progress(epoch, seen, loss_sum, correct, t_epoch)

                # end of epoch: evaluate, log, checkpoint
                ep_time = time.perf_counter() - t_epoch
                row = {
                    "epoch": epoch + 1,
                    "step": step,
                    "lr": lr_f * cfg.lr,
                    "train_loss": float(loss_sum) / max(seen, 1) if seen else None,
                    "train_top1": 100 * float(correct) / seen if seen else None,
                    "val_loss": None,
                    "val_top1": None,
                    "val_top5": None,
                    "epoch_seconds": ep_time,
                    "images_per_second": seen * dist.world_size / ep_time if seen else None,
                }
                last_epoch = epoch + 1 == n_epochs
                if last_epoch or (epoch + 1) % max(1, cfg.eval_every) == 0:
                    ev = last_ev = run_eval()
                    row.update(val_loss=ev.loss, val_top1=ev.top1, val_top5=ev.top5)
                    if best["top1"] is None or ev.top1 > best["top1"]:
                        best = {"epoch": epoch + 1, "top1": ev.top1}
                        save("best.pt", epoch + 1, 0)
                else:
                    last_ev = None
                row["wall_seconds"] = wall_before + time.perf_counter() - t_start
                history.append(row)
                save("last.pt", epoch + 1, 0)
                epoch_done = True
                if main:
                    _write_metrics(run_dir, history)
                    tb.row(row)
                    bar.log(_epoch_line(row, n_epochs))
                hit = (
                    cfg.target_top1 is not None
                    and row["val_top1"] is not None
                    and row["val_top1"] >= cfg.target_top1
                )
                if D.broadcast_flag(hit, dist, device):
                    status = "target-reached"
                    break
    except KeyboardInterrupt:
        status = "interrupted"
        if not epoch_done:  # (an epoch already saved at its end is left as it is)
            save("last.pt", epoch, batch_i)
        message = (
            f"interrupted at epoch {epoch + 1}, step {step}; saved {run_dir / 'last.pt'}.\n"
            f"Continue with: cnnlab train --resume {run_dir}"
        )
    except TrainingDiverged as e:
        status = "diverged"
        kept = run_dir / "last.pt"
        message = e.message + (
            f"; kept the last good checkpoint {kept}"
            if kept.exists()
            else "; no checkpoint had been written yet"
        )
    finally:
        bar.close()
        tb.close()

    # ------------------------------------------------------------------------------- finish
    final = None
    if status in ("completed", "target-reached"):
        final = run_eval(cfg.tta) if cfg.tta != "none" else (last_ev or run_eval())
    last_row = next((r for r in reversed(history) if r.get("val_top1") is not None), None)
    if final is not None:
        final_d = {"top1": final.top1, "top5": final.top5, "loss": final.loss}
    elif last_row is not None:  # interrupted / diverged: the last evaluation we have
        final_d = {
            "top1": last_row["val_top1"],
            "top5": last_row["val_top5"],
            "loss": last_row["val_loss"],
        }
    else:
        final_d = {"top1": None, "top5": None, "loss": None}
    wall = wall_before + time.perf_counter() - t_start
    summary = {
        "model": cfg.model,
        "dataset": getattr(train_set, "name", cfg.data),
        "epochs": history[-1]["epoch"] if history else 0,
        "wall_seconds": wall,
        "final": final_d,
        "best": best,
        "status": status,
        "steps": step,
        "device": str(device),
        "world_size": dist.world_size,
    }
    if main:
        _finish_run_dir(run_dir, history, summary, final, classes, cfg)
    D.teardown(dist)
    return RunResult(status, run_dir, summary, history, model, message, final)


def _epoch_line(r: dict, n_epochs: int) -> str:
    parts = [f"epoch {r['epoch']}/{n_epochs}"]
    if r["train_loss"] is not None:
        parts += [f"loss {r['train_loss']:.4f}", f"train {r['train_top1']:.2f}%"]
    if r["val_top1"] is not None:
        parts.append(f"val top-1 {r['val_top1']:.2f}%")
    if r["images_per_second"] is not None:
        parts.append(f"{r['images_per_second']:,.0f} img/s")
    parts.append(f"{r['epoch_seconds']:.1f}s")
    return "  ".join(parts)


def _check_finite(pending: list) -> None:
    """Stop on the first NaN/inf loss among the steps not yet checked."""
    if not pending:
        return
    losses = torch.stack([p[2] for p in pending]).float().cpu()
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        s, lr, _ = pending[int(bad[0])]
        v = float(losses[int(bad[0])])
        pending.clear()
        raise TrainingDiverged(
            f"the loss became {v} at step {s + 1} (learning rate {lr:.4g}); training stopped",
            "lower --lr, add --warmup, or turn off --amp",
        )
    pending.clear()


def _finish_run_dir(run_dir: Path, history, summary, final, classes, cfg) -> None:
    from cnnlab.viz import plot_history

    _write_metrics(run_dir, history)
    if history and cfg.plots:
        plot_history(history, run_dir, title=f"{cfg.model} on {cfg.data}")
    if final is not None:
        save_confusion(final, classes, run_dir, png=cfg.plots)
    tmp = run_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, run_dir / "summary.json")


def save_confusion(result, classes, out_dir: Path, stem: str = "confusion", png: bool = True):
    """``<stem>.csv`` (true class per row, predicted per column), ``<stem>.png`` and
    ``per_class.csv`` (accuracy of each class)."""
    from cnnlab.viz import plot_confusion

    names = list(classes) or [str(i) for i in range(result.confusion.shape[0])]
    conf = result.confusion.tolist()
    lines = ["true\\predicted," + ",".join(names)]
    lines += [f"{names[i]}," + ",".join(map(str, row)) for i, row in enumerate(conf)]
    csv_path = out_dir / f"{stem}.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    pc = result.per_class
    (out_dir / (stem.replace("confusion", "per_class") + ".csv")).write_text(
        "class,accuracy,count\n"
        + "".join(f"{names[i]},{pc[i]:.4f},{sum(conf[i])}\n" for i in range(len(names)))
    )
    if not png:
        return csv_path, None
    png = plot_confusion(
        result.confusion,
        names,
        out_dir / f"{stem}.png",
        title=f"confusion matrix (top-1 {result.top1:.2f}%)",
    )
    return csv_path, png
