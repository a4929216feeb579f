"""The Kaggle notebook template, run as plain Python against a fake /kaggle tree."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import numpy as np
import pandas as pd
import pytest

from birdinfer.demo import DEMO_MODEL, DEMO_SPECIES, write_soundscapes
from birdinfer.kaggle.wheelhouse import TARGET_FILE, target_mismatch
from tests.helpers import REPO

NOTEBOOK = REPO / "submission" / "kaggle_notebook.py"
CODES = [s.code for s in DEMO_SPECIES]


def fake_kaggle(
    root: Path, test_files: int | None, train_files: int = 0, layout: str = "new"
) -> dict[str, str]:
    """A fake /kaggle under `root`: input/ holds the competition, a models dataset and a wheels
    dataset, in Kaggle's newer layout (competitions/<slug>, datasets/<owner>/<slug>) or the old
    one (input/<slug>); test_files None: no test_soundscapes/ at all. Only the input root,
    working/ and the edition are given to the notebook: it finds the rest itself."""
    old = layout == "old"
    competition = root / "input" / ("" if old else "competitions") / "birdclef-2026"
    datasets = root / "input" / ("" if old else "datasets/someone")
    columns = list(np.random.default_rng(4).permutation(CODES))  # not the model's order
    sample = pd.DataFrame(0.0, index=range(3), columns=columns)
    sample.insert(0, "row_id", [f"soundscape_1_{e}" for e in (5, 10, 15)])
    competition.mkdir(parents=True)
    sample.to_csv(competition / "sample_submission.csv", index=False)
    taxonomy = pd.DataFrame(
        {
            "primary_label": CODES,
            "common_name": [s.name for s in DEMO_SPECIES],
            "class_name": "Aves",
        }
    )
    taxonomy.to_csv(competition / "taxonomy.csv", index=False)
    if test_files is not None:
        (competition / "test_soundscapes").mkdir()
        write_soundscapes(competition / "test_soundscapes", test_files, seed=31, seconds=10.0)
    if train_files:
        write_soundscapes(competition / "train_soundscapes", train_files, seed=32, seconds=5.0)
    models = datasets / "birdinfer-models"
    models.mkdir(parents=True)
    shutil.copy(DEMO_MODEL, models / "effb0_demo.onnx")
    (datasets / "birdinfer-wheels").mkdir()
    (root / "working").mkdir()
    (root / "tmp").mkdir()
    return {
        "BIRDINFER_INPUT": str(root / "input"),
        "BIRDINFER_WORKING": str(root / "working"),
        "BIRDINFER_CONFIG": "birdclef2026",
        "TMPDIR": str(root / "tmp"),
    }


def run_notebook(env: dict[str, str], cwd: Path, *flags: str, ok: bool = True):
    done = subprocess.run(
        [sys.executable, *flags, str(NOTEBOOK)],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode == 0) == ok, done.stderr[-3000:]
    return done


def competition_of(tmp_path: Path) -> Path:
    return next((tmp_path / "input").rglob("sample_submission.csv")).parent


def header_only(tmp_path: Path) -> bool:
    header = (competition_of(tmp_path) / "sample_submission.csv").read_text().splitlines()[0]
    return (tmp_path / "working" / "submission.csv").read_text().strip() == header


needs_demo = pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="demo model not built")


@needs_demo
@pytest.mark.parametrize("layout", ["new", "old"])
def test_notebook_finds_its_inputs_and_writes_a_valid_submission_in_the_sample_order(
    tmp_path, layout
):
    env = fake_kaggle(tmp_path, test_files=2, layout=layout)
    done = run_notebook(env, tmp_path)
    sample_columns = pd.read_csv(
        competition_of(tmp_path) / "sample_submission.csv", nrows=0, dtype=str
    ).columns.tolist()
    submission = pd.read_csv(tmp_path / "working" / "submission.csv", dtype={"row_id": str})
    assert submission.columns.tolist() == sample_columns
    assert submission["row_id"].tolist() == [
        f"soundscape_{31000 + i}_{end}" for i in range(2) for end in (5, 10)
    ]
    values = submission.iloc[:, 1:]
    assert all(pd.api.types.is_float_dtype(t) for t in values.dtypes)
    assert ((values >= 0) & (values <= 1)).all().all() and values.to_numpy().std() > 0.01
    report = json.loads((tmp_path / "working" / "submission_report.json").read_text())
    assert report["time_guard"]["enabled"] is True
    assert f"competition data: {competition_of(tmp_path)}" in done.stdout
    assert "effb0_demo.onnx" in done.stdout
    assert "time guard: on, 90 min from the first cell" in done.stdout
    assert "files: 2 processed (4 windows)" in done.stdout and "WARNING" not in done.stdout


@needs_demo
def test_an_empty_test_folder_gives_a_header_only_submission(tmp_path):
    run_notebook(fake_kaggle(tmp_path, test_files=0), tmp_path)
    assert header_only(tmp_path)


@needs_demo
def test_a_missing_test_folder_gives_a_header_only_submission_with_a_warning(tmp_path):
    done = run_notebook(fake_kaggle(tmp_path, test_files=None), tmp_path)
    assert header_only(tmp_path)
    assert "test_soundscapes does not exist: scored as an empty test folder" in done.stdout


@needs_demo
def test_the_save_run_scores_a_few_train_soundscapes_and_says_so(tmp_path):
    env = fake_kaggle(tmp_path, test_files=0, train_files=3)
    done = run_notebook({**env, "BIRDINFER_FALLBACK_FILES": "2"}, tmp_path)
    submission = pd.read_csv(tmp_path / "working" / "submission.csv", dtype={"row_id": str})
    assert submission["row_id"].tolist() == ["soundscape_32000_5", "soundscape_32001_5"]
    train = competition_of(tmp_path) / "train_soundscapes"
    assert (
        f"when test_soundscapes/ is empty (the save run): scores 2 files of {train}" in done.stdout
    )
    assert "scored files from " in done.stdout and "birdinfer_fallback" in done.stdout


@needs_demo
def test_a_spent_budget_gives_placeholders_and_says_how_many(tmp_path):
    """A budget shorter than the start-up: the clock runs from the first cell, so nothing is
    scored, every row is still written, and the summary opens with a warning."""
    env = fake_kaggle(tmp_path, test_files=2)
    done = run_notebook({**env, "BIRDINFER_BUDGET_MINUTES": "0.01"}, tmp_path)
    assert "WARNING: 2 of 2 files (4 of 4 rows) are placeholders, not scores" in done.stdout
    assert "the time budget ran out" in done.stdout
    submission = pd.read_csv(tmp_path / "working" / "submission.csv", dtype={"row_id": str})
    assert len(submission) == 4 and (submission.iloc[:, 1:] == 0.0).all().all()


def test_a_wheelhouse_for_another_python_is_named_before_pip_runs(tmp_path):
    """Run with -I -S (no PYTHONPATH, no site-packages: birdinfer is not importable, as on a fresh
    Kaggle image); the install cell needs the standard library only."""
    env = fake_kaggle(tmp_path, test_files=0) if DEMO_MODEL.is_file() else {}
    wheels = tmp_path / "input" / "datasets" / "someone" / "birdinfer-wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    (wheels / "birdinfer-0.1-py3-none-any.whl").write_text("x")
    other = "3.10" if sys.version_info[:2] != (3, 10) else "3.11"
    (wheels / TARGET_FILE).write_text(json.dumps({"python": [other]}))
    env = {**env, "BIRDINFER_INPUT": str(tmp_path / "input")}
    done = run_notebook(env, tmp_path, "-I", "-S", ok=False)
    here = "{}.{}".format(*sys.version_info[:2])
    assert target_mismatch(wheels, sys.version_info[:2]) in done.stderr  # the library's words
    assert f"--python-version {here}" in done.stderr and "installing" not in done.stdout


def test_a_missing_wheelhouse_lists_what_is_mounted(tmp_path):
    (tmp_path / "input" / "competitions" / "birdclef-2026").mkdir(parents=True)
    env = {"BIRDINFER_INPUT": str(tmp_path / "input")}
    done = run_notebook(env, tmp_path, "-I", "-S", ok=False)
    assert "no birdinfer-*.whl in any folder under" in done.stderr
    assert "competitions/birdclef-2026" in done.stderr
    wrong = {**env, "BIRDINFER_WHEELS": str(tmp_path / "input" / "competitions")}
    done = run_notebook(wrong, tmp_path, "-I", "-S", ok=False)  # not pip's "Could not find"
    assert f"no birdinfer-*.whl in {tmp_path / 'input' / 'competitions'}" in done.stderr
    assert "or fix WHEELS" in done.stderr and "competitions/birdclef-2026" in done.stderr


def test_the_notebook_carries_kaggles_settings_internet_off_and_no_accelerator():
    metadata = json.loads(NOTEBOOK.with_suffix(".ipynb").read_text())["metadata"]
    assert metadata["kaggle"]["isInternetEnabled"] is False
    assert metadata["kaggle"]["accelerator"] == "none"
    assert metadata["kaggle"]["isGpuEnabled"] is False
    assert metadata["kernelspec"]["name"] == "python3"


def test_the_first_code_cell_holds_the_settings_a_user_changes():
    first = next(c for c in jupytext.read(NOTEBOOK).cells if c.cell_type == "code").source
    for name in ("EDITION", "BUDGET_MINUTES", "MODELS", "STARTED = time.monotonic()"):
        assert name in first


def cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_the_ipynb_is_what_jupytext_makes_of_its_py_twin(tmp_path):
    """The same cells, and the very bytes that `jupytext --update --to ipynb` writes (--update
    keeps the cell ids and the kernelspec of the committed notebook)."""
    ipynb = NOTEBOOK.with_suffix(".ipynb")
    twin = cells(jupytext.read(NOTEBOOK))
    assert cells(jupytext.read(ipynb)) == twin
    assert sum(kind == "code" for kind, _ in twin) >= 3
    for path in (NOTEBOOK, ipynb):
        shutil.copy(path, tmp_path / path.name)
    update = [sys.executable, "-m", "jupytext", "--update", "--to", "ipynb", "-q"]
    subprocess.run([*update, str(tmp_path / NOTEBOOK.name)], check=True, capture_output=True)
    assert (tmp_path / ipynb.name).read_bytes() == ipynb.read_bytes(), (
        "stale: run jupytext --update --to ipynb submission/kaggle_notebook.py"
    )
