"""Ctrl-C stops a run within seconds and leaves the previous output intact (issue 12, point 6).

A child `birdinfer` process scores a folder with slowed model calls; once it is scoring, it
gets SIGINT. It must exit with 130 within a few seconds, with the previous submission untouched
and no temporary file left beside it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import write_tone

pytestmark = pytest.mark.slow  # the tiny model is exported with torch
REPO = Path(__file__).resolve().parents[2]
CHILD = """
import sys, time
from pathlib import Path
from birdinfer.inference.ensemble import Ensemble

real = Ensemble.member_outputs

def slow(self, index, features):  # a slow model: the run is still scoring when SIGINT comes
    Path({marker!r}).touch()
    time.sleep(0.2)
    return real(self, index, features)

Ensemble.member_outputs = slow
from birdinfer.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigint_stops_the_run_and_keeps_the_previous_output(tiny_onnx, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(20):
        write_tone(folder / f"rec{i:02d}.wav", 30.0, freq=300.0 + 100 * i)
    out = tmp_path / "out" / "submission.csv"
    out.parent.mkdir()
    out.write_text("row_id,previous\nkept_5,1\n")
    previous = out.read_bytes()
    marker = tmp_path / "scoring"
    code = textwrap.dedent(CHILD.format(marker=str(marker)))
    args = ["--input", str(folder), "--model", str(tiny_onnx), "--output", str(out)]
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args, "--batch-size", "4", "--no-progress", "-q"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the child never started scoring"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=20)
        stopped = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr
    assert stopped < 5.0, f"took {stopped:.1f} s to stop"
    assert out.read_bytes() == previous
    assert sorted(p.name for p in out.parent.iterdir()) == ["submission.csv"]
