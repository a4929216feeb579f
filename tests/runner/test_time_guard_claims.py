"""The time guard counts a file's decoded seconds, never its header's claim (issue 12, point 1):
a claim can only be wrong until the file is done, and then it is replaced."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from birdinfer.config import BudgetConfig
from birdinfer.results import FileResult
from birdinfer.runner import TimeGuard
from birdinfer.scorer.stage_timer import StageTimer


def guard(claims: list[float]) -> TimeGuard:
    members = [SimpleNamespace(name="only")]
    ensemble = SimpleNamespace(members=members, timer=StageTimer())
    # Many calibration files: no plan is made here, only the accounting is looked at.
    budget = BudgetConfig(enabled=True, calibration_files=100)
    return TimeGuard(ensemble, claims, budget, 90.0, clock=lambda: 0.0)


def scored(seconds: float) -> FileResult:
    rows = max(1, int(seconds // 5))
    return FileResult(
        Path("x.wav"),
        [f"x_{5 * (i + 1)}" for i in range(rows)],
        np.zeros((rows, 1)),
        audio_seconds=seconds,
    )


def test_a_done_file_counts_its_decoded_seconds():
    time_guard = guard([12.0, 3.0, 60.0])
    time_guard.on_file_done(1, scored(12.0))  # its header said 3 s of a 12 s stream
    assert (time_guard.done_audio, time_guard.total_audio) == (12.0, 84.0)


def test_a_failed_file_takes_its_claim_out_of_the_projection():
    time_guard = guard([12.0, 2_147_483.6, 60.0])  # a corrupt header under the cap's radar
    time_guard.on_file_done(1, None)
    assert (time_guard.done_audio, time_guard.total_audio) == (0.0, 72.0)
