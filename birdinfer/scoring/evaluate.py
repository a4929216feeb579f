"""Check a submission's format the way Kaggle would refuse it, then score it against labels.

`birdinfer score --solution labels.csv --submission submission.csv` runs both: a submission with
format errors is not scored (each error names rows, columns and CSV lines to look at); values
outside [0, 1] are only a warning, since both metrics depend on the scores' order alone.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from birdinfer.errors import SubmissionError
from birdinfer.output import ROW_ID
from birdinfer.scoring.metrics import macro_roc_auc_arrays, padded_cmap_arrays

METRICS = ("macro_roc_auc", "padded_cmap")
SHOWN = 5  # examples named per problem


@dataclass
class Validation:
    """Errors stop scoring (Kaggle would fail or mis-score the file); warnings do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Score:
    metric: str
    value: float
    rows: int
    classes: int  # class columns in the solution
    scored: int  # classes that entered the mean
    skipped: tuple[str, ...]  # ROC-AUC: classes left out, without a positive (or negative) row
    # ROC-AUC: classes whose every row is positive. Kaggle's scikit-learn call returns NaN for
    # them (so NaN overall); birdinfer leaves them out and says so.
    undefined: tuple[str, ...] = ()

    def describe(self) -> str:
        text = f"{self.metric} = {self.value:.6f} ({self.rows} rows, {self.scored} of "
        text += f"{self.classes} classes scored"
        return text + (f"; skipped: {_few(self.skipped)})" if self.skipped else ")")


def read_table(path: str | Path) -> pd.DataFrame:
    """A submission or solution CSV: row ids and column names as strings ('1139490' stays one),
    duplicated header names kept as they are (pandas would rename the second 'x' to 'x.1')."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        frame = pd.read_csv(path, dtype={ROW_ID: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: not a readable CSV ({exc})") from exc
    frame.columns = header if len(header) == frame.shape[1] else [str(c) for c in frame.columns]
    return frame


def validate_submission(
    submission: pd.DataFrame,
    solution: pd.DataFrame | None = None,
    sample_columns: Sequence[str] | None = None,
) -> Validation:
    """Every format problem Kaggle's scorer would trip on, each naming where to look.

    Columns are checked against `sample_columns` (the class columns of sample_submission.csv)
    when given, else against the solution's; rows against the solution's row ids when given.
    """
    check = Validation()
    columns = [str(c) for c in submission.columns]
    if ROW_ID not in columns:
        found = repr(columns[0]) if columns else "no columns at all"
        check.errors.append(f"no '{ROW_ID}' column: the first column must be '{ROW_ID}' ({found})")
        return check
    if columns[0] != ROW_ID:
        position = columns.index(ROW_ID) + 1
        hint = " (an index written by to_csv without index=False?)" if position == 2 else ""
        check.errors.append(f"'{ROW_ID}' must be the first column; it is column {position}{hint}")
    frame = submission.set_axis(columns, axis=1)
    frame = frame.loc[:, ~frame.columns.duplicated()]  # a repeated name: its first column
    ids = _row_ids(frame)
    _check_columns(check, columns, solution, sample_columns)
    _check_row_ids(check, ids, solution)
    _check_values(check, frame, ids, [c for c in frame.columns if c != ROW_ID])
    return check


def _row_ids(frame: pd.DataFrame) -> pd.Series:
    return frame[ROW_ID].astype("string").reset_index(drop=True)


def _check_columns(
    check: Validation,
    columns: list[str],
    solution: pd.DataFrame | None,
    sample_columns: Sequence[str] | None,
) -> None:
    doubled = sorted({c for c in columns if columns.count(c) > 1})
    if doubled:
        check.errors.append(f"duplicated column names: {_few(doubled)}")
    if sample_columns is not None:
        expected, source = [str(c) for c in sample_columns], "sample submission"
    elif solution is not None:
        expected, source = [str(c) for c in solution.columns if str(c) != ROW_ID], "solution"
    else:
        return
    if solution is not None:  # the solution's classes are what gets scored
        expected += [str(c) for c in solution.columns if str(c) not in (ROW_ID, *expected)]
    classes = [c for c in columns if c != ROW_ID]
    have, known = set(classes), set(expected)
    missing = [c for c in expected if c not in have]
    extra = [c for c in dict.fromkeys(classes) if c not in known]
    if missing:
        check.errors.append(
            f"{_n(len(missing), 'class column')} of the {source} missing: {_few(missing)}"
        )
    if extra:
        floats = [c for c in extra if c.endswith(".0") and c[:-2] in have | set(missing)]
        hint = (
            f" (class codes are strings: '{floats[0][:-2]}', not '{floats[0]}')" if floats else ""
        )
        check.errors.append(f"{_n(len(extra), 'column')} not in the {source}: {_few(extra)}{hint}")
    if not missing and not extra and not doubled and classes != expected:
        i = next(i for i, (a, b) in enumerate(zip(classes, expected, strict=True)) if a != b)
        check.errors.append(
            f"class columns not in the {source}'s order: column {columns.index(classes[i]) + 1} "
            f"is '{classes[i]}', expected '{expected[i]}' (the 2023 metric compares columns by "
            "position)"
        )


def _check_row_ids(check: Validation, ids: pd.Series, solution: pd.DataFrame | None) -> None:
    blank = (ids.fillna("").str.strip() == "").to_numpy(dtype=bool)
    if blank.any():
        lines = _few([int(i) + 2 for i in np.flatnonzero(blank)], quote=False)
        check.errors.append(f"{_n(int(blank.sum()), 'row')} without a row_id, at CSV lines {lines}")
    counts = ids[~blank].value_counts()
    doubled = counts[counts > 1]
    if len(doubled):
        shown = [f"{rid} (x{n})" for rid, n in doubled.items()]
        check.errors.append(f"{_n(len(doubled), 'row id')} repeated: {_few(shown, quote=False)}")
    if solution is None:
        return
    wanted = _row_ids(solution.rename(columns=str))
    have, known = set(ids[~blank]), set(wanted)
    missing = [r for r in wanted if r not in have]
    extra = [r for r in dict.fromkeys(ids[~blank]) if r not in known]
    if missing:
        check.errors.append(
            f"{len(missing)} of the solution's {len(wanted)} row ids missing: {_few(missing)}"
        )
    if extra:
        check.errors.append(f"{_n(len(extra), 'row id')} not in the solution: {_few(extra)}")


def _check_values(
    check: Validation, frame: pd.DataFrame, ids: pd.Series, classes: list[str]
) -> None:
    numeric = []
    for name in classes:
        column = frame[name].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            numeric.append(name)
            continue
        values = pd.to_numeric(column, errors="coerce")
        bad = column.notna() & values.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            check.errors.append(
                f"column '{name}' is not numeric: {_n(int(bad.sum()), 'value')} such as "
                f"{_show(column.iloc[i])} (row {_row(ids, i)}, CSV line {i + 2})"
            )
        else:
            check.errors.append(f"column '{name}' has dtype {column.dtype}, not a number type")
    if not numeric:
        return
    values = frame[numeric].to_numpy(dtype=np.float64)
    _report_cells(check.errors, ~np.isfinite(values), values, ids, numeric, "NaN or infinite")
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(values) & ((values < 0) | (values > 1))
    _report_cells(check.warnings, outside, values, ids, numeric, "outside [0, 1]")


def _report_cells(
    out: list[str], mask: np.ndarray, values: np.ndarray, ids: pd.Series, columns, what: str
) -> None:
    if not mask.any():
        return
    row, col = (int(i[0]) for i in np.nonzero(mask))
    per_column = mask.sum(axis=0)
    names = [columns[c] for c in np.flatnonzero(per_column)]
    out.append(
        f"{what}: {_n(int(mask.sum()), 'cell')} in {_n(len(names), 'column')} ({_few(names)}); "
        f"first: row {_row(ids, row)}, column '{columns[col]}', CSV line {row + 2}: {_show(values[row, col])}"
    )


def validate_solution(solution: pd.DataFrame) -> list[str]:
    """A labels file in the solution format: row_id first, unique ids, 0/1 class columns."""
    columns = [str(c) for c in solution.columns]
    if not columns or columns[0] != ROW_ID:
        return [f"the first column must be '{ROW_ID}' (found {columns[:1]})"]
    problems = []
    ids = _row_ids(solution.rename(columns=str))
    doubled = ids[ids.duplicated()].unique().tolist()
    if doubled:
        problems.append(f"{_n(len(doubled), 'row id')} repeated: {_few(doubled)}")
    labels = solution.iloc[:, 1:].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isin(labels, (0.0, 1.0))
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        problems.append(
            f"{_n(int(bad.sum()), 'label')} not 0 or 1; first: row {_row(ids, row)}, column "
            f"'{columns[col + 1]}', CSV line {row + 2}: {_show(solution.iloc[row, col + 1])}"
        )
    if len(columns) < 2:
        problems.append("no class columns")
    return problems


def score_submission(solution: pd.DataFrame, submission: pd.DataFrame, metric: str) -> Score:
    """The competition metric; rows matched by row_id, columns by name (validate first)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric '{metric}'; choose one of {list(METRICS)}")
    solution = solution.rename(columns=str)
    submission = submission.rename(columns=str)
    classes = [c for c in solution.columns if c != ROW_ID]
    keys = pd.DataFrame({ROW_ID: _row_ids(solution)})
    scores_frame = submission[classes].reset_index(drop=True)
    scores_frame.insert(0, ROW_ID, _row_ids(submission))
    merged = keys.merge(scores_frame, on=ROW_ID, how="left", validate="one_to_one")
    truth = solution[classes].to_numpy(dtype=np.float64)
    scores = merged[classes].to_numpy(dtype=np.float64)
    if np.isnan(scores).any():
        raise SubmissionError("the submission lacks some solution rows or has NaN: validate it")
    positives = truth.sum(axis=0)
    if metric == "padded_cmap":
        return Score(
            metric, padded_cmap_arrays(truth, scores), len(truth), len(classes), len(classes), ()
        )
    keep = (positives > 0) & (positives < len(truth))
    if not keep.any():
        raise SubmissionError("no class has both positive and negative rows: ROC-AUC undefined")
    skipped = tuple(c for c, k in zip(classes, keep, strict=True) if not k)
    undefined = tuple(c for c, n in zip(classes, positives, strict=True) if n == len(truth))
    value = macro_roc_auc_arrays(truth, scores)
    return Score(metric, value, len(truth), len(classes), int(keep.sum()), skipped, undefined)


def _few(items: Sequence, quote: bool = True) -> str:
    shown = [f"'{x}'" if quote else str(x) for x in list(items)[:SHOWN]]
    more = f", ... ({len(items)} in all)" if len(items) > SHOWN else ""
    return ", ".join(shown) + more


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _row(ids: pd.Series, i: int) -> str:
    return "(no row_id)" if pd.isna(ids.iloc[i]) else str(ids.iloc[i])


def _show(value) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return repr(value if isinstance(value, str) else str(value))
