"""Placeholder rows: the rows of a recording that was not scored, with a fixed score.

Kaggle rejects a submission that lacks any expected row id, so a file keeps its rows when:
- the time guard left it unscored (the deadline came): always;
- it could not be scored (unreadable, a model failed on it): when
  `input.placeholder_rows_for_skipped` is set.

Its rows are the sample submission's row ids for its stem when there are any (they are what
Kaggle expects), else those over the length its header declares (a length the header does not
give, or one above `audio.max_header_hours`, counts as none: nothing is sized by a claim), else,
for a skipped file, over `input.skipped_file_seconds`; else it gets none.

This is the one place such rows are made; the score is `budget.placeholder_score`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from birdinfer.audio import count_windows, probe, row_ids
from birdinfer.config import AudioConfig, Config
from birdinfer.errors import AudioError
from birdinfer.output import read_row_ids
from birdinfer.results import FileFailure, FileResult

log = logging.getLogger(__name__)

BUDGET_WARNING = "not scored: time budget exhausted"
BUDGET_REASON = "the time budget ran out (the time guard's deadline)"


def declared_windows(path: Path, audio: AudioConfig) -> int:
    """Windows over the length a recording's header declares; AudioError if it is unreadable
    or gives no plausible length."""
    info = probe(path, audio.max_header_seconds)
    if not info.length_known:
        raise AudioError(path, info.note)
    return count_windows(info.frames, info.sample_rate, audio.window_seconds, audio.last_window)


def sample_row_ids(config: Config) -> dict[str, list[str]]:
    """The sample submission's row ids by stem ({} without a sample submission)."""
    sample = config.output.sample_submission
    return read_row_ids(sample) if sample else {}


def rows_for_unscored(
    files: list[Path], stems: Mapping[str, str], config: Config, n_columns: int
) -> tuple[list[FileResult], list[FileFailure]]:
    """Rows for the files the time guard left unscored; a file with no rows in the sample
    submission and no length in its header is a failure instead (with the reason), as it would
    have been had it been decoded."""
    results, failures = [], []
    expected = sample_row_ids(config) if files else {}
    for path in files:
        stem = stems[str(path)]
        ids = expected.get(stem)
        if ids is None:
            try:
                n = declared_windows(path, config.audio)
                if n == 0:
                    raise AudioError(path, "holds no audio frames (empty or header-only file)")
            except AudioError as exc:
                failures.append(FileFailure(str(path), exc.reason))
                continue
            ids = row_ids(stem, n, config.audio.window_seconds)
        results.append(_result(path, ids, n_columns, config, BUDGET_WARNING, BUDGET_REASON))
    return results, failures


def rows_for_failures(
    failures: list[FileFailure], stems: Mapping[str, str], config: Config, n_columns: int
) -> list[FileResult]:
    """Rows for files that could not be scored, when the config asks for them. `stems` maps
    each file's path (as text) to the stem its row ids start with."""
    if not config.input.placeholder_rows_for_skipped:
        return []
    expected = sample_row_ids(config) if failures else {}
    results = []
    for failure in failures:
        path, stem = Path(failure.path), stems[failure.path]
        ids = expected.get(stem) or row_ids(
            stem, _skipped_windows(path, config), config.audio.window_seconds
        )
        if not ids:
            log.warning("%s: no length known, so no placeholder rows", failure.path)
            continue
        score = config.budget.placeholder_score
        warning = f"placeholder rows ({score}): not scored ({failure.reason})"
        results.append(_result(path, ids, n_columns, config, warning, "could not be scored"))
    return results


def _skipped_windows(path: Path, config: Config) -> int:
    """Windows for a skipped file: its header's, else `input.skipped_file_seconds`'s, else 0."""
    window = config.audio.window_seconds
    try:
        n = declared_windows(path, config.audio)
    except AudioError:
        n = 0
    if n == 0 and config.input.skipped_file_seconds:
        n = math.ceil(config.input.skipped_file_seconds / window - 1e-9)
    return n


def _result(
    path: Path, ids: list[str], n_columns: int, config: Config, warning: str, reason: str
) -> FileResult:
    return FileResult(
        path=path,
        row_ids=list(ids),
        scores=np.full((len(ids), n_columns), config.budget.placeholder_score, np.float32),
        warnings=[warning],
        placeholder=reason,
    )
