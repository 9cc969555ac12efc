"""The run folder: every file a training run writes, each written atomically.

``runs/<name>/`` holds ``config.yaml``, ``metrics.csv`` + ``metrics.jsonl`` (one row per
epoch), ``last.pt`` / ``best.pt`` (checkpoints with their checksum inside), ``summary.json``,
the plots, the final evaluation's files (``confusion.csv`` ...) and ``tensorboard/``.
:class:`RunFolder` is the only code that writes there: each file goes through
:func:`cnnlab._util.atomic_write`, so a reader (or a crash) sees the old file or the new one,
never half of one. TensorBoard's event file is the exception: it is an append-only log.

A disk that is full or read-only raises :class:`RunFolderError` naming the file and the fix,
not an ``OSError`` from deep inside torch.

Other parts (the CLI, reports) write their own files into a run with :meth:`write_text` /
:meth:`write_bytes`, or get the path with :meth:`file` and write it with ``atomic_write``.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
from pathlib import Path

from cnnlab._util import atomic_write
from cnnlab.errors import CnnlabError, ConfigError, DataError


class RunFolderError(CnnlabError):
    """A run folder cannot be written (full disk, no permission, a file in the way)."""


class RunFolder:
    """One run's folder. ``write=False`` (a DDP rank other than 0) turns every write off."""

    def __init__(self, path: str | Path, *, write: bool = True):
        self.path = Path(path)
        self.write = write
        self._tb = None

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    # ----------------------------------------------------------------------- create / open

    @classmethod
    def create(cls, runs_dir: str | Path, name: str, *, write: bool = True) -> RunFolder:
        """A new run folder ``runs_dir/name``; refuses a folder that already holds a run."""
        folder = cls(Path(runs_dir) / name, write=write)
        if (folder.path / "last.pt").exists():
            raise ConfigError(
                f"run folder {folder.path} already holds a run",
                f"continue it with --resume {folder.path}, or pick another --name",
            )
        folder.check_writable()
        return folder

    def check_writable(self) -> None:
        """Create the folder and write a file into it now, so a read-only or full disk stops
        the run before any training, not after an epoch (a no-op when ``write`` is off)."""
        if self.write:
            with self._writing(self.path):
                self.path.mkdir(parents=True, exist_ok=True)
                atomic_write(self.path / ".write-check", b"")
                (self.path / ".write-check").unlink()

    @classmethod
    def open(cls, run: str | Path, *, write: bool = True) -> tuple[RunFolder, Path]:
        """``(folder, checkpoint)`` for ``--resume RUN``: a run folder (its ``last.pt``) or a
        checkpoint file inside one."""
        run = Path(run)
        if run.is_dir():
            ckpt = run / "last.pt"
            if not ckpt.is_file():
                raise DataError(
                    f"{run} holds no last.pt, so there is no run to resume there",
                    "give the folder of an earlier `cnnlab train` run (runs/<name>)",
                )
            return cls(run, write=write), ckpt
        if not run.exists():
            raise DataError(
                f"--resume {run}: no such run folder or checkpoint",
                "give runs/<name> of an earlier run (`ls runs/`)",
            )
        return cls(run.parent, write=write), run

    # ----------------------------------------------------------------------- files

    @contextlib.contextmanager
    def _writing(self, path: Path):
        try:
            yield
        except OSError as e:
            full = e.errno == errno.ENOSPC  # else a file in the way, or no permission
            raise RunFolderError(
                f"cannot write {path}: {e.strerror or e}",
                "free some disk space or choose another folder with --runs-dir" if full
                else "choose a folder you can write to with --runs-dir",
            ) from None  # fmt: skip

    def write_bytes(self, name: str, data: bytes | str) -> Path | None:
        if not self.write:
            return None
        path = self.file(name)
        with self._writing(path):
            return atomic_write(path, data)

    def write_text(self, name: str, text: str) -> Path | None:
        return self.write_bytes(name, text)

    def write_json(self, name: str, obj) -> Path | None:
        return self.write_text(name, json.dumps(obj, indent=2) + "\n")

    def save_config(self, cfg) -> None:
        """``config.yaml``: the resolved configuration (``TrainConfig``)."""
        self.write_text("config.yaml", cfg.to_yaml())

    def save_checkpoint(self, name: str, state: dict) -> Path | None:
        """``name`` (``last.pt``, ``best.pt``): the state and its checksum, one atomic file."""
        from cnnlab.training.checkpoint import save_checkpoint

        if not self.write:
            return None
        path = self.file(name)
        with self._writing(path):
            return save_checkpoint(state, path)

    def load_checkpoint(self, name: str = "last.pt") -> dict:
        from cnnlab.training.checkpoint import load_checkpoint

        return load_checkpoint(self.file(name))

    def write_metrics(self, history: list[dict], columns: list[str]) -> None:
        """``metrics.csv`` (``columns``, in order) and ``metrics.jsonl`` (every key), rewritten
        from the whole history so a resumed run holds no row from after its checkpoint."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in history:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in columns})
        self.write_text("metrics.csv", buf.getvalue())
        self.write_text("metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))

    def log_scalars(self, row: dict, step_key: str = "epoch") -> None:
        """One epoch's numbers to TensorBoard (``tensorboard/``), when it is installed."""
        if not self.write:
            return
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception:  # tensorboard not installed: CSV/JSONL only
                self._tb = False
                return
            with self._writing(self.file("tensorboard")):
                self._tb = SummaryWriter(str(self.file("tensorboard")))
        if self._tb:
            for k, v in row.items():
                if k not in ("epoch", "step") and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, row[step_key])
            self._tb.flush()

    def plot_history(self, history: list[dict], title: str = "") -> None:
        """``loss.png`` and ``accuracy.png`` (viz.plots, matplotlib Agg)."""
        from cnnlab.viz.plots import plot_history

        if self.write and history:
            with self._writing(self.path):
                plot_history(history, self.path, title=title)

    def save_confusion(self, result, classes, *, png: bool = True, split: str = "test",
                       stem: str = "confusion"):  # fmt: skip
        """``<stem>.csv`` (true class per row, predicted per column), ``<stem>.png`` and
        ``per_class.csv`` (each class's accuracy) of a classification result."""
        if not self.write:
            return None, None
        names = list(classes) or [str(i) for i in range(result.confusion.shape[0])]
        conf = result.confusion.tolist()
        lines = ["true\\predicted," + ",".join(names)]
        lines += [f"{names[i]}," + ",".join(map(str, row)) for i, row in enumerate(conf)]
        csv_path = self.write_text(f"{stem}.csv", "\n".join(lines) + "\n")
        pc = result.per_class
        self.write_text(
            stem.replace("confusion", "per_class") + ".csv",
            "class,accuracy,count\n"
            + "".join(f"{names[i]},{pc[i]:.4f},{sum(conf[i])}\n" for i in range(len(names))),
        )
        if not png:
            return csv_path, None
        from cnnlab.viz.plots import plot_confusion

        with self._writing(self.file(f"{stem}.png")):
            png_path = plot_confusion(
                result.confusion, names, self.file(f"{stem}.png"),
                title=f"confusion matrix, {split} split (top-1 {result.top1:.2f}%)",
            )  # fmt: skip
        return csv_path, png_path

    def close(self) -> None:
        if self._tb:
            self._tb.close()
        self._tb = None
