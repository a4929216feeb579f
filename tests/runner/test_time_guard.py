"""The time guard: it plans from the first files, drops low-priority members when the budget is
short, fills what is left with placeholders at the deadline, and keeps everyone when it is ample."""

import dataclasses
import json

from birdinfer.config import BudgetConfig, ModelSpec
from birdinfer.runner import TimeGuard, run
from birdinfer.scorer import Ensemble
from tests.helpers import TEST_MEL, make_config, spied_ensemble, tiny_card, tiny_model


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
    ensemble = spied_ensemble(config, delays=(0.0, 0.05))  # member 2 is the slow, low-priority one
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


def test_a_members_cost_counts_its_own_front_end_unless_a_member_left_shares_it(
    short_files, tmp_path
):
    """Two members share one front end, a third has its own: dropping the third saves its front
    end too, dropping one of the pair saves only its model."""
    other_mel = dataclasses.replace(TEST_MEL, n_mels=32)
    paths = [
        tiny_model(tmp_path / "a", seed=1, openvino=False),
        tiny_model(tmp_path / "b", seed=2, openvino=False),
        tiny_model(tmp_path / "c", seed=3, card=tiny_card(mel=other_mel), openvino=False),
    ]
    config = make_config(short_files, paths[0], tmp_path / "s.csv")
    config = dataclasses.replace(config, models=tuple(ModelSpec(str(p)) for p in paths))
    ensemble = Ensemble(config)
    assert len(ensemble.frontends) == 2
    timer = ensemble.timer
    timer.windows = 100
    timer.seconds["decode"] = 1.0  # 0.01 s a row
    shared, own = ensemble.frontend_name(0), ensemble.frontend_name(2)
    assert ensemble.frontend_name(1) == shared != own
    timer.part_seconds.update({shared: 2.0, own: 5.0})
    timer.part_rows.update({shared: 100, own: 100})
    for i, seconds in enumerate((3.0, 4.0, 6.0)):
        timer.seconds[f"model {ensemble.members[i].name}"] = seconds
        timer.member_rows[i] = 100
    guard = TimeGuard(ensemble, [3.0] * 12, BudgetConfig(enabled=True), 10.0)
    assert abs(guard._cost((0, 1, 2)) - (0.01 + 0.02 + 0.05 + 0.03 + 0.04 + 0.06)) < 1e-12
    assert abs(guard._cost((0, 1)) - (0.01 + 0.02 + 0.03 + 0.04)) < 1e-12  # own front end saved
    assert abs(guard._cost((0, 2)) - (0.01 + 0.02 + 0.05 + 0.03 + 0.06)) < 1e-12  # shared kept
