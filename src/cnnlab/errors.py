"""User-facing errors.

Every error a user can cause (bad flags, wrong shapes, missing files) is a ``CnnlabError``
carrying what was wrong and, where we know it, how to fix it. The CLI prints these as one
short message without a traceback; Python callers can catch them like any exception.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """An error caused by the user's input, with a message that says how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\nHint: {hint}")


class ShapeError(CnnlabError, ValueError):
    """A layer configuration whose sizes do not fit (e.g. a non-integer output size)."""


class ConfigError(CnnlabError, ValueError):
    """A bad option, name or flag value."""


class DataError(CnnlabError, OSError):
    """A missing, corrupt or unreadable data or checkpoint file."""


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite; training stopped (the trainer and the scratch engine)."""


def suggest(name: str, choices, n: int = 5) -> str:
    """A 'did you mean' phrase for an unknown ``name`` among ``choices`` (empty if none close)."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    return f"did you mean: {', '.join(close)}?" if close else ""
