"""Scoring files on any `concurrent.futures.Executor`: a thread pool here, or a Dask cluster.

    client (run)                              executor workers (threads or Dask processes)
    tasks of a few files  --- submit --->     score_task: the process's shared engine (models loaded once)
                                              -> one journal entry (parquet partition) per file
    assemble the submission                   <--- outcome: the scored files' results, failures

Every scored file is in the journal folder beside the output before its task returns: a task that
is retried (its worker died) skips the files whose entries exist, and `--resume` works across
workers and runs. The outcome also carries the results the entries were written from, so the
client reads back only the entries it did not get that way (a retried or failed task's); reading
every partition again cost the client ~12 ms of CPU per file, on the cores the workers use
(docs/distributed.md). Dask's client offers a `concurrent.futures` executor, so nothing here is
Dask-specific: `dask_cluster` opens it.

Every task in a process feeds that process's one engine (`shared_engine`), which runs on all the
process's cores: tasks only wait for their files, so a worker needs two task threads or more to
keep the engine fed across task boundaries (local clusters get two).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    ThreadPoolExecutor,
    wait,
)
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from birdinfer.config import Config, to_dict
from birdinfer.errors import ConfigError, JournalError
from birdinfer.results import FileFailure, FileResult
from birdinfer.runner.journal import Journal, fingerprint
from birdinfer.runner.plan import process_groups
from birdinfer.runner.process_pool import WorkerPool
from birdinfer.runner.retries import WorkerDeaths
from birdinfer.runner.shared_engine import SharedEngine
from birdinfer.scorer.ensemble import Ensemble
from birdinfer.scorer.threads import ThreadPlan, available_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileTask:
    """A few files for one worker; plain data, pickled to the worker."""

    config: Config
    files: tuple[str, ...]
    stems: tuple[str, ...]
    journal: str
    stamp: dict[str, Any]
    entry_format: str


@dataclass
class TaskOutcome:
    scored: list[FileResult] = field(default_factory=list)  # each one journaled first
    already_journaled: list[str] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    worker: str = ""
    # The worker's stage seconds (its Ensemble's timer, which every task there adds to) when
    # the task started and when it ended: the run's share of a worker is its last end minus its
    # first start, whatever its tasks overlapped (tasks_stage_seconds).
    stages_at_start: dict[str, float] = field(default_factory=dict)
    stages_at_end: dict[str, float] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)  # what the worker's engine ran


# --- the worker side ------------------------------------------------------------------------------

# This process's pipelines with their fingerprints, keyed by config and model file identity,
# and the shared engine running each (started by the first task that needs it).
_ensembles: dict[str, tuple[Ensemble, dict[str, Any]]] = {}
_engines: dict[str, SharedEngine] = {}
_lock = threading.Lock()
# Set when the run in this process was interrupted: a task still loading models starts no engine.
_aborted = threading.Event()


def ensembles_built() -> int:
    """How many pipelines (model loads) this process has built for tasks."""
    return len(_ensembles)


def worker_ensemble(config: Config) -> tuple[Ensemble, dict]:
    """This process's Ensemble for `config`, built (models loaded) once and reused by every
    task; with its fingerprint, computed once too (model files are hashed)."""
    with _lock:
        return _ensembles[_built(config)]


def worker_engine(config: Config) -> tuple[SharedEngine, dict]:
    """This process's shared engine for `config` (and the fingerprint of its Ensemble)."""
    with _lock:
        key = _built(config)
        ensemble, stamp = _ensembles[key]
        if _aborted.is_set():
            raise RuntimeError("the run was interrupted")
        if key not in _engines:
            _engines[key] = SharedEngine(ensemble)
        return _engines[key], stamp


def close_worker_engines() -> None:
    """Stop this process's shared engines (their models stay loaded for the next run)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.close()


def abort_worker_engines() -> None:
    """Stop this process's shared engines now, dropping the files in flight (Ctrl-C): their
    waiting tasks raise, and tasks that have not reached an engine start none."""
    _aborted.set()
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.abort()


def _built(config: Config) -> str:
    """The key of this process's Ensemble for `config`, building it first if need be (the
    caller holds `_lock`)."""
    # A model file replaced on disk (same path, new bytes) must be loaded again, not refused.
    files = [_identity(spec.path) for spec in config.models]
    key = json.dumps([to_dict(config), files], sort_keys=True)
    if key not in _ensembles:
        tune_malloc()
        cores = worker_cores()
        # --workers/--threads (inference.workers/threads) mean on a worker what they mean in
        # the engine; unset, the worker's cores.
        workers, threads = config.inference.workers, config.inference.threads
        plan = ThreadPlan(
            cores=available_cores(), workers=workers or cores, threads=threads or cores
        )
        ensemble = Ensemble(config, plan)
        _ensembles[key] = (ensemble, fingerprint(ensemble))
        log.info("%s: models loaded, %s", worker_name(), plan.describe())
    return key


def _identity(model: str) -> list:
    from birdinfer.models.backends.base import model_files, resolve_model_path

    parts = [p for p in model_files(resolve_model_path(model)) if p.exists()]
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in parts]


def tune_malloc() -> bool:
    """Undo what Dask's nanny's MALLOC_TRIM_THRESHOLD_=65536 costs this process's speed.

    Setting that variable also fixes glibc's mmap threshold at 128 kB, so every batch of
    log-mels (2.5 MB at batch 16) is mmap'd and unmapped again, page faults and all: a task of
    8 files took 1.9 s against 1.45 s without it. Raising both thresholds at run time (mallopt)
    keeps such buffers on the heap for reuse. True when it applied.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = libc.mallopt(m_mmap_threshold, 32 << 20) == 1  # glibc's largest: 32 MB on 64-bit
    return libc.mallopt(m_trim_threshold, 64 << 20) == 1 and ok


def worker_cores() -> int:
    """The cores this process's engine runs on: BIRDINFER_WORKER_CORES where the process path
    or a local cluster set it, else a Dask worker's thread count (its cores, as `dask worker
    --nthreads` or dask-jobqueue set it), else every core this process may use."""
    if os.environ.get("BIRDINFER_WORKER_CORES"):
        return max(1, int(os.environ["BIRDINFER_WORKER_CORES"]))
    try:
        from distributed import get_worker

        return max(1, get_worker().state.nthreads)
    except (ImportError, ValueError):  # not on a Dask worker
        return available_cores()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def score_task(task: FileTask) -> TaskOutcome:
    """Score a task's files into the journal; files already journaled (a retry) are skipped."""

    engine, stamp = worker_engine(task.config)
    if stamp != task.stamp:  # another model file at the same path on this node, say
        raise JournalError(
            f"{worker_name()}: this worker's models or settings differ from the run's"
        )
    journal = Journal(Path(task.journal), stamp, task.entry_format)
    timer = engine.ensemble.timer
    outcome = TaskOutcome(
        worker=worker_name(),
        stages_at_start=timer.snapshot(),
        threads=engine.ensemble.describe()["threads"],
    )
    todo, stems = [], []
    for path, stem in zip(task.files, task.stems, strict=True):
        if journal.load(Path(path)) is not None:
            outcome.already_journaled.append(path)
        else:
            todo.append(Path(path))
            stems.append(stem)
    scored = engine.score(todo, stems, on_result=journal.record)
    outcome.scored = scored.results
    outcome.failures = scored.failures
    outcome.stages_at_end = timer.snapshot()
    return outcome


def tasks_stage_seconds(outcomes: list[TaskOutcome]) -> dict[str, float]:
    """Stage seconds the workers spent on these tasks: per worker, its latest snapshot minus its
    earliest, summed over workers (a task's own difference would count its neighbours' work
    too, since a worker's tasks share one engine)."""
    first: dict[str, dict[str, float]] = {}
    last: dict[str, dict[str, float]] = {}
    for outcome in outcomes:
        start, end = first.setdefault(outcome.worker, {}), last.setdefault(outcome.worker, {})
        for stage, seconds in outcome.stages_at_start.items():
            start[stage] = min(start.get(stage, seconds), seconds)
        for stage, seconds in outcome.stages_at_end.items():
            end[stage] = max(end.get(stage, seconds), seconds)
    total: dict[str, float] = {}
    for worker, end in last.items():
        for stage, seconds in end.items():
            spent = seconds - first[worker].get(stage, 0.0)
            total[stage] = total.get(stage, 0.0) + spent
    return total


# --- the client side ------------------------------------------------------------------------------


def map_files(
    ensemble: Ensemble,
    files: list[Path],
    stems: list[str],
    journal: Journal,
    executor: Executor | str,
    on_result: Callable[[FileResult], None] | None = None,
) -> tuple[list[FileResult], list[FileFailure]]:
    """Score files as tasks on `executor`, or on the kind of executor it names ("threads",
    "processes" or "dask", as `config.executor` sets it up); `on_result` sees each file's
    result here as its task ends."""
    config = ensemble.config
    if config.budget.enabled:
        log.warning("the time guard runs with the streaming engine only: not on this executor")
    progress = tqdm(total=len(files), unit="file", disable=not config.output.progress, leave=False)
    try:
        if not isinstance(executor, str):
            return score_on_executor(
                ensemble, files, stems, executor, journal, progress.update, on_result
            )
        with open_executor(config, executor) as opened:
            return score_on_executor(
                ensemble, files, stems, opened, journal, progress.update, on_result
            )
    finally:
        progress.close()


class _Tally:
    """A file map's results so far: each file's result (None: lost), the failures, and the
    outcomes of the tasks that ended; `on_result` and `on_task_done` hear of each."""

    def __init__(self, journal: Journal, on_result, on_task_done) -> None:
        self.journal = journal
        self.on_result = on_result
        self.on_task_done = on_task_done
        self.stored: dict[str, FileResult | None] = {}
        self.failures: list[FileFailure] = []
        self.outcomes: list[TaskOutcome] = []

    def settle(self, task: FileTask, outcome: TaskOutcome | None, reason: str = "") -> None:
        """A task that ended: with its outcome, or failed for good (its unjournaled files are
        lost, with `reason`)."""
        load = self.journal.load
        if outcome is None:
            found = {path: load(Path(path)) for path in task.files}
            self.failures += [FileFailure(f, reason) for f in task.files if found[f] is None]
        else:  # its own results, and its files that an earlier try of it had journaled
            returned = {str(result.path): result for result in outcome.scored}
            found = {path: returned.get(path) or load(Path(path)) for path in task.files}
            self.failures += outcome.failures
            self.outcomes.append(outcome)
        for path, result in found.items():
            self.stored[path] = result
            if result is not None and self.on_result is not None:
                self.on_result(result)
        if self.on_task_done is not None:
            self.on_task_done(len(task.files))

    def add(self, result: FileResult) -> None:
        """A file a lost task had journaled before its worker died."""
        self.stored[str(result.path)] = result
        if self.on_result is not None:
            self.on_result(result)

    def in_order(self, files: list[Path]) -> tuple[list[FileResult], list[FileFailure]]:
        failed = {f.path for f in self.failures}
        results, failures = [], list(self.failures)
        for path in files:
            if str(path) in failed:
                continue
            if self.stored.get(str(path)) is None:
                failures.append(FileFailure(str(path), "its task finished without a journal entry"))
            else:
                results.append(self.stored[str(path)])
        return results, sorted(failures, key=lambda f: f.path)


def score_on_executor(
    ensemble: Ensemble,
    files: list[Path],
    stems: list[str],
    executor: Executor,
    journal: Journal,
    on_task_done: Callable[[int], None] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> tuple[list[FileResult], list[FileFailure]]:
    """Map tasks of `executor.files_per_task` files over `executor`; results in file order.

    A task that fails for good (Dask gave up after its workers died, say) costs its files that
    were not journaled yet, each reported with the reason; the other tasks' files are intact.
    On a WorkerPool, a dead worker's files are scored again on a new pool (`retries`).
    """
    tasks = _tasks(ensemble.config, files, stems, journal)
    futures: dict[Future, FileTask] = {executor.submit(score_task, task): task for task in tasks}
    deaths = (
        WorkerDeaths(executor, journal, len(tasks)) if isinstance(executor, WorkerPool) else None
    )
    tally = _Tally(journal, on_result, on_task_done)
    while futures:
        done, _ = wait(futures, return_when=FIRST_COMPLETED)
        broken = [f for f in done if isinstance(f.exception(), BrokenExecutor)]
        if deaths is not None and broken:
            done, _ = wait(futures)  # the pool broke: every task still in it fails with it
        lost = []
        for future in done:
            task, error = futures.pop(future), future.exception()
            if error is None:
                tally.settle(task, future.result())
            elif isinstance(error, JournalError) or not isinstance(error, Exception):
                raise error
            elif deaths is not None and isinstance(error, BrokenExecutor):
                lost.append((future, task))
            else:
                tally.settle(task, None, f"its task failed ({type(error).__name__}: {error})")
        if lost:
            retries, skipped, journaled = deaths.retry(lost)
            tally.failures += skipped
            for result in journaled:
                tally.add(result)
            futures.update({executor.submit(score_task, task): task for task in retries})
    workers = sorted({outcome.worker for outcome in tally.outcomes})
    log.info("%d tasks on %d workers: %s", len(tasks), len(workers), ", ".join(workers))
    # The run report's stage table: what the workers spent, as the engine's would show it.
    ensemble.timer.add(tasks_stage_seconds(tally.outcomes))
    ensemble.worker_threads = {o.worker: o.threads for o in tally.outcomes}
    return tally.in_order(files)


def _tasks(config: Config, files: list[Path], stems: list[str], journal: Journal) -> list[FileTask]:
    """Tasks of `executor.files_per_task` files each (their config without a progress bar)."""
    config = dataclasses.replace(config, output=dataclasses.replace(config.output, progress=False))
    size = config.executor.files_per_task
    return [
        FileTask(
            config=config,
            files=tuple(str(p) for p in files[i : i + size]),
            stems=tuple(stems[i : i + size]),
            journal=str(journal.folder),
            stamp=journal.stamp,
            entry_format=journal.entry_format,
        )
        for i in range(0, len(files), size)
    ]


@contextmanager
def open_executor(config: Config, kind: str | None = None) -> Iterator[Executor]:
    """The executor of `kind` (default `config.executor.kind`), set up as `config.executor`
    says. Its tasks feed each process's one engine, on the process's cores (`worker_cores`)."""
    settings = config.executor
    kind = kind or settings.kind
    if kind == "threads":
        workers = settings.workers or available_cores()
        _aborted.clear()
        pool = ThreadPoolExecutor(workers, thread_name_prefix="birdinfer-task")
        try:
            yield pool  # the task threads feed this process's one engine
        except BaseException:  # Ctrl-C, SIGTERM, an error: drop the queued tasks, stop the rest
            pool.shutdown(wait=False, cancel_futures=True)
            abort_worker_engines()
            raise
        finally:
            pool.shutdown(wait=True)
            close_worker_engines()  # its threads must not outlive the run
        return
    if kind == "processes":
        from birdinfer.runner.process_pool import process_executor

        cores = available_cores()
        per_process = -(-cores // settings.workers) if settings.workers else None
        groups = process_groups(per_process=per_process)
        log.info("%d worker processes on cores %s", len(groups), groups)
        with process_executor(groups) as pool:
            yield pool  # each process: its engine on its core group (process_pool._pin)
        return
    if kind != "dask":
        raise ConfigError(f"config key 'executor.kind': '{kind}' is not a file map")
    from birdinfer.runner.dask_cluster import dask_executor

    with dask_executor(settings.scheduler, settings.local_workers) as executor:
        yield executor
