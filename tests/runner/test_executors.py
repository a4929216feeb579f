"""Files mapped over an executor: a thread pool, and a Dask LocalCluster on loopback."""

import dataclasses
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from birdinfer.errors import ConfigError
from birdinfer.output import journal_path_for
from birdinfer.runner import client as executors
from birdinfer.runner import dask_cluster, run, worker
from birdinfer.scorer import available_cores
from tests.helpers import make_config, write_tone


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Sixteen 5-15 s recordings, each with its own tone."""
    folder = tmp_path_factory.mktemp("archive")
    for i in range(16):
        write_tone(folder / f"rec{i:02d}.flac", 5.0 + (i % 3) * 5.0, freq=300.0 + 200 * i)
    return folder


@pytest.fixture(scope="module")
def reference(archive, tiny_onnx, tmp_path_factory) -> bytes:
    """The streaming engine's submission: what every executor must reproduce byte for byte."""
    out = tmp_path_factory.mktemp("reference") / "submission.csv"
    run(make_config(archive, tiny_onnx, out))
    return out.read_bytes()


def mapped_config(archive, model, out, **executor):
    return make_config(archive, model, out, executor={"files_per_task": 3, **executor})


def test_thread_pool_file_map_matches_the_engine(archive, tiny_onnx, reference, tmp_path):
    out = tmp_path / "submission.csv"
    seen = []
    result = run(mapped_config(archive, tiny_onnx, out, kind="tasks"), on_file=seen.append)
    assert result.failures == [] and out.read_bytes() == reference
    assert sorted(r.path.name for r in seen) == sorted(p.name for p in archive.iterdir())
    # The workers' stage times reach the run report, as the engine's do.
    assert {"decode", "mel", "model tiny_cnn:tiny_model.onnx"} <= set(result.stage_seconds)
    assert min(result.stage_seconds[s] for s in ("decode", "mel")) > 0
    entries = list((journal_path_for(out) / "files").glob("*.npz"))
    assert len(entries) == 16


def test_any_executor_can_be_passed_in(archive, tiny_onnx, reference, tmp_path):
    out = tmp_path / "submission.csv"
    with ThreadPoolExecutor(3) as pool:
        run(mapped_config(archive, tiny_onnx, out), executor=pool)
    assert out.read_bytes() == reference


def test_a_task_that_fails_for_good_costs_only_its_files(archive, tiny_onnx, tmp_path, monkeypatch):
    real = worker.score_task

    def flaky(task):
        if task.files[0].endswith("rec03.flac"):  # the second task: rec03, rec04, rec05
            raise OSError("worker lost")
        return real(task)

    monkeypatch.setattr(executors, "score_task", flaky)
    result = run(mapped_config(archive, tiny_onnx, tmp_path / "s.csv", kind="tasks"))
    assert sorted(Path(f.path).name for f in result.failures) == [
        "rec03.flac",
        "rec04.flac",
        "rec05.flac",
    ]
    assert all(f.reason == "its task failed (OSError: worker lost)" for f in result.failures)
    assert len(result.files) == 13


def test_a_retried_task_takes_its_earlier_files_from_the_journal(
    archive, tiny_onnx, reference, tmp_path, monkeypatch
):
    """A retry scores only what its first try left; the client reads the first try's files
    back from their entries and the rest from the retry's outcome."""
    real = worker.score_task
    outcomes = []

    def retried(task):
        if task.files[0].endswith("rec03.flac"):  # the first try got as far as rec03
            real(dataclasses.replace(task, files=task.files[:1], stems=task.stems[:1]))
        outcome = real(task)
        outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(executors, "score_task", retried)
    out = tmp_path / "submission.csv"
    result = run(mapped_config(archive, tiny_onnx, out, kind="tasks"))
    assert result.failures == [] and out.read_bytes() == reference
    journaled = [Path(p).name for o in outcomes for p in o.already_journaled]
    assert journaled == ["rec03.flac"]
    assert sum(len(o.scored) for o in outcomes) == 15


def test_dask_without_dask_installed_is_a_config_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith("distributed"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with (
        pytest.raises(ConfigError, match=r"birdinfer\[dask\]"),
        dask_cluster.dask_executor(None, 1),
    ):
        pass


# --- Dask: a LocalCluster of two worker processes on loopback -------------------------------------


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


def test_dask_cluster_matches_the_local_run_and_loads_models_once_per_worker(
    cluster, archive, tiny_onnx, reference, tmp_path
):
    out = tmp_path / "submission.csv"
    config = mapped_config(
        archive, tiny_onnx, out, kind="dask", scheduler=cluster.scheduler.address
    )
    result = run(config)
    assert result.failures == [] and out.read_bytes() == reference
    # Six tasks of up to three files went to two processes, each of which loaded the model once.
    loads = cluster.run(worker.ensembles_built)
    assert sorted(loads.values()) == [1, 1]
    partitions = sorted((journal_path_for(out) / "files").glob("*.parquet"))
    assert len(partitions) == 16
    pandas = pytest.importorskip("pandas")
    table = pandas.concat(pandas.read_parquet(p) for p in partitions)
    assert len(table) == len(result.submission)


def test_dask_resume_skips_what_the_workers_journaled(cluster, archive, tiny_onnx, tmp_path):
    out = tmp_path / "submission.csv"
    config = mapped_config(
        archive, tiny_onnx, out, kind="dask", scheduler=cluster.scheduler.address
    )
    first = run(config)
    again = make_config(
        archive, tiny_onnx, out, output={"resume": True}, executor=config.executor.__dict__
    )
    resumed = run(again)
    assert resumed.resumed == 16
    assert resumed.submission.equals(first.submission)


def _slow_models(seconds: float):
    """Run inside each worker process: slow its model calls so a test can act mid-run."""
    from birdinfer.scorer import ensemble

    original = ensemble.Ensemble.member_scores

    def slow(self, *args, **kwargs):
        time.sleep(seconds)
        return original(self, *args, **kwargs)

    ensemble.Ensemble.member_scores = slow


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing(archive, tiny_onnx, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "submission.csv"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as local,
        distributed.Client(local) as client,
    ):
        client.run(_slow_models, 0.3)
        pids = client.run(os.getpid)
        config = make_config(
            archive,
            tiny_onnx,
            out,
            executor={"kind": "dask", "scheduler": local.scheduler_address, "files_per_task": 2},
        )
        outcome: dict = {}
        runner = threading.Thread(target=lambda: outcome.update(result=run(config)))
        runner.start()
        entries = journal_path_for(out) / "files"
        deadline = time.monotonic() + 120
        while len(list(entries.glob("*.parquet"))) < 3:
            assert runner.is_alive() and time.monotonic() < deadline, "no progress to interrupt"
            time.sleep(0.05)
        os.kill(sorted(pids.values())[0], signal.SIGKILL)
        done_at_kill = len(list(entries.glob("*.parquet")))
        runner.join(timeout=300)
        assert not runner.is_alive()
    assert done_at_kill < 16, "the run had finished before the worker was killed"
    result = outcome["result"]
    assert result.failures == [] and len(result.files) == 16
    assert out.read_bytes() == reference


def test_a_workers_engine_runs_on_the_workers_cores(cluster, monkeypatch):
    # On the loopback cluster each worker has 1 task thread, and so 1 core.
    assert cluster.submit(worker.own_cores, pure=False).result() == 1
    distributed = pytest.importorskip("distributed")

    class FakeWorker:
        class state:
            nthreads = 6
            total_resources: dict = {}

    monkeypatch.setattr(distributed, "get_worker", lambda: FakeWorker)
    assert worker.own_cores() == 6  # a Dask worker's thread count is its cores
    FakeWorker.state.total_resources = {"cores": 8}
    assert worker.own_cores() == 8  # unless it declares its cores as a resource
    monkeypatch.setattr(distributed, "get_worker", lambda: (_ for _ in ()).throw(ValueError()))
    assert worker.own_cores() == available_cores()  # not on a worker


def _quiet_settings() -> list:
    import dask.config

    return [dask.config.get(key) for key in dask_cluster.QUIET_LOCAL_CLUSTER]


def test_a_local_cluster_is_started_quiet_and_leaves_the_callers_config_alone():
    pytest.importorskip("distributed")
    before = _quiet_settings()
    cluster, client = dask_cluster.local_cluster(1, 1)
    try:
        quiet = list(dask_cluster.QUIET_LOCAL_CLUSTER.values())
        assert list(client.run(_quiet_settings).values()) == [quiet]  # the worker's
        assert _quiet_settings() == before != quiet  # this process's, as it was
    finally:
        client.close()
        cluster.close()


def test_cli_local_workers_starts_its_own_cluster(archive, tiny_onnx, reference, tmp_path):
    from birdinfer.cli import main

    out = tmp_path / "submission.csv"
    args = ["--input", str(archive), "--model", str(tiny_onnx), "--output", str(out)]
    code = main([*args, "--executor", "dask", "--local-workers", "2", "--no-progress", "-q"])
    assert code == 0 and out.read_bytes() == reference


def test_worker_processes_pinned_to_core_groups_match_the_engine(
    archive, tiny_onnx, reference, tmp_path
):
    out = tmp_path / "s.csv"
    result = run(mapped_config(archive, tiny_onnx, out, kind="processes", workers=2))
    assert result.failures == [] and out.read_bytes() == reference
    assert len(list((journal_path_for(out) / "files").glob("*.npz"))) == 16


def test_auto_runs_worker_processes_on_a_many_core_node(
    archive, tiny_onnx, reference, tmp_path, monkeypatch
):
    from birdinfer.runner import plan as threads
    from birdinfer.scorer import EngineThreads, Ensemble

    monkeypatch.setattr(threads, "PROCESSES_FROM_FILES", 16)  # the archive's 16 files
    outputs = {}
    for cores in (2, 8):  # the plan's core count decides; the processes pin to the real cores
        out = tmp_path / f"{cores}" / "s.csv"
        config = mapped_config(archive, tiny_onnx, out, kind="auto")
        result = run(config, ensemble=Ensemble(config, EngineThreads(cores, 2, 2)))
        assert result.failures == [] and out.read_bytes() == reference
        outputs[f"{cores}"] = json.loads(result.report_path.read_text())["executor"]
        outputs[f"{cores} journaled"] = len(list(journal_path_for(out).glob("files/*.npz")))
    assert outputs == {"2": "engine", "2 journaled": 0, "8": "processes", "8 journaled": 16}


def test_process_groups_split_the_cores_and_fold_a_short_tail():
    from birdinfer.runner.plan import process_groups

    assert process_groups(list(range(16)), 4) == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10, 11],
        [12, 13, 14, 15],
    ]
    assert process_groups(list(range(6)), 4) == [[0, 1, 2, 3, 4, 5]]
    assert process_groups(list(range(10)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9]]
    assert process_groups([0, 1], 1) == [[0], [1]]


def test_executor_workers_gives_that_many_processes_as_even_as_the_cores_allow(caplog):
    from birdinfer.runner.plan import process_groups

    groups = process_groups(list(range(10)), count=4)
    assert sum(groups, []) == list(range(10)) and sorted(map(len, groups)) == [2, 2, 3, 3]
    assert process_groups(list(range(16)), count=4) == [
        list(range(i, i + 4)) for i in (0, 4, 8, 12)
    ]
    assert process_groups([0, 1], count=3) == [[0], [1]]
    assert "3 worker processes asked for on 2 cores" in caplog.text


def test_a_workers_stage_seconds_count_once_however_its_tasks_overlap():
    def outcome(name, start, end):
        return worker.TaskOutcome(
            worker=name, stages_at_start={"decode": start}, stages_at_end={"decode": end}
        )

    # Two tasks shared one engine on worker a (10 -> 18 s of decode); worker b did 5 s.
    outcomes = [outcome("a", 10, 15), outcome("a", 12, 18), outcome("b", 0, 5)]
    assert executors.tasks_stage_seconds(outcomes) == {"decode": 13}


@pytest.mark.parametrize("kind", ["tasks", "processes"])
def test_the_report_states_the_threads_the_workers_ran(archive, tiny_onnx, tmp_path, kind):
    """Issue 21, point 16: --threads 1 reaches the workers' engines, and the report says so."""
    out = tmp_path / "submission.csv"
    config = make_config(
        archive,
        tiny_onnx,
        out,
        executor={"kind": kind, "workers": 2, "files_per_task": 4},
        inference={"threads": 1, "workers": 1},
    )
    result = run(config)
    report = json.loads(result.report_path.read_text())["threads"]
    assert report["runtime_threads"] == 1 and report["workers"] == 1
    assert report["engines"] and all(
        e["runtime_threads"] == 1 and e["workers"] == 1 for e in report["engines"].values()
    )
    if kind == "tasks":  # the engine's runtime itself, in this process
        ensembles = [e for e, _ in worker._ensembles.values() if e.config == result_config(config)]
        assert ensembles and all(m.backend.threads == 1 for e in ensembles for m in e.members)


def result_config(config):
    return dataclasses.replace(config, output=dataclasses.replace(config.output, progress=False))


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:1", "not an address", "tcp://127.0.0.1:99999", "foo://x"]
)
def test_an_unreachable_or_malformed_scheduler_is_one_error_line(
    archive, tiny_onnx, tmp_path, capsys, address
):
    """Issue 21, point 15: the CLI says which address failed, without a traceback, in time."""
    pytest.importorskip("distributed")
    from birdinfer.cli import main

    args = ["--input", str(archive), "--model", str(tiny_onnx), "--executor", "dask"]
    args += ["--scheduler", address, "--output", str(tmp_path / "s.csv"), "-q", "--no-progress"]
    started = time.monotonic()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - started < 60
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: config key 'executor.scheduler'")
    assert repr(address) in lines[0] and "Traceback" not in err
