"""The trainer: :func:`train` reads top to bottom -- setup, epochs of train / evaluate /
checkpoint, finish -- and the helpers below it each do one of those steps.

Three small objects carry the rest: the *task* (``tasks.py``: how a batch becomes a loss and a
score), the :class:`~cnnlab.training.state.TrainState` (what changes while training; one call
saves or restores it) and the :class:`~cnnlab.training.run_folder.RunFolder` (every file the
run writes, each atomically). Two extension points: ``callbacks`` (called after every step
with a :class:`StepState`) and ``on_finish`` hooks (called with the run folder and the result
once the run has ended -- the CLI and the demo build their reports there, so training never
imports a report).

Every random draw of optimizer step ``k`` (augmentation, dropout) comes from torch's global
generator re-seeded with ``derive_seed(seed, k, rank)``, and the order of epoch ``e`` is a pure
function of ``(seed, e)``. So a run's whole random state is its position, which is why
``--resume`` from a checkpoint -- saved at an epoch's end, or mid-epoch on Ctrl-C or SIGTERM --
ends, with ``--deterministic`` on the CPU, with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnlab._util import derive_seed, frozen_heap
from cnnlab.errors import ConfigError, DataError, TrainingDiverged
from cnnlab.training import distributed as D
from cnnlab.training.checkpoint import FORMAT, load_checkpoint
from cnnlab.training.config import TrainConfig
from cnnlab.training.ema import EMA
from cnnlab.training.progress import TrainProgress
from cnnlab.training.regularization import is_weight, penalty
from cnnlab.training.run_folder import RunFolder
from cnnlab.training.schedule import Budget, Schedule
from cnnlab.training.state import TrainState
from cnnlab.training.tasks import make_task

__all__ = ["RunResult", "StepState", "TrainingDiverged", "metric_columns", "train"]


FINISHED = ("completed", "target-reached", "early-stopped")
# What `--resume` may change; everything else is the run's and stays as it was.
RESUME_CAN_CHANGE = ("epochs", "quiet", "plots", "device", "threads", "eval_batch_size",
                     "eval_every", "target_top1", "patience", "tta", "data_dir", "download",
                     "compile", "test")  # fmt: skip


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
    status: str  # completed | target-reached | early-stopped | interrupted | diverged
    run_dir: Path | None
    summary: dict
    history: list[dict]
    model: nn.Module
    message: str = ""
    final: object | None = None  # the task's result on the test split (None: no test split)
    extras: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# the run


@frozen_heap()
def train(
    cfg: TrainConfig,
    *,
    train_set=None,
    eval_set=None,
    test_set=None,
    callbacks: list[Callable[[StepState], None]] | None = None,
    on_finish: list[Callable[[RunFolder, RunResult], None]] | None = None,
    resume: str | Path | None = None,
    changes: dict | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data`` (or the given ImageSets) and write ``runs/<name>/``.

    ``eval_set`` is the *validation* split (chooses ``best.pt``, ``--patience``, ``--target``);
    ``test_set`` is scored once at the end with the weights it chose (see :func:`split_data`).
    ``resume``: a run folder or a checkpoint in one; ``changes`` (or where ``cfg`` differs from
    the stored config) may touch only :data:`RESUME_CAN_CHANGE`. ``callbacks`` run after every
    optimizer step, ``on_finish`` hooks once at the end with ``(folder, result)``.
    """
    started = time.perf_counter()  # a --budget-min run's clock starts here
    folder, ckpt = None, None
    if resume is not None:
        folder, ckpt = open_resume(resume)
        cfg = resume_config(ckpt, cfg, changes, folder.path)
    cfg = cfg.validate()
    device, dist = setup_devices(cfg)
    main = dist.is_main

    # data, model, input pipeline, optimizer: everything a step needs
    train_set, val_set, test_set = split_data(cfg, train_set, eval_set, test_set)
    task = make_task(cfg, train_set.classes, train_set)
    in_ch = train_set.images.shape[1]
    torch.manual_seed(derive_seed(cfg.seed, "init"))  # every rank starts from the same weights
    model, heads, frozen = build_start_model(cfg, task.num_classes, in_ch, device)
    pipeline = make_pipeline(cfg, train_set, model, ckpt)
    loader = make_loader(cfg, train_set, device, dist)
    total_steps = max(1, round(cfg.epochs * len(loader)))
    n_epochs = math.ceil(total_steps / len(loader))
    if cfg.budget_min:  # the budget, not the epochs, ends the run
        total_steps, n_epochs = 2**62, math.inf
    optimizer = make_optimizer(param_groups(model, cfg, heads), cfg)
    ema = EMA(model, cfg.ema) if cfg.ema else None
    augment = make_augment(cfg.augment, task.num_classes, min(train_set.images.shape[-2:]))
    parts = Parts(cfg, task, model, wrap(model, cfg, dist, device), optimizer,
                  make_schedule(cfg, total_steps, len(loader)), ema, pipeline, loader, augment,
                  device, dist, total_steps, list(callbacks or []), frozen)  # fmt: skip

    # run folder and state (fresh, or where the checkpoint left off)
    state = TrainState(model, optimizer, parts.ema, metric=task.metrics[0])
    if ckpt is not None:
        state.load_state_dict(ckpt, source=str(resume))
        folder.write = main
        folder.check_writable()
    else:
        folder = RunFolder.create(cfg.runs_dir, run_name(cfg), write=main)
    cfg = parts.cfg = cfg.replace(name=folder.name)
    state.meta = run_meta(cfg, task, train_set, pipeline, total_steps)
    if cfg.budget_min:
        parts.budget = make_budget(cfg, state, started, val_set, test_set, dist.world_size)
    folder.save_config(cfg)
    columns = metric_columns(task)
    parts.bar = TrainProgress(None if cfg.budget_min else total_steps,
                              enabled=progress if main else False,
                              quiet=cfg.quiet or not main)  # fmt: skip
    if cfg.amp and device.type == "cpu" and not cpu_has_fast_bf16():
        parts.bar.log("note: this CPU has neither AMX nor AVX512-BF16: bf16 autocast is "
                      "emulated, slower than float32; --no-amp trains in float32")  # fmt: skip

    # epochs: train, evaluate, checkpoint
    status, message, saved_step = "completed", "", state.step
    try:
        with StopSignals() as stop:
            while state.epoch < n_epochs:
                train_epoch(parts, state, stop)
                progress = budget_progress(parts)  # one (collective) clock reading
                spent = progress is not None and progress >= 1.0
                if spent and not state.epoch_sums["seen"]:
                    break  # a resumed budget already spent: no step, so no epoch to record
                row = epoch_row(parts, state, progress)
                due = (state.epoch + 1 == n_epochs or (state.epoch + 1) % cfg.eval_every == 0
                       or spent)  # fmt: skip
                if val_set is not None and due:
                    ev = run_eval(parts, val_set)
                    row.update(val_loss=ev.loss,
                               **{f"val_{k}": v for k, v in ev.metrics().items()})  # fmt: skip
                score = row.get(f"val_{state.metric}")
                state.end_epoch(row)
                if state.improved(score):
                    state.best = {"epoch": row["epoch"], state.metric: score}
                    folder.save_checkpoint("best.pt", state.state_dict())
                folder.save_checkpoint("last.pt", state.state_dict())
                saved_step = state.step
                folder.write_metrics(state.history, columns)
                folder.log_scalars(row)
                parts.bar.log(epoch_line(row, n_epochs, state.metric))
                if spent:
                    break
                stop_now = should_stop(cfg, state, score)
                if D.broadcast_flag(bool(stop_now), dist, device):
                    status = stop_now or "early-stopped"
                    break
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: save where we are
        status = "interrupted"
        if state.step != saved_step or state.batch_in_epoch:  # work since the last save
            folder.save_checkpoint("last.pt", state.state_dict())
        message = stop_message(folder, state)
    except TrainingDiverged as e:
        status, message = "diverged", stop_message(folder, state, with_recipe_hint(e, cfg))
    finally:
        parts.bar.close()
        folder.close()

    if status in FINISHED and parts.budget is not None and state.step == 0:
        raise ConfigError(
            f"--budget-min {cfg.budget_min:g} ({60 * cfg.budget_min:.3g} s) ran out before the "
            f"first training step (setting up took {parts.budget.spent():.1f} s): nothing was "
            f"trained, so nothing is scored; the run folder {folder.path} holds only its config",
            "give a budget of at least a minute, or --epochs",
        )

    # finish: the test split, scored once with the weights validation chose; files; hooks
    final, weights = None, None
    if status in FINISHED and test_set is not None:
        weights = restore_best(parts, state, folder)
        final = run_eval(parts, test_set, cfg.tta)
    splits = {"train": train_set, "validation": val_set, "test": test_set}
    summary = make_summary(cfg, state, final, weights, status, splits, device, dist,
                           len(parts.loader))  # fmt: skip
    result = RunResult(status, folder.path, summary, state.history, model, message, final)
    folder.write_metrics(state.history, columns)
    if cfg.plots:
        folder.plot_history(state.history, title=f"{cfg.model} on {cfg.data}")
    if final is not None:
        task.save_results(final, folder, split="test", png=cfg.plots)
    folder.write_json("summary.json", summary)
    if main:
        for hook in on_finish or []:
            hook(folder, result)
    D.teardown(dist)
    return result


# --------------------------------------------------------------------------------------------
# one epoch


@dataclass
class Parts:
    """What the steps of a run use, built once by :func:`train`."""

    cfg: TrainConfig
    task: object
    model: nn.Module  # the bare model
    net: nn.Module  # what runs the forward pass (DDP / compiled wrapper, or the model)
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    ema: EMA | None
    pipeline: object
    loader: object
    augment: object
    device: torch.device
    dist: D.DistInfo
    total_steps: int
    callbacks: list
    frozen: list  # norm layers of a frozen backbone, kept in eval mode
    bar: TrainProgress | None = None
    budget: Budget | None = None  # --budget-min's clock (None: the run is planned in epochs)
    first_loss: float | None = None  # this process's first step's: the yardstick of a blow-up


def train_epoch(p: Parts, state: TrainState, stop: StopSignals) -> None:
    """The steps of epoch ``state.epoch`` from batch ``state.batch_in_epoch`` on (the earlier
    ones were trained before a resume). Keeps ``state`` current after every step, so a stop
    signal (raised here as KeyboardInterrupt) leaves a state that is safe to save."""
    cfg, device = p.cfg, p.device
    sums = state.epoch_sums
    acc = torch.tensor([sums["loss"], sums["score"]], dtype=torch.float64, device=device)
    seen, t0, skip = sums["seen"], time.perf_counter(), state.batch_in_epoch
    p.loader.set_epoch(state.epoch)
    if p.augment is not None:
        p.augment.set_epoch(state.epoch)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp)
    check_every = 1 if device.type == "cpu" else 25  # reading the loss syncs a GPU
    pending: list[tuple[int, float, torch.Tensor]] = []  # (step, lr, loss) not yet checked
    p.model.train()
    for m in p.frozen:  # a frozen backbone's norm layers keep their statistics
        m.eval()
    try:
        for i, (x, y, index) in enumerate(p.loader):
            if i < skip:  # trained before the resume
                continue
            progress = budget_progress(p)  # one clock reading a step
            if state.step >= p.total_steps or (progress is not None and progress >= 1.0):
                break
            reseed(derive_seed(cfg.seed, state.step, p.dist.rank), device)
            lr = p.schedule.apply(p.optimizer, state.step, progress) * cfg.lr
            x, target = p.task.augment_batch(p.augment, x, y, index)
            with amp:
                loss, out = p.task.loss(p.task.forward(p.net, p.pipeline(x), target), target)
            total = loss + penalty(p.model, l2=cfg.l2, l1=cfg.l1, beta=cfg.elastic_net)
            pending.append((state.step, lr, total.detach()))
            if p.first_loss is None:  # this process's first step (one read, once)
                p.first_loss = float(total.detach())
            if len(pending) >= check_every:
                check_finite(pending, p.first_loss)
            p.optimizer.zero_grad(set_to_none=True)
            total.backward()
            p.optimizer.step()
            if p.ema is not None:
                p.ema.update(p.model)
            state.step, state.batch_in_epoch, seen = state.step + 1, i + 1, seen + len(y)
            if p.budget is not None:
                p.budget.trained(len(y))
            acc[0] += loss.detach().double() * len(y)
            acc[1] += p.task.batch_score(out, target)
            if p.callbacks:
                st = StepState(state.epoch, state.step, i + 1, total.detach(), lr, p.model)
                for cb in p.callbacks:
                    cb(st)
            if p.bar.due():  # (rank 0 only: it uses the progress read above, no collective)
                show_progress(p, state, acc, seen, sums["seconds"] + time.perf_counter() - t0,
                              progress)  # fmt: skip
            if stop.hit:
                raise KeyboardInterrupt
        check_finite(pending, p.first_loss)
    finally:  # the partial epoch's record, saved with a mid-epoch checkpoint
        state.epoch_sums = {"loss": float(acc[0]), "score": float(acc[1]), "seen": seen,
                            "seconds": sums["seconds"] + time.perf_counter() - t0}  # fmt: skip
    if seen and p.bar.bar is not None:  # the bar's last refresh of the epoch
        show_progress(p, state, acc, seen, state.epoch_sums["seconds"],
                      p.budget.progress() if p.budget is not None else None)  # fmt: skip


def budget_progress(p: Parts) -> float | None:
    """The share of a ``--budget-min`` run's time spent (None: a run planned in epochs), as
    rank 0's clock reads it: under torchrun every process then stops at the same step and
    takes the same learning rate. A collective: every process calls it at the same points."""
    if p.budget is None:
        return None
    return D.broadcast_float(p.budget.progress(), p.dist, p.device)


def with_recipe_hint(e: TrainingDiverged, cfg: TrainConfig) -> TrainingDiverged:
    """The divergence, its hint naming the recipe tuned for this model and data when the run
    used none (a recipe's settings are the ones measured to train it)."""
    from cnnlab.training.recipes import RECIPES

    if cfg.recipe is not None:
        return e
    same = {"model": cfg.model, "data": cfg.data}
    tuned = [r.name for r in RECIPES.values() if all(r.config.get(k) == v for k, v in same.items())]
    if not tuned:
        return e
    return TrainingDiverged(e.message, f"{e.hint}; or start from the recipe tuned for "
                            f"{cfg.model} on {cfg.data}: --recipe {tuned[0]}")  # fmt: skip


def stop_message(folder: RunFolder, state: TrainState, diverged=None) -> str:
    """What an interrupted or diverged run tells the user: where it stopped, what was kept."""
    last = folder.file("last.pt")
    if diverged is None:
        return (f"interrupted at epoch {state.epoch + 1}, step {state.step}; saved {last}.\n"
                f"Continue with: cnnlab train --resume {folder.path}")  # fmt: skip
    kept = (f"kept the last good checkpoint {last}" if last.exists()
            else "no checkpoint had been written yet")  # fmt: skip
    return f"{diverged.message}; {kept}" + (f"\nhint: {diverged.hint}" if diverged.hint else "")


def reseed(seed: int, device: torch.device) -> None:
    """Seed the CPU generator (and this GPU's): torch.manual_seed would cost ~0.5 ms a step."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.default_generators[device.index or 0].manual_seed(seed)


def show_progress(p: Parts, state: TrainState, acc, seen: int, seconds: float,
                  progress: float | None) -> None:  # fmt: skip
    total = None  # a budget's bar: the steps expected at this rate
    if progress is not None and progress > 0:
        total = max(state.step, round(state.step / min(1.0, progress)))
    p.bar.update(state.step, loss=float(acc[0]) / seen, acc=float(acc[1]) / seen,
                 speed=seen * p.dist.world_size / max(seconds, 1e-9),
                 desc=f"epoch {state.epoch + 1}", total=total)  # fmt: skip


BLOWUP = 1000.0  # a loss this many times the run's first one is a blow-up, not a bad batch


def check_finite(pending: list, first: float | None = None) -> None:
    """Stop on the first NaN/inf loss among the steps not yet checked, or on one above
    ``BLOWUP`` x ``first`` (the run's first loss): a blow-up can stay finite and leave a dead
    net (constant outputs) that would otherwise "complete" and score chance accuracy."""
    if not pending:
        return
    limit = BLOWUP * max(abs(first), 1.0) if first is not None else math.inf
    if len(pending) == 1:  # the CPU's every-step case: one float, no stacking
        v = float(pending[0][2])
        if math.isfinite(v) and abs(v) <= limit:
            pending.clear()
            return
    losses = torch.stack([p[2] for p in pending]).float().cpu()
    bad = (~torch.isfinite(losses) | (losses.abs() > limit)).nonzero()
    if len(bad):
        s, lr, _ = pending[int(bad[0])]
        v = float(losses[int(bad[0])])
        pending.clear()
        what = f"the loss became {v}"
        if math.isfinite(v):
            what = f"the loss reached {v:.3g}, over {BLOWUP:g}x its first value ({first:.3g}),"
        raise TrainingDiverged(
            f"{what} at step {s + 1} (learning rate {lr:.4g}); training stopped",
            "lower --lr, add --warmup, or turn off --amp",
        )
    pending.clear()


def run_eval(p: Parts, eval_set, tta: str = "none"):
    """The task's evaluation of ``eval_set`` with the EMA weights when there are some."""
    images, labels = eval_set.images, eval_set.labels
    if p.device.type == "cuda":  # GPU-resident like the training set (moved once, kept)
        eval_set.images, eval_set.labels = images, labels = images.to(p.device), labels.to(p.device)
    model = p.ema.module if p.ema is not None else p.model
    return p.task.evaluate(model, images, labels, p.pipeline, batch_size=p.cfg.eval_batch_size,
                           device=p.device, tta=tta, amp=p.cfg.amp, dist=p.dist)  # fmt: skip


def metric_columns(task) -> list[str]:
    """The columns of metrics.csv for a task (classification: ``train_top1``, ``val_top5`` ...)."""
    return ["epoch", "step", "lr", "train_loss", f"train_{task.metrics[0]}", "val_loss",
            *(f"val_{m}" for m in task.metrics), "epoch_seconds", "wall_seconds",
            "images_per_second"]  # fmt: skip


def epoch_row(p: Parts, state: TrainState, progress: float | None) -> dict:
    """The metrics row of the epoch just trained (validation columns filled in later);
    ``progress``: the budget's share spent, as read at the epoch's end (None: no budget)."""
    s = state.epoch_sums
    seen, secs = s["seen"], s["seconds"]
    return {
        "epoch": state.epoch + 1,
        "step": state.step,
        "lr": p.schedule.factor(max(0, state.step - 1), progress) * p.cfg.lr,
        "train_loss": s["loss"] / seen if seen else None,
        # NaN: a task that does not score training batches (a detector's losses only)
        f"train_{state.metric}": s["score"] / seen if seen and s["score"] == s["score"] else None,
        "val_loss": None,
        **{f"val_{m}": None for m in p.task.metrics},
        "epoch_seconds": secs,
        "wall_seconds": state.wall_seconds,
        "images_per_second": seen * p.dist.world_size / secs if seen and secs else None,
    }


def epoch_line(r: dict, n_epochs: int, metric: str = "top1") -> str:
    parts = [f"epoch {r['epoch']}" + (f"/{n_epochs}" if math.isfinite(n_epochs) else "")]
    if r["train_loss"] is not None:
        parts.append(f"loss {r['train_loss']:.4f}")
        if r.get(f"train_{metric}") is not None:
            parts.append(f"train {r[f'train_{metric}']:.2f}%")
    if r.get(f"val_{metric}") is not None:
        parts.append(f"val {metric.replace('top', 'top-')} {r[f'val_{metric}']:.2f}%")
    if r["images_per_second"] is not None:
        parts.append(f"{r['images_per_second']:,.0f} img/s")
    parts.append(f"{r['epoch_seconds']:.1f}s")
    return "  ".join(parts)


class StopSignals:
    """The first Ctrl-C (SIGINT) or SIGTERM sets a flag checked between steps, so the state
    saved is consistent; a second one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.hit = False
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.getsignal(s)
                signal.signal(s, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)


# --------------------------------------------------------------------------------------------
# setup


def open_resume(resume: str | Path) -> tuple[RunFolder, dict]:
    """The run folder and the checkpoint ``--resume`` continues from."""
    folder, path = RunFolder.open(resume)
    ckpt = load_checkpoint(path)
    if ckpt.get("format") != FORMAT or "optimizer" not in ckpt:
        raise DataError(
            f"{path} is not a resumable cnnlab training checkpoint",
            "give runs/<name> (or its last.pt) of a run `cnnlab train` wrote",
        )
    return folder, ckpt


def resume_config(ckpt: dict, cfg: TrainConfig | None, changes: dict | None,
                  run: Path | str = "RUN") -> TrainConfig:  # fmt: skip
    """The resumed run's config: the checkpoint's, with ``changes`` (or where ``cfg`` differs
    from it) applied when they are in :data:`RESUME_CAN_CHANGE`; any other change is refused,
    naming it, since the run could not continue as the same run."""
    stored = TrainConfig.from_dict(ckpt["config"])
    theirs = stored.to_dict()
    if changes is None:
        mine = cfg.to_dict() if cfg is not None else {}
        changes = {k: v for k, v in mine.items() if k not in ("name", "runs_dir", "recipe")}
    mine = stored.replace(**changes).to_dict()  # a flag that repeats the stored value is fine
    changes = {k: v for k, v in changes.items() if mine[k] != theirs[k]}
    refused = sorted(k for k in changes if k not in RESUME_CAN_CHANGE)
    if refused:
        names = ", ".join(flag_name(k) for k in refused)
        raise ConfigError(
            f"--resume continues a run with its own settings; it cannot change {names}",
            f"drop {names}, or start a new run from its config: cnnlab train --config "
            f"{run}/config.yaml {flag_name(refused[0])} ... --name NEW "
            f"(--resume may change: {', '.join(flag_name(k) for k in RESUME_CAN_CHANGE)})",
        )
    trained = len(ckpt.get("history") or [])
    if "epochs" in changes and changes["epochs"] < max(trained, 1e-9):
        raise ConfigError(
            f"--epochs {changes['epochs']:g} is fewer than the {trained} epochs this run has "
            "already trained",
            f"give --epochs of at least {trained} (or leave it out to finish the planned "
            f"{stored.epochs:g})",
        )
    return stored.replace(**changes)


def flag_name(field_name: str) -> str:
    """The ``cnnlab train`` flag of a config field (``target_top1`` -> ``--target``)."""
    special = {"target_top1": "--target", "plots": "--no-plots", "model": "MODEL",
               "model_options": "--option"}  # fmt: skip
    return special.get(field_name, "--" + field_name.replace("_", "-"))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}", "use cpu, cuda, cuda:1 or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {name} was asked for, but no CUDA GPU is available",
            "use --device cpu (or auto)",
        )
    return dev


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX tiles or AVX512-BF16): there bf16
    autocast trains convnets 2-7x faster than float32; elsewhere it is emulated and slower."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # a torch without these probes
        return False


def setup_devices(cfg: TrainConfig) -> tuple[torch.device, D.DistInfo]:
    """The device, the process group (under torchrun), threads and determinism."""
    device = resolve_device(cfg.device)
    dist = D.setup(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    if device.type == "cpu":
        want = cfg.threads or len(os.sched_getaffinity(0))
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.are_deterministic_algorithms_enabled() != cfg.deterministic:
        # Only when it changes: the first call imports torch._dynamo (2-4 s on a 2-core CPU).
        torch.use_deterministic_algorithms(cfg.deterministic)
    torch.backends.cudnn.benchmark = device.type == "cuda" and not cfg.deterministic
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = not cfg.deterministic
        torch.backends.cudnn.allow_tf32 = not cfg.deterministic
    if cfg.batch_size % dist.world_size:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} does not split over {dist.world_size} processes",
            "use a multiple of the process count",
        )
    return device, dist


def split_data(cfg: TrainConfig, train_set=None, val_set=None, test_set=None):
    """``(train, validation, test)`` ImageSets: the given ones, or ``cfg.data``'s (its train
    and test splits, and its own val split when it ships one). Without a validation set,
    ``val_fraction`` of the training split is held out (seeded); with ``val_fraction`` 0 there
    is none. ``--target`` and ``--patience`` need one."""
    from cnnlab.data.datasets import load_dataset, shipped_splits
    from cnnlab.data.split import holdout_split

    if train_set is None:
        get = dict(data_dir=cfg.data_dir, download=cfg.download, image_size=cfg.image_size)
        train_set = load_dataset(cfg.data, split="train", **get)
        have = shipped_splits(cfg.data)
        wanted = "test" in have and cfg.test
        test_set = load_dataset(cfg.data, split="test", **get) if wanted else None
        if "val" in have:
            val_set = load_dataset(cfg.data, split="val", **get)
    if not cfg.test:  # --no-test: the test split stays unseen (not even loaded)
        test_set = None
    if val_set is None and cfg.val_fraction > 0:
        train_set, val_set = holdout_split(train_set, cfg.val_fraction, cfg.seed)
    if val_set is None and (cfg.target_top1 is not None or cfg.patience is not None):
        raise ConfigError(
            "--target and --patience watch the validation score, and this run has no "
            "validation split",
            "hold one out with --val-fraction F (e.g. 0.1)",
        )
    return train_set, val_set, test_set


def should_stop(cfg: TrainConfig, state: TrainState, score) -> str | None:
    """``"target-reached"`` or ``"early-stopped"`` when the run should end after this epoch."""
    if cfg.target_top1 is not None and score is not None and score >= cfg.target_top1:
        return "target-reached"
    if cfg.patience is not None and state.best["epoch"] is not None:
        since = [r for r in state.history if r["epoch"] > state.best["epoch"]
                 and r.get(f"val_{state.metric}") is not None]  # fmt: skip
        if len(since) >= cfg.patience:
            return "early-stopped"
    return None


def restore_best(p: Parts, state: TrainState, folder: RunFolder) -> str:
    """Load the weights validation chose (``best.pt``) for the test split; says which."""
    last = state.history[-1]["epoch"] if state.history else 0
    best = state.best.get("epoch")
    if best is None or best == last:
        return f"last (epoch {last})"
    ck = folder.load_checkpoint("best.pt")
    p.model.load_state_dict(ck["model"])
    if p.ema is not None and ck.get("ema"):
        p.ema.load_state_dict(ck["ema"])
    return f"best.pt (epoch {best}, chosen on validation)"


def make_augment(spec: str, num_classes: int, size: int):
    """cnnlab.data's batch augmentation from a preset or a spec such as
    ``flip-crop,cutout=8,mixup=0.2`` (None for ``none``); it draws from torch's global
    generator, which the trainer re-seeds every step. Its switches are resolved for the
    images' shorter side ``size`` here, so a bad value stops the run before its folder exists."""
    if not spec or spec == "none":
        return None
    from cnnlab.data.augment import Augment

    augment = Augment.from_spec(spec, num_classes=num_classes, out_dtype=torch.float32)
    augment.resolve(int(size))
    return augment


def build_start_model(cfg: TrainConfig, num_classes: int, in_channels: int, device):
    """``(model, head names, frozen norm layers)``: the model at its start, fresh or
    fine-tuned from ``--finetune`` (then with its backbone frozen when asked)."""
    from cnnlab.models import create, get_info
    from cnnlab.training.finetune import (
        find_heads,
        freeze_backbone,
        load_start_weights,
        replace_head,
    )

    opts = dict(cfg.model_options)
    if not cfg.finetune:
        if cfg.freeze_backbone or cfg.backbone_lr_mult != 1.0:
            raise ConfigError(
                "--freeze-backbone / --backbone-lr-mult need --finetune CKPT",
                "give the checkpoint to start from with --finetune",
            )
        model = create(cfg.model, num_classes=num_classes, in_channels=in_channels, **opts)
        return model.to(device), [], []
    src = Path(cfg.finetune)
    state = load_checkpoint(src)
    if state.get("format") == FORMAT:
        if state["model_name"] != cfg.model:
            raise ConfigError(
                f"--finetune {src} holds a {state['model_name']!r} model, not {cfg.model!r}",
                f"use `cnnlab train {state['model_name']} --finetune {src} ...`",
            )
        mopts = dict(state["model_options"])
        old_classes = mopts.pop("num_classes")
        model = create(cfg.model, num_classes=old_classes, **mopts)
        weights = state["model"]
    else:  # a plain state dict (e.g. torchvision's), for the zoo's default head
        old_classes = get_info(cfg.model).num_classes
        model = create(cfg.model, num_classes=old_classes, in_channels=in_channels, **opts)
        weights = state.get("state_dict", state.get("model", state))
    load_start_weights(model, weights, str(src))
    if old_classes != num_classes:
        heads = replace_head(model, old_classes, num_classes)
    else:
        heads = find_heads(model, num_classes)
    frozen = freeze_backbone(model, heads) if cfg.freeze_backbone else []
    return model.to(device), heads, frozen


def make_pipeline(cfg: TrainConfig, train_set, model: nn.Module, ckpt: dict | None):
    """The input pipeline: preprocessing fitted on the training split (or the checkpoint's),
    then the model's input size. A model with ``data_init`` (cifar-fast-net's whitening) is
    initialised from up to 5,000 preprocessed training images."""
    from cnnlab.data.pipeline import InputPipeline
    from cnnlab.data.preprocess import Preprocessor
    from cnnlab.models import get_info

    pre = Preprocessor(cfg.preprocess)
    if ckpt is not None:
        pre.load_state_dict(ckpt["pipeline"]["preprocessor"])
    else:
        pre.fit(train_set.images)
    size = cfg.input_size
    model_hw = (size, size) if size else get_info(cfg.model).input_size[1:]
    task = getattr(train_set, "task", None)
    if task == "detection" and size and (size, size) != tuple(train_set.images.shape[2:]):
        raise ConfigError(
            f"--input-size {size}: a detection model takes the images at the data's size "
            f"({'x'.join(map(str, train_set.images.shape[2:]))}), where the boxes are",
            "leave --input-size out for detection (it is for segmentation and classification)",
        )
    if task == "detection" or (task == "segmentation" and not size):
        # boxes and masks stay in the data's pixels; a segmentation model may take its images
        # at another --input-size (its class maps are resized back to the masks)
        model_hw = train_set.images.shape[2:]
    # NHWC: 1.5-2x faster LeNet/VGG steps on this 2-core EPYC (oneDNN), the tensor-core layout
    channels_last = cfg.channels_last is not False
    if channels_last:
        model.to(memory_format=torch.channels_last)
    check_fits(model, (int(train_set.images.shape[1]), *model_hw), cfg)
    pipeline = InputPipeline(pre, train_set.images.shape[2:], model_hw, channels_last)
    if hasattr(model, "data_init") and ckpt is None and not cfg.finetune:
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "data_init"))
        pick = torch.randperm(len(train_set.labels), generator=g)[:5000]
        device = next(model.parameters()).device
        model.data_init(pipeline(train_set.images[pick].to(device)))
    return pipeline


def check_fits(model: nn.Module, input_size, cfg: TrainConfig) -> None:
    """Run the model once on meta tensors (no memory, no compute) so an input it cannot take
    is an error now, before a run folder exists, not a traceback at the first step."""
    state = {k: torch.empty_like(v, device="meta") for k, v in model.state_dict().items()}
    was_training = model.training
    model.eval()  # batch norm in training mode cannot take the one-image probe
    try:
        torch.func.functional_call(model, state, (torch.empty(2, *input_size, device="meta"),))
    except Exception as e:  # whatever the layer raises (shape, channels)
        from cnnlab.errors import CnnlabError

        if isinstance(e, CnnlabError):  # the zoo's own shape messages say it best
            raise
        if "meta" in str(e).lower():  # data-dependent shapes (Faster R-CNN's proposals, NMS)
            return  # cannot be probed on meta tensors; the first step will tell
        size = "x".join(map(str, input_size))
        why = (str(e).splitlines() or [type(e).__name__])[0].strip("'\"")
        raise ConfigError(
            f"{cfg.model} cannot take {size} inputs: {why}",
            "set --input-size to a size the model takes (`cnnlab models "
            f"{cfg.model}` shows its default), or pick a model made for these images",
        ) from None
    finally:
        model.train(was_training)


def make_loader(cfg: TrainConfig, train_set, device, dist: D.DistInfo):
    from cnnlab.data.loader import BatchLoader

    sampler = D.ShardSampler(len(train_set.labels), dist.rank, dist.world_size, cfg.seed)
    loader = BatchLoader(
        train_set.images, train_set.labels, cfg.batch_size // dist.world_size, drop_last=True,
        device=device, seed=cfg.seed, sampler=sampler,
        return_index=True,  # alternating flips need the dataset index of each image
    )  # fmt: skip
    if len(loader) == 0:
        held = (f" left after --val-fraction {cfg.val_fraction} held out its share"
                if cfg.val_fraction >= 0.5 else "")  # fmt: skip
        raise ConfigError(
            f"--batch-size {cfg.batch_size} is larger than the training set "
            f"({len(train_set.labels)} images{held})",
            "use a smaller --batch-size" + (" or --val-fraction (e.g. 0.1)" if held else ""),
        )
    return loader


def param_groups(model, cfg: TrainConfig, heads: list[str]):
    """Weights get decoupled weight decay, biases/norms none; a fine-tuned backbone may get a
    smaller learning rate (``backbone_lr_mult``) or none at all (frozen). With ``--optimizer
    muon`` / ``muon-adamw`` the hidden weights (every conv filter bank and fully connected
    matrix but the classifier's) form groups of their own (``muon=True``, at ``muon_lr``) and
    the rest is SGD's / AdamW's (``adamw=True``)."""
    from cnnlab.training.finetune import classifier_params, split_params

    if heads:
        backbone, head = split_params(model, heads)
        sets = [(head, cfg.lr)]
        if not cfg.freeze_backbone and cfg.backbone_lr_mult > 0:
            sets.append((backbone, cfg.lr * cfg.backbone_lr_mult))
    else:
        sets = [(list(model.parameters()), cfg.lr)]
    names = {id(p): n for n, p in model.named_parameters()}
    muon = cfg.optimizer.startswith("muon")
    output = {id(p) for p in classifier_params(model)} if muon else set()
    rest = {"adamw": True, "betas": tuple(cfg.betas)} if cfg.optimizer == "muon-adamw" else {}
    groups = []
    for params, lr in sets:
        params = [p for p in params if p.requires_grad]
        dec = [p for p in params if is_weight(names[id(p)], p)]
        nodec = [p for p in params if not is_weight(names[id(p)], p)]
        if muon:  # the hidden weights: Muon, at its own learning rate
            hidden = [p for p in dec if p.ndim >= 2 and id(p) not in output]
            dec = [p for p in dec if p.ndim < 2 or id(p) in output]
            mlr = cfg.muon_lr * lr / cfg.lr  # a fine-tuned backbone's multiplier too
            if hidden:
                groups.append({"params": hidden, "lr": mlr, "base_lr": mlr, "weight_decay": 0.0,
                               "muon": True, "momentum": cfg.muon_momentum})  # fmt: skip
        for ps, wd in ((dec, cfg.weight_decay), (nodec, 0.0)):
            if ps:
                groups.append({"params": ps, "lr": lr, "base_lr": lr, "weight_decay": wd, **rest})
    if not groups:
        raise ConfigError("no parameter is left to train (everything is frozen)")
    return groups


def make_optimizer(groups, cfg: TrainConfig):
    """Muon (:mod:`cnnlab.training.muon`); or AdamW or SGD, fused (one kernel for all the
    tensors: a LeNet-5 AdamW step takes 0.14 ms on one CPU thread, 0.56 ms op by op) where
    this torch has the fused kernel."""
    groups = list(groups)  # the fallback below needs them a second time
    if cfg.optimizer.startswith("muon"):
        from cnnlab.training.muon import Muon

        return Muon(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                    betas=tuple(cfg.betas))  # fmt: skip
    if cfg.optimizer == "adamw":
        kind, kw = torch.optim.AdamW, {"betas": tuple(cfg.betas)}
    else:
        kind = torch.optim.SGD
        kw = {"momentum": cfg.momentum, "nesterov": cfg.optimizer == "nesterov"}
    try:
        return kind(groups, lr=cfg.lr, fused=True, **kw)
    except RuntimeError:  # a torch before 2.4 has no fused kernel for this device
        return kind(groups, lr=cfg.lr, **kw)


def make_budget(cfg: TrainConfig, state: TrainState, started: float, val_set, test_set,
                world: int = 1) -> Budget:  # fmt: skip
    """The clock of a ``--budget-min`` run, started when :func:`train` was called; it keeps
    time for the last validation pass and the test pass (with its TTA views)."""
    from cnnlab.data.tta import tta_view_count

    later = (len(val_set) if val_set is not None else 0) + (
        len(test_set) * tta_view_count(cfg.tta) if test_set is not None else 0
    )
    later //= world  # under torchrun each process scores its share of the images
    return Budget(60 * cfg.budget_min, later, spent_before=state.wall_before, started=started)


def make_schedule(cfg: TrainConfig, total_steps: int, steps_per_epoch: int) -> Schedule:
    return Schedule(
        cfg.schedule,
        total_steps,
        warmup_steps=min(total_steps, round(cfg.warmup * steps_per_epoch)),
        final=cfg.final_lr_fraction,
        gamma=cfg.step_gamma,
        milestones=tuple(cfg.step_milestones),
    )


def wrap(model: nn.Module, cfg: TrainConfig, dist: D.DistInfo, device) -> nn.Module:
    """What runs the forward pass: DDP across processes and/or torch.compile."""
    net = model
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return torch.compile(net) if cfg.compile else net


def run_meta(cfg: TrainConfig, task, train_set, pipeline, total_steps: int) -> dict:
    """What every checkpoint of the run repeats: enough to rebuild the model and its inputs."""
    c, h, w = (int(v) for v in train_set.images.shape[1:])
    return {
        "kind": "train",
        "config": cfg.to_dict(),
        "model_name": cfg.model,
        "model_options": {"num_classes": task.num_classes, "in_channels": c, **cfg.model_options},
        "pipeline": pipeline.state_dict(),
        "classes": list(task.classes),
        "data": {"name": train_set.name, "size": [c, h, w]},
        "schedule": {
            "name": cfg.schedule,
            "total_steps": None if cfg.budget_min else total_steps,
            "budget_min": cfg.budget_min or None,
        },
    }


def run_name(cfg: TrainConfig) -> str:
    return cfg.name or f"{cfg.model}-{cfg.data.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"


def make_summary(cfg, state: TrainState, final, weights, status, splits, device, dist,
                 steps_per_epoch: int) -> dict:  # fmt: skip
    """summary.json, each number under the split it was measured on: ``validation`` (the last
    evaluation, and ``best``, the epoch it chose) and ``test`` (scored once, at the end).
    ``epochs`` counts the epochs begun (1.5 epochs: 2), ``epochs_trained`` the data seen in
    epochs (1.5)."""
    m = state.metric
    last = next((r for r in reversed(state.history) if r.get(f"val_{m}") is not None), None)
    val = None
    if last is not None:
        val = {k.removeprefix("val_"): v for k, v in last.items() if k.startswith("val_")}
        val["epoch"] = last["epoch"]
    test = None
    if final is not None:
        test = {**final.metrics(), "loss": final.loss, "n": final.n, "weights": weights,
                "tta": cfg.tta}  # fmt: skip
    return {
        "model": cfg.model,
        "dataset": cfg.data,
        "splits": {
            k: (None if v is None else {"name": v.name, "images": len(v)})
            for k, v in splits.items()
        },
        "epochs": state.history[-1]["epoch"] if state.history else 0,
        "epochs_trained": round(state.step / max(1, steps_per_epoch), 2),
        "wall_seconds": state.wall_seconds,
        "validation": val,
        "best": state.best,
        "test": test,
        "test_skipped": not cfg.test,  # --no-test: left unseen on purpose
        "status": status,
        "steps": state.step,
        "device": str(device),
        "world_size": dist.world_size,
    }
