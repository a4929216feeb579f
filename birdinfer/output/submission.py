"""The submission file: `row_id` then one column per class, in the competition's order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from birdinfer.audio import text_problem
from birdinfer.errors import SubmissionError, display_path
from birdinfer.output.csv_table import write_csv_atomic
from birdinfer.results import FileResult

ROW_ID = "row_id"


def read_class_columns(sample_submission: str | Path) -> list[str]:
    """Class columns of a sample submission, as strings ("1139490" stays "1139490", not an int)."""
    path = Path(sample_submission)
    try:
        header = pd.read_csv(path, nrows=0, dtype=str).columns
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: cannot read the sample submission ({exc})") from exc
    columns = [str(c) for c in header]
    if not columns or columns[0] != ROW_ID:
        raise SubmissionError(f"{path}: the first column must be '{ROW_ID}', found {columns[:1]}")
    return columns[1:]


def read_row_ids(sample_submission: str | Path) -> dict[str, list[str]]:
    """A sample submission's row ids by file stem (`soundscape_1_20` -> `soundscape_1`), in
    its order: the rows Kaggle expects for each recording."""
    path = Path(sample_submission)
    try:
        ids = pd.read_csv(path, usecols=[ROW_ID], dtype=str)[ROW_ID]
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: cannot read its row ids ({exc})") from exc
    by_stem: dict[str, list[str]] = defaultdict(list)
    for row_id in ids.dropna():
        stem, _, end = row_id.rpartition("_")
        if stem and end:
            by_stem[stem].append(row_id)
    return dict(by_stem)


def column_order(model_classes: Sequence[str], columns: Sequence[str], model: str) -> np.ndarray:
    """Indices that put a model's classes in the submission's column order.

    A model must score every column; extra model classes are dropped (with the caller's warning).
    """
    position = {name: i for i, name in enumerate(model_classes)}
    missing = [c for c in columns if c not in position]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise SubmissionError(
            f"{model}: the model has {len(model_classes)} classes and lacks {len(missing)} of the "
            f"{len(columns)} submission columns: {shown}"
        )
    return np.array([position[c] for c in columns], dtype=np.int64)


def build_submission(
    row_ids: Sequence[str], scores: np.ndarray, columns: Sequence[str]
) -> pd.DataFrame:
    scores = np.asarray(scores, dtype=np.float32).reshape(len(row_ids), len(columns))
    frame = pd.DataFrame(scores, columns=list(columns))
    frame.insert(0, ROW_ID, list(row_ids))
    return frame


def submission_frame(results: Sequence[FileResult], columns: Sequence[str]) -> pd.DataFrame:
    """The submission of a run's files (in their order): each file's rows, one column a class."""
    ids = [row for r in results for row in r.row_ids]
    if results:
        scores = np.concatenate([r.scores for r in results])
    else:
        scores = np.zeros((0, len(columns)), np.float32)
    return build_submission(ids, scores, columns)


def check_submission(frame: pd.DataFrame) -> None:
    """Refuse a submission Kaggle would reject: every class cell must hold a finite number
    (an empty, NaN or Inf cell fails scoring), and every row id must be non-empty text that
    reads back from the CSV as written (no control characters)."""
    scores = frame.drop(columns=[ROW_ID])
    numeric = [c for c in scores.columns if pd.api.types.is_numeric_dtype(scores[c])]
    if len(numeric) < scores.shape[1]:
        other = [c for c in scores.columns if c not in numeric][:5]
        raise SubmissionError(f"class columns {other} are not numeric: refusing to write them")
    bad = ~np.isfinite(scores.to_numpy(dtype=np.float64)).all(axis=1)
    if bad.any():
        shown = ", ".join(display_path(r) for r in frame[ROW_ID][bad].head(5))
        raise SubmissionError(
            f"{int(bad.sum())} rows hold empty, NaN or Inf scores (e.g. {shown}): "
            "refusing to write a submission Kaggle would reject"
        )
    ids = frame[ROW_ID]
    if not all(isinstance(row_id, str) and row_id for row_id in ids):
        raise SubmissionError("some row ids are empty or not text: refusing to write them")
    if text_problem("".join(ids)) is not None:  # one pass over every row id; then find it
        row_id = next(r for r in ids if text_problem(r) is not None)
        raise SubmissionError(f"row id '{display_path(row_id)}' {text_problem(row_id)}")


def write_submission(frame: pd.DataFrame, path: str | Path) -> Path:
    """Check the submission (`check_submission`), then write it atomically."""
    check_submission(frame)
    return write_csv_atomic(frame, path)
