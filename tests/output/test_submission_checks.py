"""The submission writer refuses what Kaggle would reject (issue 12, points 2 and 7): an empty,
NaN or Inf cell, a non-numeric class column, a row id that would not read back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from birdinfer.errors import SubmissionError
from birdinfer.output import build_submission, read_row_ids, write_submission

COLUMNS = ["1139490", "41663", "grekis"]


def frame(ids=("s1_5", "s1_10"), scores=None) -> pd.DataFrame:
    scores = np.full((len(ids), len(COLUMNS)), 0.25) if scores is None else scores
    return build_submission(list(ids), np.asarray(scores), COLUMNS)


def test_a_good_submission_is_written(tmp_path):
    path = write_submission(frame(), tmp_path / "submission.csv")
    assert path.read_text().splitlines()[0] == "row_id,1139490,41663,grekis"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_cell_is_refused_and_nothing_written(tmp_path, bad):
    scores = np.full((2, 3), 0.5)
    scores[1, 2] = bad
    with pytest.raises(
        SubmissionError, match=r"1 rows hold empty, NaN or Inf scores \(e.g. s1_10\)"
    ):
        write_submission(frame(scores=scores), tmp_path / "submission.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_non_numeric_column_is_refused(tmp_path):
    table = frame()
    table["41663"] = ["high", "low"]
    with pytest.raises(SubmissionError, match=r"class columns \['41663'\] are not numeric"):
        write_submission(table, tmp_path / "submission.csv")


@pytest.mark.parametrize(
    "row_id, problem",
    [("cr\rname_5", "holds the control character \\r"), ("", "empty or not text")],
)
def test_a_row_id_that_would_not_read_back_is_refused(tmp_path, row_id, problem):
    with pytest.raises(SubmissionError, match=problem.replace("\\", "\\\\")):
        write_submission(frame(ids=("s1_5", row_id)), tmp_path / "submission.csv")


def test_row_ids_of_a_sample_submission_by_stem(tmp_path):
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("row_id,a\nsoundscape_1_5,0\nsoundscape_1_10,0\nsite/x_2_5,0\n")
    assert read_row_ids(sample) == {
        "soundscape_1": ["soundscape_1_5", "soundscape_1_10"],
        "site/x_2": ["site/x_2_5"],
    }
