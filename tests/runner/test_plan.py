"""The run's ExecutionPlan: decided once, each flag with one meaning on every path, travelling
to the workers, printed in the run report; settings a path cannot honour are refused."""

import json
import warnings

import pytest

from birdinfer.cli import main
from birdinfer.cli.infer import infer_overrides
from birdinfer.cli.main import build_parser as _parser
from birdinfer.config import load_config
from birdinfer.runner import ExecutionPlan, process_pool, resolve_plan, run
from birdinfer.runner.plan import choose_kind
from birdinfer.runner.worker import engine_threads
from birdinfer.scorer import EngineThreads
from tests.helpers import make_config


def test_auto_executor_runs_processes_only_on_many_cores_with_files_to_feed_them():
    def chosen(cores, files=1000, guard=False, kind="auto", files_per_task=4):
        return choose_kind(kind, cores, files, files_per_task, guard)[0]

    assert [chosen(c) for c in (1, 2, 4, 7)] == ["engine"] * 4  # Kaggle's 4 vCPU: the engine
    assert [chosen(c) for c in (8, 16, 64)] == ["processes"] * 3
    assert chosen(16, guard=True) == "engine"  # the time guard needs the engine
    assert chosen(16, files=399) == "engine"  # too short a run to repay the start-up
    assert chosen(16, files=400) == "processes"
    assert chosen(16, files=400, files_per_task=101) == "engine"  # a process would get no task
    assert chosen(2, kind="processes") == "processes"  # an explicit kind is kept
    assert chosen(64, kind="engine") == "engine"


def _config(tmp_path, yaml: str, *flags: str):
    """A config as `birdinfer infer --config FILE FLAGS` loads it."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml)
    args = _parser().parse_args(["infer", "--config", str(path), *flags])
    return load_config(args.config, infer_overrides(args))


def test_the_documented_workers_flag_with_a_yaml_task_pool_warns_of_nothing(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        config = _config(tmp_path, "executor: {kind: tasks}\n", "--workers", "3")
    assert config.inference.workers == 3 and config.executor.workers is None


def test_the_old_threads_kind_warns_of_its_own_name_only(tmp_path):
    with pytest.warns(FutureWarning) as caught:
        config = _config(tmp_path, "executor: {kind: threads}\n", "--workers", "3")
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "config value 'executor.kind: threads' is deprecated: use 'executor.kind: tasks'"
    ]
    assert config.executor.kind == "tasks" and config.inference.workers == 3


@pytest.mark.parametrize("kind", ["tasks", "processes", "dask"])
def test_workers_and_threads_reach_every_engine_of_every_executor(tmp_path, kind):
    config = make_config(
        tmp_path, "m.onnx", tmp_path / "s.csv",
        executor={"kind": kind}, inference={"workers": 1, "threads": 3},
    )  # fmt: skip
    plan = resolve_plan(config, files=1000, cores=8)
    assert plan.kind == kind and plan.engines
    assert {(e.workers, e.threads) for e in plan.engines} == {(1, 3)}


def test_workers_and_threads_reach_the_engines_auto_runs_in_processes(tmp_path):
    config = make_config(
        tmp_path, "m.onnx", tmp_path / "s.csv", inference={"workers": 2, "threads": 1}
    )
    plan = resolve_plan(config, files=1000, cores=16)
    assert plan.kind == "processes"
    assert {(e.workers, e.threads) for e in plan.engines} == {(2, 1)}


def test_an_external_dask_workers_engine_is_sized_by_its_own_cores_and_the_flags(tmp_path):
    config = make_config(
        tmp_path, "m.onnx", tmp_path / "s.csv",
        executor={"kind": "dask", "scheduler": "tcp://10.0.0.5:8786"}, inference={"threads": 2},
    )  # fmt: skip
    plan = resolve_plan(config, files=10)
    assert plan.engines == () and plan.journal == "parquet"
    assert plan.engine(cores=6) == EngineThreads(cores=6, workers=6, threads=2)


def test_a_worker_process_takes_its_own_groups_engine_from_the_plan(monkeypatch):
    small, large = EngineThreads(2, 2, 1), EngineThreads(4, 1, 4)
    plan = ExecutionPlan(
        kind="processes", why="test", cores=6, engines=(small, large), groups=((0, 1), (2, 3, 4, 5))
    )
    monkeypatch.setattr(process_pool, "_pinned", (2, 3, 4, 5))
    monkeypatch.setenv("BIRDINFER_WORKER_CORES", "1")  # no longer read by anything
    assert engine_threads(plan) == large
    monkeypatch.setattr(process_pool, "_pinned", (0, 1))
    assert engine_threads(plan) == small


@pytest.mark.parametrize(
    ("flags", "key"),
    [
        (["--executor", "engine", "--executor-workers", "2"], "executor.workers"),
        (["--executor", "dask", "--executor-workers", "2"], "executor.workers"),
        (["--executor", "tasks", "--budget-minutes", "5"], "budget.enabled"),
        (["--executor", "processes", "--budget-minutes", "5"], "budget.enabled"),
    ],
)
def test_a_flag_the_path_cannot_honour_is_refused(
    soundscape_dir, tiny_onnx, tmp_path, capsys, flags, key
):
    out = tmp_path / "s.csv"
    args = ["infer", "--input", str(soundscape_dir), "--model", str(tiny_onnx)]
    code = main([*args, "--output", str(out), "--no-progress", "-q", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: config key '{key}'"), err
    assert not out.exists()


def test_executor_workers_unused_under_auto_is_said_not_silent(tmp_path, caplog):
    config = make_config(tmp_path, "m.onnx", tmp_path / "s.csv", executor={"workers": 3})
    plan = resolve_plan(config, files=4, cores=2)
    assert plan.kind == "engine" and "executor.workers (3) unused" in plan.why
    assert "executor.workers is unused" in caplog.text
    quiet = resolve_plan(make_config(tmp_path, "m.onnx", tmp_path / "s.csv"), files=4, cores=2)
    assert "unused" not in quiet.why


def test_each_kind_names_what_runs_and_the_report_prints_the_plan(
    soundscape_dir, tiny_onnx, tmp_path
):
    reports = {}
    for kind in ("engine", "tasks"):
        out = tmp_path / kind / "s.csv"
        config = make_config(
            soundscape_dir, tiny_onnx, out,
            executor={"kind": kind, "files_per_task": 2}, inference={"workers": 1, "threads": 1},
        )  # fmt: skip
        result = run(config)
        reports[kind] = json.loads(result.report_path.read_text())
    engine, tasks = reports["engine"]["plan"], reports["tasks"]["plan"]
    assert reports["engine"]["executor"] == engine["executor"] == "engine"
    assert engine["task_threads"] == 0 and engine["journal"] is None
    assert reports["tasks"]["executor"] == tasks["executor"] == "tasks"
    assert tasks["task_threads"] >= 1 and tasks["journal"] == "npz"
    assert tasks["files_per_task"] == 2 and tasks["why"] == "executor.kind"
    for plan in (engine, tasks):
        assert plan["engines"] == [{"cores": plan["cores"], "workers": 1, "runtime_threads": 1}]
    assert reports["tasks"]["threads"]["workers"] == 1  # what the workers' engines ran


@pytest.mark.slow
def test_workers_and_threads_flags_reach_the_worker_processes(soundscape_dir, tiny_onnx, tmp_path):
    out = tmp_path / "s.csv"
    args = ["infer", "--input", str(soundscape_dir), "--model", str(tiny_onnx), "--output"]
    args += [str(out), "--executor", "processes", "--workers", "1", "--threads", "1", "-q"]
    assert main([*args, "--no-progress"]) == 0
    report = json.loads(out.with_name("s_report.json").read_text())
    ran = report["threads"]["engines"]
    assert ran and all((e["workers"], e["runtime_threads"]) == (1, 1) for e in ran.values())
    assert {(e["workers"], e["runtime_threads"]) for e in report["plan"]["engines"]} == {(1, 1)}
