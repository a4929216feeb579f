"""A worker process killed mid-run (as the OOM killer does) costs the run only its own files
(issue 21, point 8): they are scored again on a new worker, and a file that kills two workers
is skipped, named, while every other file is scored as the engine scores it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from birdinfer.runner import run
from tests.helpers import make_config, write_tone
from tests.runner.process_helpers import child_env

pytestmark = pytest.mark.slow  # three pools of worker processes start, each loading the model


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("in")
    for i in range(6):
        write_tone(folder / f"good{i}.wav", 7.0, freq=400.0 + 300 * i)
    write_tone(folder / "killer.wav", 7.0, freq=5000.0)
    return folder


@pytest.fixture(scope="module")
def engine_rows(folder, tiny_onnx, tmp_path_factory):
    """The streaming engine's rows for every file: what the retried files must get."""
    out = tmp_path_factory.mktemp("engine") / "submission.csv"
    return run(make_config(folder, tiny_onnx, out)).submission.set_index("row_id")


def _processes_run(folder, model, tmp_path, monkeypatch, **variables):
    env = child_env(tmp_path / "site", **variables)
    for name in ("PYTHONPATH", *variables):  # what the spawned workers start with
        monkeypatch.setenv(name, env[name])
    executor = {"kind": "processes", "workers": 2, "files_per_task": 2}
    return run(make_config(folder, model, tmp_path / "out" / "submission.csv", executor=executor))


def test_a_file_that_kills_two_workers_is_skipped_and_the_others_are_scored(
    folder, tiny_onnx, engine_rows, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING)
    result = _processes_run(folder, tiny_onnx, tmp_path, monkeypatch, BIRDINFER_TEST_KILL="killer")
    assert [(Path(f.path).name, f.reason) for f in result.failures] == [
        ("killer.wav", "its worker process died twice (killed by signal 9; killed by signal 9)")
    ]
    scored = result.submission.set_index("row_id")
    good = [r for r in engine_rows.index if r.startswith("good")]
    assert sorted(r.path.name for r in result.files if r.member_scores) == [
        f"good{i}.wav" for i in range(6)
    ]
    assert (scored.loc[good] - engine_rows.loc[good]).abs().max().max() < 1e-6
    assert any("killer.wav" in r.getMessage() and "died" in r.getMessage() for r in caplog.records)


def test_a_worker_killed_once_costs_nothing(folder, tiny_onnx, engine_rows, tmp_path, monkeypatch):
    once = tmp_path / "killed-once"
    result = _processes_run(
        folder,
        tiny_onnx,
        tmp_path,
        monkeypatch,
        BIRDINFER_TEST_KILL="killer",
        BIRDINFER_TEST_KILL_ONCE=str(once),
    )
    assert once.exists(), "no worker was killed"
    assert result.failures == []
    scored = result.submission.set_index("row_id")
    assert (scored - engine_rows.loc[scored.index]).abs().max().max() < 1e-6
    assert len(scored) == len(engine_rows)
