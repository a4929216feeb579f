"""Tables written as CSV, atomically (birdinfer.atomic): a crash leaves the old file or the new
one, never half of one. A plain submission is formatted row by row, byte for byte as pandas
would write it, and faster.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from birdinfer.atomic import write_atomic

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
