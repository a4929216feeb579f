"""Helpers for tests that run birdinfer in child processes and act on them mid-run (signals,
killed workers): a `sitecustomize` that every Python process started with `child_env`'s
PYTHONPATH imports (worker processes too, which a patch in the parent never reaches), and the
bookkeeping that leaves no process behind when a test fails."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SITECUSTOMIZE = """
import multiprocessing, os, signal, time
from pathlib import Path

if os.environ.get("BIRDINFER_TEST_SLOW"):  # slow model calls, a marker once scoring starts
    from birdinfer.scorer import ensemble

    _real_outputs = ensemble.Ensemble.member_outputs

    def _slow(self, index, features):
        Path(os.environ["BIRDINFER_TEST_MARKER"]).touch()
        time.sleep(float(os.environ["BIRDINFER_TEST_SLOW"]))
        return _real_outputs(self, index, features)

    ensemble.Ensemble.member_outputs = _slow

if os.environ.get("BIRDINFER_TEST_KILL"):  # a worker process dies (as the OOM killer does)
    from birdinfer.scorer import streaming

    _real_produce = streaming.StreamingEngine._produce

    def _produce(self, index, path, out):
        once = os.environ.get("BIRDINFER_TEST_KILL_ONCE")  # a file: the first worker only
        if os.environ["BIRDINFER_TEST_KILL"] in Path(path).name and multiprocessing.parent_process():
            if once is None or not Path(once).exists():
                if once is not None:
                    Path(once).touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return _real_produce(self, index, path, out)

    streaming.StreamingEngine._produce = _produce
"""


def child_env(folder: Path, **variables: str) -> dict[str, str]:
    """os.environ with the test sitecustomize (written to `folder`) and this checkout first on
    PYTHONPATH, and `variables` set (BIRDINFER_TEST_SLOW, _MARKER, _KILL, _KILL_ONCE)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    paths = [str(folder), str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **variables}


def descendants(pid: int) -> set[int]:
    psutil = pytest.importorskip("psutil")
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie has ended)."""
    psutil = pytest.importorskip("psutil")
    running = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.add(pid)
        except psutil.NoSuchProcess:
            pass
    return running


def wait_until(condition, seconds: float, child: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        if child is not None and child.poll() is not None:
            return condition()
        time.sleep(0.05)
    return condition()


def kill_all(child: subprocess.Popen, others: set[int]) -> None:
    """Leave nothing running, whatever the test's outcome."""
    for pid in {child.pid, *others}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if child.poll() is None:
        child.wait(timeout=10)
