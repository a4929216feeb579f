"""The submission writer's fast path writes exactly what `DataFrame.to_csv` writes."""

import numpy as np
import pandas as pd
import pytest

from birdinfer.output.csv_table import FLOAT_FORMAT, _is_plain_submission, write_csv_atomic


def _frame(row_ids, columns, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(row_ids)
    values = np.concatenate(
        [rng.random((n, 2)), rng.random((n, 2)) ** 40, -rng.random((n, 1)) * 1e-30], axis=1
    ).astype(np.float32)[:, : len(columns)]
    values[0, 0], values[1, 1], values[2, 0] = 0.0, 1.0, -0.0
    frame = pd.DataFrame(values, columns=columns)
    frame.insert(0, "row_id", row_ids)
    return frame


def _pandas_bytes(frame: pd.DataFrame, path) -> bytes:
    frame.to_csv(path, index=False, float_format=FLOAT_FORMAT)
    return path.read_bytes()


def test_a_submission_is_written_byte_for_byte_as_pandas_writes_it(tmp_path):
    frame = _frame([f"soundscape_{i}_{5 * (i + 1)}" for i in range(40)], list("abcde"))
    assert _is_plain_submission(frame)  # the fast path is the one under test
    written = write_csv_atomic(frame, tmp_path / "fast.csv").read_bytes()
    assert written == _pandas_bytes(frame, tmp_path / "pandas.csv")


def test_missing_and_infinite_scores_are_written_as_pandas_writes_them(tmp_path):
    frame = _frame([f"r_{i}" for i in range(6)], list("abc"))
    frame.iloc[1, 2] = np.nan
    frame.iloc[3, 1] = np.inf
    frame.iloc[4, 3] = -np.inf
    written = write_csv_atomic(frame, tmp_path / "fast.csv").read_bytes()
    assert written == _pandas_bytes(frame, tmp_path / "pandas.csv")


@pytest.mark.parametrize(
    "row_ids, columns",
    [
        (["a,1", "b_2", "c_3"], ["x", "y"]),  # a row id with a comma: quoted
        (['say "hi"', "b_2", "c_3"], ["x", "y"]),  # a quote: quoted and doubled
        (["a_1", "b_2", "c_3"], ["x,1", "y"]),  # a class name with a comma
        (["a_1", "", "c_3"], ["x", "y"]),  # an empty row id
    ],
)
def test_text_that_needs_quoting_goes_through_pandas(tmp_path, row_ids, columns):
    frame = _frame(row_ids, columns)
    assert not _is_plain_submission(frame)
    written = write_csv_atomic(frame, tmp_path / "w.csv").read_bytes()
    assert written == _pandas_bytes(frame, tmp_path / "pandas.csv")


@pytest.mark.parametrize(
    "first",
    [[np.nan, 1.5, 2.0], [0.1, 1 / 3, 1e-30], [np.nan, "a", "b"]],
    ids=["nan-and-floats", "floats", "nan-among-text"],
)
def test_a_float_or_nan_first_column_is_written_as_pandas_writes_it(tmp_path, first):
    import birdinfer

    frame = pd.DataFrame({"key": first, "score": np.float32([0.25, 0.5, 1 / 3])})
    written = birdinfer.write_windows(frame, tmp_path / "fast.csv").read_bytes()
    assert written == _pandas_bytes(frame, tmp_path / "pandas.csv")
