"""One error hierarchy: every problem a user can fix is a `BirdinferError`.

A caller (the CLI, a notebook) catches by type: `ConfigError` for a key to change, `AudioError`
for a recording, `ModelError` for a model file, `SubmissionError` for columns or rows, and
`JournalError` for a `--resume` journal. Tools add their own subclasses of these (an export or a
quantization failure is a `ModelError`). The message always names the key, file or path.
"""

from __future__ import annotations

import os
import re
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


# Lines that only say where in a runtime's C++ sources an error was raised: OpenVINO opens with
# "Exception from src/inference/src/cpp/core.cpp:84:" and "Check '...' failed at <file>:<line>:",
# and puts the reason after them.
_SOURCE_LOCATION = re.compile(r"^(Exception from \S+:\d+:?|Check '.*' failed at \S+:\d+:?)$")


def first_line(exc: BaseException) -> str:
    """The reason in an exception's text: its first lines that are not a C++ source location
    (runtimes raise pages of context), at most three joined by ": ", or the exception's type."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    reason = [line for line in lines if line and not _SOURCE_LOCATION.match(line)]
    return ": ".join(reason[:3]) or type(exc).__name__


def display_path(path: Path | str) -> str:
    """A path as text that prints anywhere: bytes that are not UTF-8 (kept by Python as lone
    surrogates) as \\xNN, control characters (a carriage return) as escapes."""
    text = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
