"""Per-window outputs: one row per 5 s window with its file, time span and every class's score
(and each member embedding asked for: models.embedding).

For pseudo-labelling large unlabelled archives, next to or instead of the submission. Written
atomically as parquet (with pyarrow) or CSV, chosen by the path's suffix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from birdinfer.atomic import write_atomic
from birdinfer.errors import SubmissionError
from birdinfer.output.csv_table import write_csv_atomic
from birdinfer.output.submission import ROW_ID

if TYPE_CHECKING:
    from birdinfer.config import Config
    from birdinfer.results import FileResult

log = logging.getLogger(__name__)

# The leading columns; the class columns follow in submission order.
KEYS = ("file", "stem", ROW_ID, "start_seconds", "end_seconds")


def check_columns(columns: Sequence[str]) -> None:
    clash = sorted(set(KEYS) & set(columns))
    if clash:
        raise SubmissionError(f"class columns {clash} clash with the window table's own columns")


def windows_frame(
    files: Sequence[FileResult], columns: Sequence[str], window_seconds: float
) -> pd.DataFrame:
    """A table of every window of `files` (FileResults, as `RunResult.files`).

    `start_seconds`/`end_seconds` are the window's nominal span: a file's last window may reach
    past its end (it was zero-padded), exactly as its row id's end second does.
    """
    check_columns(columns)
    starts = np.concatenate(
        [np.arange(len(f.row_ids), dtype=np.float64) * window_seconds for f in files] or [[]]
    )
    keys = pd.DataFrame(
        {
            "file": [str(f.path) for f in files for _ in f.row_ids],
            "stem": [Path(f.path).stem for f in files for _ in f.row_ids],
            ROW_ID: [row for f in files for row in f.row_ids],
            "start_seconds": starts,
            "end_seconds": starts + window_seconds,
        }
    )
    if files:
        scores = np.concatenate([np.asarray(f.scores, dtype=np.float32) for f in files])
    else:
        scores = np.zeros((0, len(columns)), np.float32)
    frame = pd.concat([keys, pd.DataFrame(scores, columns=list(columns))], axis=1)
    return with_embeddings(frame, files)


def with_embeddings(frame: pd.DataFrame, files: Sequence[FileResult]) -> pd.DataFrame:
    """One column per member embedding after the classes, each cell a row's float32 vector
    (a list in parquet); None for the rows of a file that member did not score (the time
    guard dropped it)."""
    names = list(dict.fromkeys(name for f in files for name in f.embeddings))
    clash = sorted(set(names) & set(frame.columns))
    if clash:
        raise SubmissionError(f"embedding columns {clash} clash with the window table's columns")
    for name in names:
        cells: list = []
        for f in files:
            values = f.embeddings.get(name)
            rows = len(f.row_ids)
            cells += [None] * rows if values is None else list(np.asarray(values, np.float32))
        frame[name] = cells
    return frame


def write_windows(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write atomically: parquet when `path` ends in .parquet (needs pyarrow), else CSV."""
    path = Path(path)
    if path.suffix.lower() != ".parquet":
        return write_csv_atomic(frame, path)
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise SubmissionError(
            f"{path}: writing parquet needs pyarrow (pip install 'birdinfer[parquet]'), "
            "or give a .csv path"
        ) from exc
    return write_atomic(
        path, lambda handle: frame.to_parquet(handle, index=False, engine="pyarrow"), binary=True
    )


def read_windows_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by `write_windows` (class codes stay strings, row ids too)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    frame = pd.read_csv(path, dtype={"file": str, "stem": str, ROW_ID: str})
    frame.columns = [str(c) for c in frame.columns]
    return frame


def write_run_windows(
    config: Config, files: Sequence[FileResult], columns: Sequence[str]
) -> Path | None:
    """The run's per-window table, when `output.windows` asks for one.

    Files the time guard's deadline left unscored (placeholder rows in the submission, no member
    scores) are left out: a pseudo-label table must not hold made-up scores.
    """
    if not config.output.windows:
        return None
    scored = [f for f in files if f.member_scores]
    if len(scored) < len(files):
        log.warning(
            "per-window table: %d files left out, not scored before the deadline",
            len(files) - len(scored),
        )
    frame = windows_frame(scored, columns, config.audio.window_seconds)
    return write_windows(frame, config.output.windows)
