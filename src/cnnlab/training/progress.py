"""A rich progress bar with live loss, accuracy and images/s -- or plain lines when not a TTY."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainProgress:
    def __init__(
        self,
        total: int | None,
        *,
        enabled: bool | None = None,
        quiet: bool = False,
        console: Console | None = None,
    ):
        self.console = console or Console(emoji=False, stderr=True)
        self.quiet = quiet
        if enabled is None:
            enabled = not quiet and sys.stderr.isatty()
        self.bar = None
        if enabled:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:5.1f}%"),
                TextColumn("{task.fields[speed]:,.0f} img/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.task = self.bar.add_task("train", total=total, loss=0.0, acc=0.0, speed=0.0)
            self.bar.start()
        self._t = time.perf_counter()

    def update(self, completed: int, *, loss: float, acc: float, speed: float, desc: str,
               total: int | None = None):  # fmt: skip
        """Show step ``completed``; ``total`` re-estimates the run's steps (a time budget's)."""
        if self.bar is not None:
            extra = {"total": total} if total is not None else {}
            self.bar.update(self.task, completed=completed, loss=loss, acc=acc, speed=speed,
                            description=desc, **extra)  # fmt: skip

    def due(self, every_s: float = 0.25) -> bool:
        """Whether a refresh is worth its cost (reading GPU counters synchronises)."""
        if self.bar is None:
            return False
        now = time.perf_counter()
        if now - self._t >= every_s:
            self._t = now
            return True
        return False

    def log(self, msg: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.console.print(msg, highlight=False)
        else:
            self.console.print(msg, highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
