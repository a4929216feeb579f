"""One error hierarchy: every problem a user can fix is a `BirdinferError`.

A caller (the CLI, a notebook) catches by type: `ConfigError` for a key to change, `AudioError`
for a recording, `ModelError` for a model file, `SubmissionError` for columns or rows, and
`JournalError` for a `--resume` journal. Tools add their own subclasses of these (an export or a
quantization failure is a `ModelError`). The message always names the key, file or path.
"""

from __future__ import annotations

from pathlib import Path


class BirdinferError(Exception):
    """A problem the user can act on; the message says what and where."""


class ConfigError(BirdinferError, ValueError):
    """A config value a user must fix; the message names the key."""


class AudioError(BirdinferError):
    """A recording that cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ModelError(BirdinferError):
    """A model file that cannot be used, built or converted; the message names the file."""


class SubmissionError(BirdinferError, ValueError):
    """A submission that cannot be built as asked; the message says which columns or rows."""


class JournalError(BirdinferError):
    """A journal that cannot be resumed from; the message says why and what to do."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (runtimes raise pages of C++ context), or its type."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
