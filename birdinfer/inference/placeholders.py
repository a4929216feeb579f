"""Placeholder rows: the rows of a recording that was not scored, with a fixed score.

Kaggle rejects a submission that lacks any expected row id, so a file keeps its rows when:
- the time guard left it unscored (the deadline came): always;
- it could not be scored (unreadable, a model failed on it): when
  `input.placeholder_rows_for_skipped` is set, over the length its header declares, else over
  `input.skipped_file_seconds`, else it gets none.

This is the one place such rows are made; the score is `budget.placeholder_score`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from birdinfer.audio.decode import probe
from birdinfer.audio.rows import count_windows, row_ids
from birdinfer.config import Config
from birdinfer.errors import AudioError
from birdinfer.results import FileFailure, FileResult

log = logging.getLogger(__name__)

BUDGET_WARNING = "not scored: time budget exhausted"


def declared_windows(path: Path, window_seconds: float) -> int:
    """Windows over the length a recording's header declares (AudioError if unreadable)."""
    info = probe(path)
    return count_windows(info.frames, info.sample_rate, window_seconds)


def rows_for_unscored(
    files: list[Path], stems: Mapping[str, str], config: Config, n_columns: int
) -> tuple[list[FileResult], list[FileFailure]]:
    """Rows for the files the time guard left unscored; a file whose header gives no length is
    a failure instead (with the reason), as it would have been had it been decoded."""
    results, failures = [], []
    for path in files:
        try:
            n = declared_windows(path, config.audio.window_seconds)
            if n == 0:
                raise AudioError(path, "holds no audio frames (empty or header-only file)")
        except AudioError as exc:
            failures.append(FileFailure(str(path), exc.reason))
            continue
        results.append(_result(path, stems[str(path)], n, n_columns, config, BUDGET_WARNING))
    return results, failures


def rows_for_failures(
    failures: list[FileFailure], stems: Mapping[str, str], config: Config, n_columns: int
) -> list[FileResult]:
    """Rows for files that could not be scored, when the config asks for them. `stems` maps
    each file's path (as text) to the stem its row ids start with."""
    if not config.input.placeholder_rows_for_skipped:
        return []
    window = config.audio.window_seconds
    results = []
    for failure in failures:
        path = Path(failure.path)
        try:
            n = declared_windows(path, window)
        except AudioError:
            n = 0
        if n == 0 and config.input.skipped_file_seconds:
            n = math.ceil(config.input.skipped_file_seconds / window - 1e-9)
        if n == 0:
            log.warning("%s: no length known, so no placeholder rows", failure.path)
            continue
        score = config.budget.placeholder_score
        warning = f"placeholder rows ({score}): not scored ({failure.reason})"
        results.append(_result(path, stems[failure.path], n, n_columns, config, warning))
    return results


def _result(
    path: Path, stem: str, n_windows: int, n_columns: int, config: Config, warning: str
) -> FileResult:
    return FileResult(
        path=path,
        row_ids=row_ids(stem, n_windows, config.audio.window_seconds),
        scores=np.full((n_windows, n_columns), config.budget.placeholder_score, np.float32),
        warnings=[warning],
    )
