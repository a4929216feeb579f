import numpy as np
import pandas as pd
import pytest

from birdinfer.errors import SubmissionError
from birdinfer.output import build_submission, column_order, read_class_columns
from birdinfer.output.csv_table import write_csv_atomic


def test_class_codes_that_look_like_integers_stay_strings(tmp_path):
    path = tmp_path / "sample_submission.csv"
    path.write_text("row_id,1139490,41663,0042,abcde\nsoundscape_1_5,0.1,0.2,0.3,0.4\n")
    assert read_class_columns(path) == ["1139490", "41663", "0042", "abcde"]


def test_sample_submission_must_start_with_row_id(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("id,a,b\n")
    with pytest.raises(SubmissionError, match="row_id"):
        read_class_columns(path)


def test_column_order_follows_the_sample_submission():
    order = column_order(["a", "b", "c", "41663"], ["41663", "a", "c"], "m.onnx")
    assert order.tolist() == [3, 0, 2]


def test_missing_classes_are_named():
    with pytest.raises(SubmissionError, match=r"m\.onnx.*lacks 2 .*: x, y"):
        column_order(["a", "b"], ["a", "x", "y"], "m.onnx")


def test_build_submission_puts_row_id_first():
    frame = build_submission(["s_5", "s_10"], np.array([[0.1, 0.2], [0.3, 0.4]]), ["b", "a"])
    assert list(frame.columns) == ["row_id", "b", "a"]
    assert frame["row_id"].tolist() == ["s_5", "s_10"]


def test_written_csv_reads_back_with_the_same_columns_and_values(tmp_path):
    scores = np.random.default_rng(0).random((3, 3)).astype(np.float32)
    frame = build_submission(["x_5", "x_10", "x_15"], scores, ["1139490", "41663", "abc"])
    path = write_csv_atomic(frame, tmp_path / "out" / "submission.csv")
    back = pd.read_csv(path, dtype={"row_id": str})
    assert list(back.columns) == ["row_id", "1139490", "41663", "abc"]
    np.testing.assert_allclose(back.iloc[:, 1:].to_numpy(), scores, rtol=1e-6)
    assert all(pd.api.types.is_float_dtype(back[c]) for c in back.columns[1:])


def test_a_crash_while_writing_leaves_the_old_file(tmp_path):
    path = tmp_path / "submission.csv"
    path.write_text("old contents\n")

    class Exploding(pd.DataFrame):
        def to_csv(self, handle, **kwargs):
            handle.write("row_id,half")
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_csv_atomic(Exploding({"row_id": ["a"]}), path)
    assert path.read_text() == "old contents\n"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
