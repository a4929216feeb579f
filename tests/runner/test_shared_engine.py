"""One engine per process, fed by several tasks at once (birdinfer.runner.shared_engine)."""

import threading

import numpy as np
import pytest

from birdinfer.runner.shared_engine import SharedEngine
from birdinfer.scorer import Ensemble, StreamingEngine
from tests.helpers import make_config

ENGINE_THREADS = ("birdinfer-lane", "birdinfer-features")


def _engine_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(ENGINE_THREADS)]


@pytest.fixture(scope="module")
def ensemble(soundscape_dir, tiny_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("shared") / "s.csv"
    return Ensemble(make_config(soundscape_dir, tiny_onnx, out, inference={"workers": 2}))


def test_tasks_sharing_one_engine_get_what_each_would_get_alone(ensemble, soundscape_dir, tmp_path):
    files = sorted(soundscape_dir.iterdir())
    bad = tmp_path / "broken.ogg"
    bad.write_bytes(b"OggS not really")
    tasks = [files[0::3], [*files[1::3], bad], files[2::3]]
    alone = {r.path: r for r in StreamingEngine(ensemble, feature_workers=2).run(files).results}

    shared = SharedEngine(ensemble)
    outcomes: dict[int, object] = {}
    try:
        threads = [
            threading.Thread(target=lambda i=i, t=t: outcomes.update({i: shared.score(t)}))
            for i, t in enumerate(tasks)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        shared.close()

    for i, task in enumerate(tasks):
        good = [p for p in task if p != bad]
        results = outcomes[i].results
        assert [r.path for r in results] == good  # in the task's own order
        for result in results:
            assert result.row_ids == alone[result.path].row_ids
            np.testing.assert_array_equal(result.scores, alone[result.path].scores)
    # The broken file fails in its own task, and only there.
    assert [f.path for f in outcomes[1].failures] == [str(bad)]
    assert outcomes[0].failures == outcomes[2].failures == []
    assert _engine_threads() == []  # closing stopped the lane and the feature workers


def test_each_scored_file_reaches_its_tasks_callback(ensemble, soundscape_dir):
    files = sorted(soundscape_dir.iterdir())[:2]
    seen = []
    shared = SharedEngine(ensemble)
    try:
        outcome = shared.score(files, ["a", "b"], on_result=seen.append)
    finally:
        shared.close()
    assert [r.path for r in outcome.results] == files
    assert sorted(r.path for r in seen) == files  # as each finished
    assert [r.row_ids[0] for r in outcome.results] == ["a_5", "b_5"]  # the stems given


def test_a_failing_journal_write_fails_its_task_only(ensemble, soundscape_dir):
    files = sorted(soundscape_dir.iterdir())

    def broken_journal(result):
        raise OSError("disk full")

    shared = SharedEngine(ensemble)
    try:
        with pytest.raises(OSError, match="disk full"):
            shared.score(files[:1], on_result=broken_journal)
        assert [r.path for r in shared.score(files[1:2]).results] == files[1:2]  # still serving
    finally:
        shared.close()
    assert _engine_threads() == []


def test_a_lane_that_dies_fails_the_waiting_task_instead_of_hanging(ensemble, soundscape_dir):
    files = sorted(soundscape_dir.iterdir())
    shared = SharedEngine(ensemble)

    def bug(*args):
        raise RuntimeError("a bug in the lane")

    shared.engine._result = bug
    try:
        with pytest.raises(RuntimeError, match="a bug in the lane"):
            shared.score(files[:1])
        with pytest.raises(RuntimeError, match="not running"):
            shared.score(files[:1])
    finally:
        shared.close()
    assert _engine_threads() == []
