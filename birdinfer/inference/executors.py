"""Scoring files on any `concurrent.futures.Executor`: a thread pool here, or a Dask cluster.

    client (run)                              executor workers (threads or Dask processes)
    tasks of a few files  --- submit --->     score_task: the worker's cached Ensemble + StreamingEngine
                                              -> one journal entry (parquet partition) per file
    assemble the submission from the journal  <--- outcome (files done, failures; no scores)

Scores travel through the journal folder beside the output, never through the scheduler: a task
that is retried (its worker died) skips the files whose entries exist, and `--resume` works across
workers and runs. Dask's client offers a `concurrent.futures` executor, so nothing here is
Dask-specific but `dask_executor`.
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
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from birdinfer.config import Config, to_dict
from birdinfer.errors import ConfigError, JournalError
from birdinfer.inference.ensemble import Ensemble
from birdinfer.inference.journal import Journal, fingerprint
from birdinfer.inference.streaming import score_files
from birdinfer.inference.threads import ThreadPlan, available_cores, process_groups
from birdinfer.results import FileFailure, FileResult

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
    runtime_threads: int | None = None  # None: from the Dask worker's own thread count
    # Files decoded at once within a task: 1 where a worker's task threads are its file
    # parallelism (Dask, threads); None: every core of the process (the process path).
    feature_workers: int | None = 1


@dataclass
class TaskOutcome:
    scored: list[str] = field(default_factory=list)
    already_journaled: list[str] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    worker: str = ""


# --- the worker side ------------------------------------------------------------------------------

# This process's pipelines with their fingerprints, keyed by config and model file identity.
_ensembles: dict[str, tuple[Ensemble, dict[str, Any]]] = {}
_lock = threading.Lock()


def ensembles_built() -> int:
    """How many pipelines (model loads) this process has built for tasks."""
    return len(_ensembles)


def worker_ensemble(
    config: Config, runtime_threads: int | None, feature_workers: int | None = 1
) -> tuple[Ensemble, dict]:
    """This process's Ensemble for `config`, built (models loaded) once and reused by every
    task; with its fingerprint, computed once too (model files are hashed)."""
    # A model file replaced on disk (same path, new bytes) must be loaded again, not refused.
    files = [_identity(spec.path) for spec in config.models]
    key = json.dumps([to_dict(config), files], sort_keys=True)
    with _lock:
        if key not in _ensembles:
            tune_malloc()
            threads = runtime_threads or dask_runtime_threads()
            cores = available_cores()
            plan = ThreadPlan(cores=cores, workers=feature_workers or cores, threads=threads)
            ensemble = Ensemble(config, plan)
            _ensembles[key] = (ensemble, fingerprint(ensemble))
            log.info("%s: models loaded, %s", worker_name(), plan.describe())
        return _ensembles[key]


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


def dask_runtime_threads() -> int:
    """Runtime threads per task on a Dask worker: its cores over its task threads, so that
    runtime threads x task threads <= the worker's cores.

    A worker's cores are its `nthreads` (Dask's own count, as `dask worker --nthreads` or
    dask-jobqueue's cores/processes set it), or BIRDINFER_WORKER_CORES when a worker runs fewer
    task threads than it has cores (e.g. `--nthreads 1` on 4 cores: 4 runtime threads per task).
    """
    try:
        from distributed import get_worker

        task_threads = get_worker().state.nthreads
    except (ImportError, ValueError):  # not on a Dask worker
        task_threads = 1
    cores = int(os.environ.get("BIRDINFER_WORKER_CORES", task_threads))
    return max(1, cores // task_threads)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def score_task(task: FileTask) -> TaskOutcome:
    """Score a task's files into the journal; files already journaled (a retry) are skipped."""

    ensemble, stamp = worker_ensemble(task.config, task.runtime_threads, task.feature_workers)
    if stamp != task.stamp:  # another model file at the same path on this node, say
        raise JournalError(
            f"{worker_name()}: this worker's models or settings differ from the run's"
        )
    journal = Journal(Path(task.journal), stamp, task.entry_format)
    outcome = TaskOutcome(worker=worker_name())
    todo, stems = [], []
    for path, stem in zip(task.files, task.stems, strict=True):
        if journal.load(Path(path)) is not None:
            outcome.already_journaled.append(path)
        else:
            todo.append(Path(path))
            stems.append(stem)
    scored = score_files(ensemble, todo, stems=stems, on_result=journal.record)
    outcome.scored = [str(r.path) for r in scored.results]
    outcome.failures = scored.failures
    return outcome


# --- the client side ------------------------------------------------------------------------------


def map_files(
    ensemble: Ensemble,
    files: list[Path],
    stems: list[str],
    journal: Journal,
    executor: Executor | None,
) -> tuple[list[FileResult], list[FileFailure]]:
    """Score files as tasks on `executor`, or on the one `config.executor` names."""
    config = ensemble.config
    if config.budget.enabled:
        log.warning("the time guard runs with the streaming engine only: not on this executor")
    progress = tqdm(total=len(files), unit="file", disable=not config.output.progress, leave=False)
    try:
        if executor is not None:
            return score_on_executor(
                ensemble, files, stems, executor, journal, on_task_done=progress.update
            )
        with open_executor(config) as (opened, runtime_threads):
            # A process of the process path runs a whole engine on its cores (see process_pool).
            feature_workers = None if config.executor.kind == "processes" else 1
            return score_on_executor(
                ensemble,
                files,
                stems,
                opened,
                journal,
                runtime_threads,
                progress.update,
                feature_workers,
            )
    finally:
        progress.close()


def score_on_executor(
    ensemble: Ensemble,
    files: list[Path],
    stems: list[str],
    executor: Executor,
    journal: Journal,
    runtime_threads: int | None = None,
    on_task_done: Callable[[int], None] | None = None,
    feature_workers: int | None = 1,
) -> tuple[list[FileResult], list[FileFailure]]:
    """Map tasks of `executor.files_per_task` files over `executor`; results in file order.

    A task that fails for good (Dask gave up after its workers died, say) costs its files that
    were not journaled yet, each reported with the reason; the other tasks' files are intact.
    """
    config = dataclasses.replace(
        ensemble.config, output=dataclasses.replace(ensemble.config.output, progress=False)
    )
    size = config.executor.files_per_task
    tasks = [
        FileTask(
            config=config,
            files=tuple(str(p) for p in files[i : i + size]),
            stems=tuple(stems[i : i + size]),
            journal=str(journal.folder),
            stamp=journal.stamp,
            entry_format=journal.entry_format,
            runtime_threads=runtime_threads,
            feature_workers=feature_workers,
        )
        for i in range(0, len(files), size)
    ]
    futures: dict[Future, FileTask] = {executor.submit(score_task, task): task for task in tasks}
    failures: list[FileFailure] = []
    workers: set[str] = set()
    for future in as_completed(futures):
        task = futures[future]
        try:
            outcome = future.result()
        except JournalError:
            raise
        except Exception as exc:  # the task failed for good: its unjournaled files are lost
            reason = f"its task failed ({type(exc).__name__}: {exc})"
            failures += [
                FileFailure(f, reason) for f in task.files if journal.load(Path(f)) is None
            ]
        else:
            failures += outcome.failures
            workers.add(outcome.worker)
        if on_task_done is not None:
            on_task_done(len(task.files))
    log.info("%d tasks on %d workers: %s", len(tasks), len(workers), ", ".join(sorted(workers)))
    failed = {f.path for f in failures}
    results = []
    for path in files:
        if str(path) in failed:
            continue
        stored = journal.load(path)
        if stored is None:
            failures.append(FileFailure(str(path), "its task finished without a journal entry"))
        else:
            results.append(stored)
    return results, sorted(failures, key=lambda f: f.path)


@contextmanager
def open_executor(config: Config) -> Iterator[tuple[Executor, int | None]]:
    """The executor `config.executor` names, and the runtime threads per task to use on it
    (None: each Dask worker works it out from its own thread count)."""
    settings = config.executor
    if settings.kind == "threads":
        cores = available_cores()
        workers = settings.workers or cores
        with ThreadPoolExecutor(workers, thread_name_prefix="birdinfer-task") as pool:
            yield pool, max(1, cores // workers)
        return
    if settings.kind == "processes":
        from birdinfer.inference.process_pool import process_executor

        cores = available_cores()
        per_process = -(-cores // settings.workers) if settings.workers else None
        groups = process_groups(per_process=per_process)
        log.info("%d worker processes on cores %s", len(groups), groups)
        with process_executor(groups) as pool:
            yield pool, None  # each process: runtime threads = its cores (process_pool._pin)
        return
    if settings.kind != "dask":
        raise ConfigError(f"config key 'executor.kind': '{settings.kind}' is not a file map")
    with dask_executor(settings.scheduler, settings.local_workers) as executor:
        yield executor, None


@contextmanager
def dask_executor(scheduler: str | None, local_workers: int | None) -> Iterator[Executor]:
    """A `concurrent.futures` executor on an existing Dask scheduler, or on a LocalCluster of
    `local_workers` processes (one task thread each, sharing this machine's cores)."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise ConfigError(
            "config key 'executor.kind': 'dask' needs Dask (pip install 'birdinfer[dask]')"
        ) from exc
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        workers = local_workers or 1
        cluster, client = local_cluster(workers, max(1, available_cores() // workers))
    try:
        log.info("Dask: %s", client)
        yield client.get_executor(pure=False)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def local_cluster(workers: int, threads_per_worker: int):
    """A Dask LocalCluster of `workers` processes on this machine (loopback only, no dashboard)
    and a client of it."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    return cluster, Client(cluster)
