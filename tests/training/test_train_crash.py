"""A crash at every step of a run folder's writes -- before, between and after each rename --
leaves a run that --resume continues from its last complete epoch, ending with exactly the
weights and the complete metrics rows of an uninterrupted run."""

from __future__ import annotations

import json
import os

import pytest
import torch

from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.trainer import train


class Crash(BaseException):
    """The process dying: not an Exception, so nothing in cnnlab catches it."""


def _renames(monkeypatch, run_dir, crash_at=None, when="before"):
    """Count the renames into ``run_dir`` (every atomic write ends with one); crash at the
    ``crash_at``-th, before or after it happens."""
    seen = []
    real = os.replace

    def replace(src, dst, *a, **k):
        inside = str(dst).startswith(str(run_dir))
        if inside:
            seen.append(os.path.basename(dst))
            if len(seen) == crash_at and when == "before":
                raise Crash(f"before renaming {dst}")
        real(src, dst, *a, **k)
        if inside and len(seen) == crash_at and when == "after":
            raise Crash(f"after renaming {dst}")

    monkeypatch.setattr(os, "replace", replace)
    return seen


@pytest.mark.slow
def test_a_crash_at_any_rename_is_resumable(tmp_path, bars, tiny_config, monkeypatch):
    tr, te = bars
    cfg = tiny_config(tmp_path, epochs=2, ema=0.9)
    ref_dir = tmp_path / "runs" / "ref"
    names = _renames(monkeypatch, ref_dir)
    ref = train(cfg.replace(name="ref"), train_set=tr, eval_set=te)
    monkeypatch.undo()
    ref_last = load_checkpoint(ref.run_dir / "last.pt")
    # each epoch's writes: [best.pt], last.pt, metrics.csv, metrics.jsonl (1-based rename #)
    epoch_writes = []
    for i, n in enumerate(names, 1):
        if n == "best.pt":
            epoch_writes.append(i)
        elif n == "last.pt":
            epoch_writes += [i, i + 1, i + 2]
    assert names[:2] == [".write-check", "config.yaml"]
    assert [names[i - 1] for i in epoch_writes].count("last.pt") == 2
    for k in epoch_writes:
        for when in ("before", "after"):
            name = f"c{k}{when}"
            run_dir = tmp_path / "runs" / name
            _renames(monkeypatch, run_dir, crash_at=k, when=when)
            with pytest.raises(Crash):
                train(cfg.replace(name=name), train_set=tr, eval_set=te)
            monkeypatch.undo()
            assert not list(run_dir.glob(".*.tmp")), "a temporary file was left behind"
            if (run_dir / "last.pt").exists():
                done = load_checkpoint(run_dir / "last.pt")  # never corrupt
                res = train(cfg, train_set=tr, eval_set=te, resume=run_dir)
            else:  # the crash came before the first epoch was saved: start again
                assert names.index("last.pt") + 1 >= k, (name, k)
                done = None
                res = train(cfg.replace(name=name), train_set=tr, eval_set=te)
            assert res.status == "completed", (name, done and done["epoch"])
            got = load_checkpoint(run_dir / "last.pt")
            assert all(torch.equal(got["model"][p], ref_last["model"][p]) for p in got["model"])
            rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
            assert [r["epoch"] for r in rows] == [1, 2], name
            for r, want in zip(rows, ref.history):
                assert r["train_loss"] == pytest.approx(want["train_loss"]), name
                assert r["val_top1"] == pytest.approx(want["val_top1"]), name
            assert (run_dir / "metrics.csv").read_text().count("\n") == 3, name
