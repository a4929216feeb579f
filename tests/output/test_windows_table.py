"""Per-window tables (for pseudo-labelling archives): beside or instead of the submission."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from birdinfer import predict_frame, windows_frame, write_windows
from birdinfer.cli import main
from birdinfer.config import from_dict
from birdinfer.demo import write_soundscapes
from birdinfer.errors import ConfigError
from birdinfer.output import read_windows_table, write_run_windows
from birdinfer.results import FileResult
from birdinfer.runner import run
from birdinfer.scorer import Ensemble
from tests.helpers import DEMO_CODES

KEYS = ["file", "stem", "row_id", "start_seconds", "end_seconds"]


@pytest.fixture(scope="module")
def short_files(tmp_path_factory) -> Path:
    """Two 12 s synthetic soundscapes: 3 windows each, the last one partial."""
    folder = tmp_path_factory.mktemp("short")
    write_soundscapes(folder, 2, seed=77, seconds=12.0, fmt="ogg")
    return folder


def demo_config(input_dir: Path, **output) -> object:
    return from_dict(
        {
            "input_dir": str(input_dir),
            "models": ["builtin:demo"],
            "output": {"progress": False, **output},
        }
    )


def test_windows_frame_gives_file_spans_and_scores_in_column_order():
    scores = np.arange(5 * 3, dtype=np.float32).reshape(5, 3) / 20
    files = [
        FileResult(Path("/a/x1.ogg"), ["x1_5", "x1_10", "x1_15"], scores[:3]),
        FileResult(Path("/a/b/y2.ogg"), ["y2_5", "y2_10"], scores[3:]),
    ]
    frame = windows_frame(files, ["c1", "41663", "c3"], window_seconds=5.0)
    assert list(frame.columns) == [*KEYS, "c1", "41663", "c3"]
    assert frame["file"].tolist() == ["/a/x1.ogg"] * 3 + ["/a/b/y2.ogg"] * 2
    assert frame["stem"].tolist() == ["x1"] * 3 + ["y2"] * 2
    assert frame["start_seconds"].tolist() == [0.0, 5.0, 10.0, 0.0, 5.0]
    assert frame["end_seconds"].tolist() == [5.0, 10.0, 15.0, 5.0, 10.0]
    np.testing.assert_array_equal(frame[["c1", "41663", "c3"]].to_numpy(), scores)


def test_an_empty_run_gives_an_empty_table_with_the_columns():
    frame = windows_frame([], ["a", "b"], 5.0)
    assert list(frame.columns) == [*KEYS, "a", "b"] and len(frame) == 0


def test_the_table_sits_beside_the_submission_with_the_same_scores(short_files, tmp_path):
    config = demo_config(
        short_files, submission=str(tmp_path / "sub.csv"), windows=str(tmp_path / "w.csv")
    )
    result = run(config)
    table = read_windows_table(tmp_path / "w.csv")
    assert result.windows_path == tmp_path / "w.csv"
    assert list(table.columns) == [*KEYS, *DEMO_CODES]
    assert table["row_id"].tolist() == result.submission["row_id"].tolist()
    assert sorted(set(table["end_seconds"])) == [5.0, 10.0, 15.0]
    assert (
        table["row_id"] == table["stem"] + "_" + table["end_seconds"].astype(int).astype(str)
    ).all()
    np.testing.assert_allclose(
        table[DEMO_CODES].to_numpy(), result.submission[DEMO_CODES].to_numpy(), rtol=1e-6
    )
    report = json.loads((tmp_path / "sub_report.json").read_text())
    assert report["windows_table"] == str(tmp_path / "w.csv")


def test_parquet_table_instead_of_the_submission(short_files, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    out = tmp_path / "pseudo" / "windows.parquet"
    code = main(
        ["infer", "--input", str(short_files), "--model", "builtin:demo", "--windows", str(out)]
        + ["--set", "output.submission=null", "--no-progress", "-q"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert f"windows: {out} (6 rows x 7 classes)" in printed and "submission:" not in printed
    table = pd.read_parquet(out)
    assert list(table.columns) == [*KEYS, *DEMO_CODES] and len(table) == 6
    assert table[DEMO_CODES].dtypes.unique().tolist() == [np.dtype("float32")]
    assert not (tmp_path / "pseudo" / "submission.csv").exists()
    report = json.loads((tmp_path / "pseudo" / "windows_report.json").read_text())
    assert report["output"] is None and report["files_processed"] == 2


def test_predict_frame_matches_the_run_table(short_files, tmp_path):
    config = demo_config(short_files, submission=None, windows=str(tmp_path / "w.csv"))
    ensemble = Ensemble(config)
    table = read_windows_table(run(config, ensemble=ensemble).windows_path)
    first = sorted(short_files.glob("*.ogg"))[0]
    frame = predict_frame(ensemble, first)
    assert frame["file"].tolist() == [str(first)] * 3
    expected = table[table["stem"] == first.stem]
    assert frame["row_id"].tolist() == expected["row_id"].tolist()
    np.testing.assert_allclose(
        frame[DEMO_CODES].to_numpy(), expected[DEMO_CODES].to_numpy(), rtol=1e-5, atol=1e-6
    )


def test_files_the_deadline_left_unscored_stay_out_of_the_run_table(tmp_path):
    config = demo_config(tmp_path, submission=None, windows=str(tmp_path / "w.csv"))
    scored = FileResult(Path("a.ogg"), ["a_5"], np.full((1, 1), 0.7), member_scores={0: None})
    placeholder = FileResult(Path("b.ogg"), ["b_5", "b_10"], np.zeros((2, 1)))
    write_run_windows(config, [scored, placeholder], ["k"])
    table = read_windows_table(tmp_path / "w.csv")
    assert table["row_id"].tolist() == ["a_5"] and table["k"].tolist() == [0.7]


def test_no_output_at_all_is_refused_naming_both_keys():
    with pytest.raises(ConfigError, match=r"'output\.submission'.*output\.windows"):
        from_dict({"output": {"submission": None}})


def test_a_table_path_must_be_parquet_or_csv():
    with pytest.raises(ConfigError, match=r"'output\.windows'.*\.parquet or \.csv"):
        from_dict({"output": {"windows": "w.xlsx"}})


def test_parquet_without_pyarrow_is_refused_before_the_run(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"'output\.windows'.*pyarrow.*\.csv"):
        from_dict({"output": {"windows": "w.parquet"}})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_failed_write_keeps_the_previous_table(tmp_path, monkeypatch, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"w{suffix}"
    old = windows_frame([FileResult(Path("a.ogg"), ["a_5"], np.ones((1, 1)))], ["k"], 5.0)
    write_windows(old, path)
    before = path.read_bytes()

    def crash(self, handle, *args, **kwargs):
        handle.write(b"partial" if suffix == ".parquet" else "partial")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet" if suffix == ".parquet" else "to_csv", crash)
    with pytest.raises(OSError, match="disk full"):
        write_windows(old, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
