"""Atomic writes: a crash leaves the old file or the new one, never half of one.

Every file birdinfer writes (submission, per-window table, run report, journal entries,
benchmark and quantization reports) goes through `write_atomic`.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Probabilities with 7 significant digits: a 2024-sized submission stays a few tens of MB, and
# relative precision is kept for tiny scores (a fixed number of decimals would tie them at 0).
FLOAT_FORMAT = "%.7g"


def write_csv_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a CSV so that a crash leaves the old file or the new one, never half of one."""

    def write(handle) -> None:
        if _is_plain_submission(frame):
            _write_submission_rows(frame, handle)
        else:
            frame.to_csv(handle, index=False, float_format=FLOAT_FORMAT)

    return write_atomic(Path(path), write)


# Characters that make the csv module quote a field (QUOTE_MINIMAL, as pandas writes).
_NEEDS_QUOTES = frozenset(',"\r\n')


def _is_plain_submission(frame: pd.DataFrame) -> bool:
    """A row-id column then float columns, with no text that the csv module would quote: the
    shape `_write_submission_rows` writes byte for byte as `DataFrame.to_csv` does."""
    if frame.shape[1] < 2 or frame.columns.has_duplicates:
        return False
    # Row ids are text: a float or NaN first column goes to pandas, which writes NaN empty and
    # floats with float_format (str() would write "nan" and repr digits).
    if not all(isinstance(r, str) for r in frame.iloc[:, 0]):
        return False
    floats = frame.dtypes.iloc[1:]
    if not all(pd.api.types.is_float_dtype(d) for d in floats):
        return False
    texts = [str(c) for c in frame.columns] + [str(r) for r in frame.iloc[:, 0]]
    return all(t and not _NEEDS_QUOTES.intersection(t) for t in texts)


def _write_submission_rows(frame: pd.DataFrame, handle) -> None:
    """`frame.to_csv(index=False, float_format=FLOAT_FORMAT)`, one `%` per row: pandas formats
    each cell with its own Python call (0.67 s for 1,200 rows of 234 classes; this: ~0.1 s),
    and a Kaggle submission is tens of thousands of rows. Missing values are written empty, as
    pandas does."""
    line = os.linesep
    handle.write(",".join(str(c) for c in frame.columns) + line)
    values = frame.iloc[:, 1:].to_numpy(np.float64)
    row_format = ",".join(["%s"] + [FLOAT_FORMAT] * values.shape[1]) + line
    finite = np.isfinite(values).all(axis=1)
    for row_id, row, clean in zip(frame.iloc[:, 0], values.tolist(), finite, strict=True):
        if clean:
            handle.write(row_format % (row_id, *row))
        else:  # pandas writes NaN as an empty field and infinities as inf
            cells = ["" if np.isnan(v) else FLOAT_FORMAT % v for v in row]
            handle.write(",".join([str(row_id), *cells]) + line)


def write_json_atomic(data: Any, path: str | Path) -> Path:
    return write_atomic(Path(path), lambda handle: json.dump(data, handle, indent=2, default=str))


def current_umask() -> int:
    """This process's umask, read without changing it where Linux shows it (os.umask can
    only be read by setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ordinary_mode(path: Path) -> int:
    """The permission bits `open(path, "w")` would leave: an existing file's own, else 0666
    less the umask."""
    try:
        status = os.stat(path)
    except OSError:
        return 0o666 & ~current_umask()
    return (
        stat.S_IMODE(status.st_mode) if stat.S_ISREG(status.st_mode) else 0o666 & ~current_umask()
    )


def write_atomic(path: str | Path, write, binary: bool = False, durable: bool = True) -> Path:
    """Call `write(handle)` on a temporary file beside `path`, then rename it into place:
    a crash leaves the old file or the new one, never half of one.

    `durable` syncs the data to disk before the rename, so that even a power cut leaves one or
    the other; without it a process crash still does, and a power cut may leave the new name
    with less than its data (for files whose readers treat that as absent: journal entries)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; the renamed file gets what open() would have given it.
        os.fchmod(fd, ordinary_mode(path))
        mode = {"mode": "wb"} if binary else {"mode": "w", "encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, **mode) as handle:
            write(handle)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
