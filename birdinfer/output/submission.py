"""The submission file: `row_id` then one column per class, in the competition's order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from birdinfer.errors import SubmissionError

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
