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

from birdinfer.demo.synth import DEMO_SPECIES, write_soundscapes
from birdinfer.models.backends.base import BUILTIN_MODELS
from tests.helpers import REPO

NOTEBOOK = REPO / "submission" / "kaggle_notebook.py"
CODES = [s.code for s in DEMO_SPECIES]


def fake_kaggle(root: Path, test_files: int, unlabeled_files: int = 0) -> dict[str, str]:
    """/kaggle/input/{birdclef-2026, birdinfer-models} and /kaggle/working under `root`."""
    competition = root / "input" / "birdclef-2026"
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
    (competition / "test_soundscapes").mkdir()
    write_soundscapes(competition / "test_soundscapes", test_files, seed=31, seconds=10.0)
    if unlabeled_files:
        write_soundscapes(
            competition / "unlabeled_soundscapes", unlabeled_files, seed=32, seconds=5.0
        )
    models = root / "input" / "birdinfer-models"
    models.mkdir()
    shutil.copy(BUILTIN_MODELS["demo"], models / "effb0_demo.onnx")
    (root / "working").mkdir()
    (root / "tmp").mkdir()
    return {
        "BIRDINFER_WHEELS": str(root / "input" / "birdinfer-wheels"),
        "BIRDINFER_COMPETITION": str(competition),
        "BIRDINFER_MODELS": str(models),
        "BIRDINFER_WORKING": str(root / "working"),
        "BIRDINFER_CONFIG": "birdclef2026",
        "TMPDIR": str(root / "tmp"),
    }


def run_notebook(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, str(NOTEBOOK)],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.skipif(not BUILTIN_MODELS["demo"].is_file(), reason="demo model not built yet")
def test_notebook_writes_a_valid_submission_in_the_sample_order(tmp_path):
    env = fake_kaggle(tmp_path, test_files=2)
    done = run_notebook(env, tmp_path)
    sample_columns = pd.read_csv(
        Path(env["BIRDINFER_COMPETITION"]) / "sample_submission.csv", nrows=0, dtype=str
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
    assert "time guard: on" in done.stdout and "files: 2 processed (4 windows)" in done.stdout


@pytest.mark.skipif(not BUILTIN_MODELS["demo"].is_file(), reason="demo model not built yet")
def test_an_empty_test_folder_gives_a_header_only_submission(tmp_path):
    env = fake_kaggle(tmp_path, test_files=0)
    run_notebook(env, tmp_path)
    header = (Path(env["BIRDINFER_COMPETITION"]) / "sample_submission.csv").read_text()
    written = (tmp_path / "working" / "submission.csv").read_text()
    assert written.strip() == header.splitlines()[0]


@pytest.mark.skipif(not BUILTIN_MODELS["demo"].is_file(), reason="demo model not built yet")
def test_an_empty_test_folder_falls_back_to_a_few_unlabeled_soundscapes(tmp_path):
    env = fake_kaggle(tmp_path, test_files=0, unlabeled_files=3)
    run_notebook({**env, "BIRDINFER_FALLBACK_FILES": "2"}, tmp_path)
    submission = pd.read_csv(tmp_path / "working" / "submission.csv", dtype={"row_id": str})
    assert submission["row_id"].tolist() == ["soundscape_32000_5", "soundscape_32001_5"]


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
