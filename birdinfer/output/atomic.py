"""Atomic writes: a crash leaves the old file or the new one, never half of one.

Every file birdinfer writes (submission, per-window table, run report, journal entries,
benchmark and quantization reports) goes through `write_atomic`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

# Probabilities with 7 significant digits: a 2024-sized submission stays a few tens of MB, and
# relative precision is kept for tiny scores (a fixed number of decimals would tie them at 0).
FLOAT_FORMAT = "%.7g"


def write_csv_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a CSV so that a crash leaves the old file or the new one, never half of one."""
    return write_atomic(
        Path(path), lambda handle: frame.to_csv(handle, index=False, float_format=FLOAT_FORMAT)
    )


def write_json_atomic(data: Any, path: str | Path) -> Path:
    return write_atomic(Path(path), lambda handle: json.dump(data, handle, indent=2, default=str))


def write_atomic(path: str | Path, write, binary: bool = False) -> Path:
    """Call `write(handle)` on a temporary file beside `path`, then rename it into place:
    a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        mode = {"mode": "wb"} if binary else {"mode": "w", "encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, **mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
