"""`birdinfer score`: a submission's format is checked the way Kaggle refuses it, then scored."""

import numpy as np
import pandas as pd
import pytest

from birdinfer.cli import main
from birdinfer.scoring import read_table, validate_solution, validate_submission

CODES = ["asbfly", "1139490", "41663", "zitcis1"]  # numeric-looking codes must stay strings
IDS = [f"soundscape_{f}_{e}" for f in (1, 2) for e in (5, 10, 15)]


@pytest.fixture
def solution() -> pd.DataFrame:
    truth = np.array(
        [[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0], [1, 0, 0, 0]]
    )
    frame = pd.DataFrame(truth, columns=CODES)
    frame.insert(0, "row_id", IDS)
    return frame


@pytest.fixture
def submission(solution) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.random((len(IDS), len(CODES))), columns=CODES)
    frame.insert(0, "row_id", IDS)
    return frame


def errors_of(submission, solution=None, sample=None) -> list[str]:
    return validate_submission(submission, solution, sample).errors


def test_a_valid_submission_has_no_problems(submission, solution):
    check = validate_submission(submission, solution, CODES)
    assert check.ok and check.warnings == []


def test_row_id_must_be_the_first_column(submission, solution):
    moved = submission[[*CODES[:2], "row_id", *CODES[2:]]]
    assert errors_of(moved, solution) == ["'row_id' must be the first column; it is column 3"]
    (error,) = errors_of(submission.reset_index(), solution)[:1]
    assert error.endswith("it is column 2 (an index written by to_csv without index=False?)")
    (error,) = errors_of(submission.drop(columns="row_id"), solution)
    assert "no 'row_id' column" in error and "'asbfly'" in error


def test_missing_duplicated_and_extra_row_ids_are_named(submission, solution):
    broken = pd.concat([submission.iloc[[0, 0, 1]], submission.iloc[[2]].assign(row_id="x_5")])
    errors = errors_of(broken, solution)
    assert "1 row id repeated: soundscape_1_5 (x2)" in errors
    assert (
        "4 of the solution's 6 row ids missing: 'soundscape_1_15', 'soundscape_2_5', "
        "'soundscape_2_10', 'soundscape_2_15'"
    ) in errors
    assert "1 row id not in the solution: 'x_5'" in errors


def test_rows_without_a_row_id_point_at_their_csv_lines(submission):
    submission.loc[[1, 4], "row_id"] = [None, " "]
    assert errors_of(submission) == ["2 rows without a row_id, at CSV lines 3, 6"]


def test_missing_extra_and_reordered_columns(submission, solution):
    errors = errors_of(submission.drop(columns="41663").assign(extra=0.5), solution)
    assert errors == [
        "1 class column of the solution missing: '41663'",
        "1 column not in the solution: 'extra'",
    ]
    reordered = submission[["row_id", "1139490", "asbfly", "41663", "zitcis1"]]
    (error,) = errors_of(reordered, sample=CODES)
    assert "not in the sample submission's order: column 2 is '1139490', expected 'asbfly'" in error


def test_class_codes_written_as_floats_get_a_hint(submission, solution):
    (missing, extra) = errors_of(submission.rename(columns={"1139490": "1139490.0"}), solution)
    assert "'1139490'" in missing and "class codes are strings: '1139490', not '1139490.0'" in extra


def test_non_numeric_columns_are_named_with_an_example(submission):
    submission["41663"] = submission["41663"].astype(object)
    submission.loc[4, "41663"] = "0.3x"
    (error,) = errors_of(submission)
    assert (
        error
        == "column '41663' is not numeric: 1 value such as '0.3x' (row soundscape_2_10, CSV line 6)"
    )


def test_nan_and_infinite_cells_are_counted_with_the_first_one(submission):
    submission.loc[2, "zitcis1"] = np.nan
    submission.loc[5, "asbfly"] = np.inf
    (error,) = errors_of(submission)
    assert error.startswith("NaN or infinite: 2 cells in 2 columns ('asbfly', 'zitcis1'); ")
    assert error.endswith("first: row soundscape_1_15, column 'zitcis1', CSV line 4: nan")


def test_values_outside_0_1_are_a_warning_not_an_error(submission, solution):
    submission.loc[3, "1139490"] = 3.5
    check = validate_submission(submission, solution)
    assert check.ok
    assert check.warnings == [
        "outside [0, 1]: 1 cell in 1 column ('1139490'); first: row soundscape_2_5, "
        "column '1139490', CSV line 5: 3.5"
    ]


def test_solution_labels_must_be_0_or_1(solution):
    solution["41663"] = solution["41663"].astype(float)
    solution.loc[2, "41663"] = 0.5
    assert validate_solution(solution) == [
        "1 label not 0 or 1; first: row soundscape_1_15, column '41663', CSV line 4: 0.5"
    ]


def test_read_table_keeps_codes_and_duplicated_headers_as_written(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("row_id,1139490,41663,41663\n007_5,0.1,0.2,0.3\n")
    frame = read_table(path)
    assert list(frame.columns) == ["row_id", "1139490", "41663", "41663"]
    assert frame["row_id"].tolist() == ["007_5"]  # not the integer 7
    assert errors_of(frame) == ["duplicated column names: '41663'"]


def write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def test_cli_scores_a_valid_submission_with_the_metric_named(
    submission, solution, tmp_path, capsys
):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    args = ["score", "--solution", write(solution, tmp_path / "labels.csv")]
    args += ["--submission", write(submission, tmp_path / "sub.csv")]
    assert main(args) == 0
    expected = sklearn_metrics.roc_auc_score(
        solution[CODES].values, submission[CODES].values, average="macro"
    )
    assert (
        capsys.readouterr().out
        == f"macro_roc_auc = {expected:.6f} (6 rows, 4 of 4 classes scored)\n"
    )
    assert main([*args, "--config", "birdclef2023"]) == 0
    assert capsys.readouterr().out.startswith("padded_cmap = ")


def test_cli_lists_every_problem_and_exits_2(submission, solution, tmp_path, capsys):
    submission.loc[0, "asbfly"] = np.nan
    broken = submission.drop(index=3)[["row_id", "1139490", "asbfly", "41663", "zitcis1"]]
    args = ["score", "--solution", write(solution, tmp_path / "labels.csv")]
    args += ["--submission", write(broken, tmp_path / "sub.csv")]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "sub.csv is not a valid submission" in captured.err
    assert "column 2 is '1139490', expected 'asbfly'" in captured.err
    assert "1 of the solution's 6 row ids missing: 'soundscape_2_5'" in captured.err
    assert "NaN or infinite: 1 cell in 1 column ('asbfly')" in captured.err


def test_cli_checks_columns_against_the_sample_submission(submission, solution, tmp_path, capsys):
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("row_id," + ",".join([*CODES, "newcls"]) + "\n")
    args = ["score", "--solution", write(solution, tmp_path / "labels.csv")]
    args += ["--submission", write(submission, tmp_path / "sub.csv")]
    assert main([*args, "--sample-submission", str(sample)]) == 2
    assert "1 class column of the sample submission missing: 'newcls'" in capsys.readouterr().err
