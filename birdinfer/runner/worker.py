"""The worker side of a file map: a task of a few files scored on this process's shared engine.

A worker (a task thread here, a pinned worker process, a Dask worker) builds its Ensemble once
per config and model files, and feeds every task to one engine running on its cores; each scored
file is journaled before the task returns (birdinfer.runner.client holds the client side).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from birdinfer.config import Config, to_dict
from birdinfer.errors import JournalError
from birdinfer.results import FileFailure, FileResult
from birdinfer.runner.journal import Journal, fingerprint
from birdinfer.runner.plan import ExecutionPlan
from birdinfer.runner.process_pool import pinned_group
from birdinfer.runner.shared_engine import SharedEngine
from birdinfer.scorer.ensemble import Ensemble
from birdinfer.scorer.threads import EngineThreads, available_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileTask:
    """A few files for one worker; plain data, pickled to the worker."""

    config: Config
    files: tuple[str, ...]
    stems: tuple[str, ...]
    journal: str
    stamp: dict[str, Any]
    plan: ExecutionPlan  # the run's: the journal's entry format, this worker's engine threads


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


def worker_ensemble(config: Config, threads: EngineThreads | None = None) -> tuple[Ensemble, dict]:
    """This process's Ensemble for `config` on `threads` (default: every core here), built
    (models loaded) once and reused by every task; with its fingerprint, computed once too
    (model files are hashed)."""
    with _lock:
        return _ensembles[_built(config, threads or EngineThreads.for_cores())]


def worker_engine(config: Config, threads: EngineThreads) -> tuple[SharedEngine, dict]:
    """This process's shared engine for `config` on `threads` (and its Ensemble's fingerprint)."""
    with _lock:
        key = _built(config, threads)
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


def reset_abort() -> None:
    """A new run in this process: its tasks may start engines again."""
    _aborted.clear()


def abort_worker_engines() -> None:
    """Stop this process's shared engines now, dropping the files in flight (Ctrl-C): their
    waiting tasks raise, and tasks that have not reached an engine start none."""
    _aborted.set()
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.abort()


def _built(config: Config, threads: EngineThreads) -> str:
    """The key of this process's Ensemble for `config` on `threads`, building it first if need
    be (the caller holds `_lock`)."""
    # A model file replaced on disk (same path, new bytes) must be loaded again, not refused.
    files = [_identity(spec.path) for spec in config.models]
    key = json.dumps([to_dict(config), files, threads.report()], sort_keys=True)
    if key not in _ensembles:
        tune_malloc()
        ensemble = Ensemble(config, threads)
        _ensembles[key] = (ensemble, fingerprint(ensemble))
        log.info("%s: models loaded, %s", worker_name(), threads.describe())
    return key


def _identity(model: str) -> list:
    from birdinfer.models.files import model_files, resolve_model_path

    parts = [p for p in model_files(resolve_model_path(model)) if p.exists()]
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in parts]


def tune_malloc() -> bool:
    """Undo what Dask's nanny's MALLOC_TRIM_THRESHOLD_=65536 costs this process's speed.

    Setting that variable also fixes glibc's mmap threshold at 128 kB, so every batch of
    log-mels (2.5 MB at batch 16) is mmap'd and unmapped again, page faults and all (the cost:
    docs/throughput.md, "Figures behind ..."). Raising both thresholds at run time (mallopt)
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


def engine_threads(plan: ExecutionPlan) -> EngineThreads:
    """This worker's engine threads, as the plan gives them: its core group's on the process
    path, else the one engine's. Only on a Dask cluster of your own, whose machines the plan
    cannot see, do the worker's own cores size its engine (`own_cores`)."""
    return plan.engine(pinned_group(), None if plan.engines else own_cores())


def own_cores() -> int:
    """A Dask worker's cores: its resource "cores" where it declares one (`dask worker
    --resources cores=8`, `dask_cluster.local_cluster`), else its thread count (as `dask worker
    --nthreads` or dask-jobqueue set it); elsewhere every core this process may use."""
    try:
        from distributed import get_worker

        state = get_worker().state
        return max(1, int(state.total_resources.get("cores") or state.nthreads))
    except (ImportError, ValueError):  # not on a Dask worker
        return available_cores()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def score_task(task: FileTask) -> TaskOutcome:
    """Score a task's files into the journal; files already journaled (a retry) are skipped."""

    engine, stamp = worker_engine(task.config, engine_threads(task.plan))
    if stamp != task.stamp:  # another model file at the same path on this node, say
        raise JournalError(
            f"{worker_name()}: this worker's models or settings differ from the run's"
        )
    journal = Journal(Path(task.journal), stamp, task.plan.journal or "npz")
    timer = engine.ensemble.timer
    outcome = TaskOutcome(
        worker=worker_name(),
        stages_at_start=timer.snapshot(),
        threads=engine.ensemble.threads.report(),
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
