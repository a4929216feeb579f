"""Ctrl-C and SIGTERM stop a run within seconds, leave the previous output and the journal
intact, and leave no process behind (issue 12, point 6; issue 21, points 9 and 10).

A child `birdinfer` process scores a folder with slowed model calls (in its worker processes
too: see process_helpers); once it is scoring, it gets the signal: SIGINT to its whole process
group, as a terminal's Ctrl-C sends it, or SIGTERM to the process alone, as `kill` does. It must
exit with 130 (SIGINT) or 143 (SIGTERM) within a few seconds, with the previous submission
untouched, no temporary file beside it, and none of its processes still running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import write_tone
from tests.runner.process_helpers import (
    REPO,
    alive,
    child_env,
    descendants,
    kill_all,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("in")
    for i in range(12):
        write_tone(folder / f"rec{i:02d}.wav", 30.0, freq=300.0 + 100 * i)
    return folder


def _ignore_sigint() -> None:
    """As a job started from a background shell inherits it."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("executor", "sig", "inherited_ignore"),
    [
        ("engine", signal.SIGINT, False),
        ("engine", signal.SIGINT, True),
        ("engine", signal.SIGTERM, False),
        ("tasks", signal.SIGINT, False),
        ("tasks", signal.SIGTERM, False),
        ("processes", signal.SIGINT, False),
        ("processes", signal.SIGTERM, False),
        ("dask", signal.SIGINT, False),
        ("dask", signal.SIGTERM, False),
    ],
    ids=lambda v: getattr(v, "name", None) or (str(v) if not isinstance(v, bool) else None),
)
def test_a_signal_stops_the_run_and_keeps_the_previous_output(
    folder, tiny_onnx, tmp_path, executor, sig, inherited_ignore
):
    out = tmp_path / "out" / "submission.csv"
    out.parent.mkdir()
    out.write_text("row_id,previous\nkept_5,1\n")
    previous = out.read_bytes()
    marker = tmp_path / "scoring"
    env = child_env(tmp_path / "site", BIRDINFER_TEST_SLOW="0.2", BIRDINFER_TEST_MARKER=str(marker))
    args = ["--input", str(folder), "--model", str(tiny_onnx), "--output", str(out)]
    args += ["--executor", executor, "--batch-size", "4", "--no-progress", "-q"]
    if executor in ("tasks", "processes"):
        args += ["--executor-workers", "2", "--set", "executor.files_per_task=2"]
    if executor == "dask":
        pytest.importorskip("distributed")
        args += ["--local-workers", "1", "--set", "executor.files_per_task=2"]
    child = subprocess.Popen(
        [sys.executable, "-m", "birdinfer", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if inherited_ignore else os.setsid,
    )
    family: set[int] = set()
    try:
        assert wait_until(marker.exists, 120, child), "the child never started scoring"
        time.sleep(0.3)
        family = descendants(child.pid)
        sent = time.monotonic()
        if sig == signal.SIGINT:
            os.killpg(child.pid, sig)  # Ctrl-C: the whole foreground group
        else:
            child.send_signal(sig)
        _, stderr = child.communicate(timeout=30)
        stopped = time.monotonic() - sent
        assert wait_until(lambda: not alive(family), 5), f"left running: {alive(family)}"
    finally:
        kill_all(child, family)
    assert child.returncode == (130 if sig == signal.SIGINT else 143), stderr[-2000:]
    assert f"interrupted ({sig.name})" in stderr
    assert "Traceback" not in stderr, stderr[-2000:]
    assert stopped < 5.0, f"took {stopped:.1f} s to stop"
    assert out.read_bytes() == previous
    expected = ["submission.csv"] + (["submission.journal"] if executor != "engine" else [])
    assert sorted(p.name for p in out.parent.iterdir()) == expected
    if executor != "engine":
        assert (out.parent / "submission.journal" / "manifest.json").is_file()


def test_worker_processes_die_with_a_parent_killed_outright(folder, tiny_onnx, tmp_path):
    """SIGKILL (the OOM killer) runs no handler: the kernel ends the workers (PDEATHSIG)."""
    marker = tmp_path / "scoring"
    scratch = tmp_path / "tmp"  # a parent killed outright cannot remove its task folder
    scratch.mkdir()
    env = child_env(
        tmp_path / "site",
        BIRDINFER_TEST_SLOW="0.2",
        BIRDINFER_TEST_MARKER=str(marker),
        TMPDIR=str(scratch),
    )
    args = ["--input", str(folder), "--model", str(tiny_onnx), "--output", str(tmp_path / "s.csv")]
    args += ["--executor", "processes", "--executor-workers", "2", "--no-progress", "-q"]
    child = subprocess.Popen(
        [sys.executable, "-m", "birdinfer", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    family: set[int] = set()
    try:
        assert wait_until(marker.exists, 120, child), "the child never started scoring"
        family = descendants(child.pid)
        assert len(family) >= 2, "no worker processes to watch"
        child.kill()
        child.wait(timeout=10)
        assert wait_until(lambda: not alive(family), 5), f"left running: {alive(family)}"
    finally:
        kill_all(child, family)
