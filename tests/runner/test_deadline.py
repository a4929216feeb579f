"""The budget is a wall: it counts from when the run (or the notebook) started, rows queued
before the deadline are not scored after it, and a spent budget reads as one, not as a fast run."""

import json

from birdinfer.config import BudgetConfig
from birdinfer.output import summary
from birdinfer.runner import run
from birdinfer.scorer import Ensemble
from tests.helpers import make_config


class WindowClock:
    """10 s of budget per window the first member has scored, from 1000 s."""

    def __init__(self, ensemble):
        self.ensemble = ensemble

    def __call__(self):
        return 1000.0 + 10.0 * self.ensemble.timer.member_windows[0]


def budget_config(files, model, tmp_path, seconds: float, **inference):
    config = make_config(files, model, tmp_path / "s.csv", inference=inference)
    budget = BudgetConfig(enabled=True, minutes=seconds / 60, reserve_minutes=0.0)
    return type(config)(**{**config.__dict__, "budget": budget})


def test_rows_already_queued_are_not_scored_after_the_deadline(short_files, tiny_onnx, tmp_path):
    # One window per file, one per batch, a deep queue the decoders fill ahead of the model.
    config = budget_config(
        short_files, tiny_onnx, tmp_path, 35.0, batch_size=1, workers=2, queue_windows=64
    )
    ensemble = Ensemble(config)
    result = run(config, ensemble, clock=WindowClock(ensemble))
    # 1030 s after 3 windows, 1040 s after the 4th: the deadline (1035 s) stops it there.
    assert ensemble.timer.member_windows[0] == 4
    assert sum(1 for r in result.files if r.placeholder is None) == 4
    assert len(result.submission) == 12  # every file still has its row


def test_the_budget_counts_from_the_start_it_is_given(short_files, tiny_onnx, tmp_path):
    """A notebook passes its first cell's clock reading: the install and the model loading
    count, so a budget already spent scores nothing and says so."""
    config = budget_config(short_files, tiny_onnx, tmp_path, 60.0)
    ensemble = Ensemble(config)
    result = run(config, ensemble, clock=lambda: 1000.0, started=1000.0 - 61.0)
    assert ensemble.timer.member_windows[0] == 0
    assert len(result.placeholders) == 12 and len(result.submission) == 12
    report = json.loads(result.report_path.read_text())
    assert report["time_guard"]["deadline_reached"] is True
    assert (report["placeholder_files"], report["placeholder_rows"]) == (12, 12)
    text = summary(result, 5.0)
    assert text.startswith(
        "WARNING: 12 of 12 files (12 of 12 rows) are placeholders, not scores: 12 files (12 rows):"
        " the time budget ran out"
    )
    assert "12 files, 12 rows of them placeholders" in text
    assert "0.0 min of scored audio" in text
    fresh = run(config, ensemble, clock=lambda: 1000.0)  # by default the run's own start counts
    assert not fresh.placeholders and "WARNING" not in summary(fresh, 5.0)
