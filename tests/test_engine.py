"""The streaming engine and the time guard."""

import json
import threading
import time

import numpy as np
import pytest
from conftest import make_config

from birdinfer.config import BudgetConfig
from birdinfer.demo.synth import write_soundscapes
from birdinfer.inference.ensemble import Ensemble
from birdinfer.inference.postprocess import percentile_ranks
from birdinfer.inference.run import run

pytestmark = pytest.mark.slow


class SpyBackend:
    """Wraps a backend: records batch sizes, optionally slows each call down."""

    def __init__(self, inner, delay: float = 0.0):
        self.inner, self.delay = inner, delay
        self.path, self.card, self.threads = inner.path, inner.card, inner.threads
        self.batches: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, batch):
        with self._lock:
            self.batches.append(len(batch))
        time.sleep(self.delay)
        return self.inner(batch)


@pytest.fixture(scope="module")
def short_files(tmp_path_factory):
    """Twelve 3 s soundscapes: one window each."""
    folder = tmp_path_factory.mktemp("short")
    write_soundscapes(folder, 12, seed=40, seconds=3.0, fmt="wav")
    return folder


def spied_pipeline(config, delays=(0.0,)):
    ensemble = Ensemble(config)
    for member, delay in zip(ensemble.members, delays, strict=False):
        member.backend = SpyBackend(member.backend, delay)
    return ensemble


def test_windows_of_several_files_share_a_batch(short_files, tiny_onnx, tmp_path):
    config = make_config(
        short_files, tiny_onnx, tmp_path / "s.csv", inference={"batch_size": 4, "workers": 2}
    )
    ensemble = spied_pipeline(config, delays=(0.05,))  # a slow model lets the queue fill up
    result = run(config, ensemble)
    assert len(result.submission) == 12
    assert max(ensemble.members[0].backend.batches) == 4  # 4 one-window files in one call


def test_queue_bounds_how_far_decoding_runs_ahead(short_files, tiny_onnx, tmp_path):
    config = make_config(
        short_files,
        tiny_onnx,
        tmp_path / "s.csv",
        inference={"batch_size": 1, "workers": 2, "queue_windows": 2},
    )
    ensemble = spied_pipeline(config, delays=(0.03,))
    featurized, scored, peak = [0], ensemble.members[0].backend.batches, [0]
    features = ensemble.features

    def counting_features(windows):
        featurized[0] += len(windows)
        peak[0] = max(peak[0], featurized[0] - len(scored))
        return features(windows)

    ensemble.features = counting_features
    run(config, ensemble)
    # in flight at most: the queue (2 chunks) + one chunk per feature worker + the one being scored
    assert peak[0] <= 2 + 2 + 1


def test_tiny_queue_and_odd_batch_do_not_change_results(soundscape_dir, tiny_onnx, tmp_path):
    base = run(make_config(soundscape_dir, tiny_onnx, tmp_path / "a.csv"))
    odd = run(
        make_config(
            soundscape_dir,
            tiny_onnx,
            tmp_path / "b.csv",
            inference={"batch_size": 3, "queue_windows": 1, "workers": 2},
        )
    )
    np.testing.assert_allclose(
        odd.submission.iloc[:, 1:].to_numpy(), base.submission.iloc[:, 1:].to_numpy(), atol=1e-5
    )


def test_rank_mean_blends_percentile_ranks(soundscape_dir, tiny_onnx, tmp_path):
    from conftest import export_tiny_model

    other = export_tiny_model(tmp_path / "other", seed=3)
    singles = [
        run(make_config(soundscape_dir, m, tmp_path / f"{i}.csv")).submission.iloc[:, 1:].to_numpy()
        for i, m in enumerate([tiny_onnx, other])
    ]
    config = make_config(
        soundscape_dir, tiny_onnx, tmp_path / "r.csv", inference={"combine": "rank_mean"}
    )
    config = type(config)(
        **{**config.__dict__, "models": (config.models[0], type(config.models[0])(str(other), 3.0))}
    )
    blended = run(config).submission.iloc[:, 1:].to_numpy()
    expected = 0.25 * percentile_ranks(singles[0]) + 0.75 * percentile_ranks(singles[1])
    np.testing.assert_allclose(blended, expected, atol=1e-6)


def test_percentile_ranks_hand_computed():
    scores = np.array([[0.1, 5.0], [0.9, 1.0], [0.5, 3.0], [0.7, 2.0]])
    np.testing.assert_allclose(
        percentile_ranks(scores), [[0.25, 1.0], [1.0, 0.25], [0.5, 0.75], [0.75, 0.5]]
    )


class FakeClock:
    """Budget time advances 10 s per window the first member has scored (one per file here),
    however fast or slow the machine really is."""

    def __init__(self, ensemble):
        self.ensemble = ensemble

    def __call__(self):
        return 1000.0 + 10.0 * self.ensemble.timer.member_windows[0]


def test_time_guard_drops_members_then_fills_the_rest_in_time(short_files, tiny_onnx, tmp_path):
    config = make_config(
        short_files,
        tiny_onnx,
        tmp_path / "s.csv",
        inference={"batch_size": 1, "workers": 1, "queue_windows": 1},
    )
    second = type(config.models[0])(str(tiny_onnx.with_suffix(".xml")), 1.0)
    config = type(config)(
        **{
            **config.__dict__,
            "models": (config.models[0], second),
            "budget": BudgetConfig(
                enabled=True, minutes=80 / 60, reserve_minutes=0.0, safety=1.2, calibration_files=3
            ),
        }
    )
    ensemble = spied_pipeline(config, delays=(0.0, 0.05))  # member 2 is the slow, low-priority one
    result = run(config, ensemble, clock=FakeClock(ensemble))

    assert len(result.submission) == 12  # complete: every file has its row
    report = json.loads(result.report_path.read_text())["time_guard"]
    actions = [d["action"] for d in report["decisions"]]
    assert actions[0] == "plan" and report["decisions"][0]["files_done"] == 3
    assert report["decisions"][0]["members"] == [ensemble.members[0].name]
    assert "deadline" in actions
    members_used = [tuple(sorted(r.member_scores)) for r in result.files]
    assert members_used[0] == (0, 1)  # calibration files: the whole ensemble
    assert (0,) in members_used  # after the plan: the first member only
    placeholders = [r for r in result.files if not r.member_scores]
    assert placeholders and all((r.scores == 0.0).all() for r in placeholders)
    assert all(r.warnings == ["not scored: time budget exhausted"] for r in placeholders)


def test_guard_keeps_everyone_when_the_budget_is_ample(short_files, tiny_onnx, tmp_path):
    config = make_config(short_files, tiny_onnx, tmp_path / "s.csv")
    config = type(config)(**{**config.__dict__, "budget": BudgetConfig(enabled=True, minutes=60)})
    result = run(config)
    report = json.loads(result.report_path.read_text())["time_guard"]
    assert [d["action"] for d in report["decisions"]] == ["plan"]
    assert not report["deadline_reached"]
    assert all(sorted(r.member_scores) == [0] for r in result.files)
