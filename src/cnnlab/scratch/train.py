"""The training loop of the scratch engine: mini-batches, a learning-rate schedule, a rich
progress bar and a per-epoch evaluation."""

from __future__ import annotations

import math
import time

import numpy as np

from cnnlab.errors import ConfigError, TrainingDiverged


def normalize(images, mean, std, dtype=np.float32):
    """uint8 images -> ``(x / 255 - mean) / std`` in ``dtype``."""
    x = images.astype(dtype) / dtype(255)
    return (x - dtype(mean)) / dtype(std)


def lr_at(step, total, base, schedule="cosine", warmup=0):
    """Learning rate at ``step`` of ``total``: linear warm-up, then constant or cosine to 0."""
    if step < warmup:
        return base * (step + 1) / warmup
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))
    raise ConfigError(f"unknown schedule {schedule!r}; choose 'cosine' or 'constant'")


def fit(
    model,
    optimizer,
    x,
    y,
    *,
    epochs=1,
    batch_size=64,
    x_test=None,
    y_test=None,
    seed=0,
    schedule="cosine",
    warmup=0,
    progress=True,
    console=None,
    log=None,
):
    """Train ``model`` on float arrays ``x [N, h, w, c]``, labels ``y [N]``; returns the history
    (one dict per epoch: loss, train_acc, test_loss, test_acc, seconds, lr)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    if len(x) != len(y) or len(x) == 0:
        raise ConfigError(f"{len(x)} images but {len(y)} labels")
    if epochs < 1 or batch_size < 1:
        raise ConfigError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    rng = np.random.default_rng(seed)
    steps = math.ceil(len(x) / batch_size)
    total, base, history = epochs * steps, optimizer.lr, []
    columns = (
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not progress, transient=True) as bar:
        for epoch in range(1, epochs + 1):
            task = bar.add_task("train", total=steps, epoch=f"{epoch}/{epochs}", loss=float("nan"))
            t0, order = time.perf_counter(), rng.permutation(len(x))
            loss_sum = correct = 0.0
            for i in range(steps):
                optimizer.lr = lr_at((epoch - 1) * steps + i, total, base, schedule, warmup)
                idx = order[i * batch_size : (i + 1) * batch_size]
                xb, yb = x[idx], y[idx]
                logits = model.forward(xb, train=True)
                loss = model.loss.forward(logits, yb)
                if not np.isfinite(loss):  # stop before the bad step is applied, as the trainer
                    raise TrainingDiverged(
                        f"the loss became {loss} at step {(epoch - 1) * steps + i + 1} "
                        f"(learning rate {optimizer.lr:.4g}); training stopped",
                        "lower --lr, add --warmup, or use --optimizer adam",
                    )
                model.backward(model.loss.backward())
                optimizer.step(model)
                loss_sum += loss * len(idx)
                correct += float((logits.argmax(1) == yb).sum())
                bar.update(task, advance=1, loss=loss)
            bar.remove_task(task)
            # the loss check above sees only the weights before each step: a step that made them
            # NaN (the last one, or a run of one step) would otherwise end "test accuracy 10%"
            bad = next(
                (f"{lay.name}.{k}" for lay in model.layers for k, p in lay.params.items()
                 if not np.isfinite(p).all()),
                None,
            )  # fmt: skip
            if bad:
                raise TrainingDiverged(
                    f"the weights became NaN or infinite in epoch {epoch} (first: {bad}, learning "
                    f"rate {optimizer.lr:.4g}); training stopped",
                    "lower --lr, add --warmup, or use --optimizer adam",
                )
            row = {
                "epoch": epoch,
                "loss": loss_sum / len(x),
                "train_acc": correct / len(x),
                "seconds": time.perf_counter() - t0,
                "lr": optimizer.lr,
            }
            if x_test is not None:
                row["test_loss"], row["test_acc"] = model.evaluate(x_test, y_test)
            history.append(row)
            if log:
                log(row)
    optimizer.lr = base
    return history
