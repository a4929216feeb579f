import logging

import pytest

from birdinfer.scorer.threads import cgroup_cpu_quota, plan_threads


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
    plan = plan_threads(cores=4)
    assert (plan.workers, plan.threads, plan.cores) == (4, 4, 4)


def test_explicit_values_are_kept():
    plan = plan_threads(workers=1, threads=2, cores=4)
    assert (plan.workers, plan.threads) == (1, 2)


def test_a_plan_above_the_cores_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="birdinfer.runner.plan"):
        plan = plan_threads(workers=2, threads=8, cores=2)
    assert plan.threads == 8
    assert "8 runtime threads exceed the 2 available cores" in caplog.text


def test_auto_executor_runs_processes_only_on_many_cores_with_files_to_feed_them():
    from birdinfer.runner.plan import choose_executor

    def chosen(cores, files=1000, guard=False, kind="auto", files_per_task=4):
        return choose_executor(kind, cores, files, files_per_task, guard)[0]

    assert [chosen(c) for c in (1, 2, 4, 7)] == ["engine"] * 4  # Kaggle's 4 vCPU: the engine
    assert [chosen(c) for c in (8, 16, 64)] == ["processes"] * 3
    assert chosen(16, guard=True) == "engine"  # the time guard needs the engine
    assert chosen(16, files=399) == "engine"  # too short a run to repay the start-up
    assert chosen(16, files=400) == "processes"
    assert chosen(16, files=400, files_per_task=101) == "engine"  # a process would get no task
    assert chosen(2, kind="processes") == "processes"  # an explicit kind is kept
    assert chosen(64, kind="engine") == "engine"
