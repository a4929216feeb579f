"""The cores this process may use, and one engine's threads on them."""

import logging

import pytest

from birdinfer.scorer.threads import EngineThreads, cgroup_cpu_quota


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 cores: a second, partial core still helps
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
        ({"cpu.max": "garbage"}, None),
    ],
)
def test_cgroup_quota_v1_and_v2(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == expected


def test_default_plan_gives_each_stage_the_cores():
    plan = EngineThreads.for_cores(4)
    assert (plan.workers, plan.threads, plan.cores) == (4, 4, 4)


def test_explicit_values_are_kept():
    plan = EngineThreads.for_cores(4, workers=1, threads=2)
    assert (plan.workers, plan.threads) == (1, 2)


def test_a_plan_above_the_cores_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="birdinfer.scorer.threads"):
        plan = EngineThreads.for_cores(2, workers=2, threads=8)
    assert plan.threads == 8
    assert "8 runtime threads exceed the 2 available cores" in caplog.text
