"""How a run executes, decided once: the ExecutionPlan.

`resolve_plan` reads the config, the cores this process may use and the number of files, and
decides everything about how the files get scored (as timm's `resolve_data_config` settles a
model's input settings once): the executor and why, the core groups of the process path, each
engine's feature workers and runtime threads, the files per task, the journal's entry format and
whether the time guard runs. Nothing downstream decides again: the run follows the plan, workers
get it with their tasks and take their engine's threads from it, and the run report prints it.

Each flag means one thing on every path: `--workers` (inference.workers) and `--threads`
(inference.threads) are each engine's feature workers and runtime threads, whether the engine
runs here, in a task pool, in a worker process or on a Dask worker; `executor.workers` is the
number of task threads (tasks) or worker processes (processes). A setting the chosen path cannot
honour is refused with a ConfigError, never dropped.
"""

from __future__ import annotations

import itertools
import logging
import os
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from birdinfer.config import Config
from birdinfer.errors import ConfigError
from birdinfer.scorer.threads import EngineThreads, available_cores

log = logging.getLogger(__name__)

# What runs the files: this process's streaming engine ("engine"), or tasks of a few files fed
# to one engine per process: on a pool of task threads here ("tasks"), on worker processes
# pinned to core groups ("processes"), on a Dask cluster ("dask").
KINDS = ("engine", "tasks", "processes", "dask")
# A Dask cluster's workers: their local cluster here gives each two task threads (one task's
# files decode while the other's finish).
DASK_TASK_THREADS = 2

# Cores per process on the process path: a group as large as the machines the engine's thread
# plan was tuned on (2-4 cores), so each process's stages overlap as on such a machine.
PROCESS_CORES = 4
# From this many cores on, `executor.kind: auto` runs one engine per group of PROCESS_CORES.
# Why: one engine scales worse with the cores than a few 4-core engines side by side do, from
# about 8 cores on (the 16-core figures and their age are in docs/throughput.md, "Figures behind
# the code's choices").
PROCESSES_FROM_CORES = 2 * PROCESS_CORES
# ... and from this many files on: each run starts its worker processes afresh (spawn, imports,
# models, a pipeline to fill), a start-up that only a run this long repays (docs/throughput.md,
# "Figures behind the code's choices").
PROCESSES_FROM_FILES = 400


@dataclass(frozen=True)
class ExecutionPlan:
    """How one run executes; plain data, pickled to its workers with their tasks."""

    kind: str  # one of KINDS, or "executor" (an executor passed to run())
    why: str
    cores: int  # the cores this process may use
    # Each engine's threads: one per core group on the process path, else the one every engine
    # runs; empty where the plan cannot know the workers' cores (a Dask cluster of your own).
    engines: tuple[EngineThreads, ...]
    groups: tuple[tuple[int, ...], ...] = ()  # processes: each worker process's cores
    task_threads: int = 0  # tasks: tasks at once in this process; dask: per local worker
    dask_workers: int = 0  # dask: worker processes of the local cluster started here
    files_per_task: int = 1
    journal: str | None = None  # the journal's entry format ("npz", "parquet"), None: none
    time_guard: bool = False
    # inference.workers and .threads as set: for engines on cores the plan cannot know.
    workers: int | None = None
    threads: int | None = None

    @property
    def mapped(self) -> bool:
        """Files scored as tasks on an executor (their results travel through the journal)."""
        return self.kind != "engine"

    def engine(
        self, group: tuple[int, ...] | None = None, cores: int | None = None
    ) -> EngineThreads:
        """The threads of the engine on core `group` (a worker process's), or of the one engine
        every worker runs; on a worker the plan could not size, `cores` (its own) decides."""
        if group is not None and group in self.groups:
            return self.engines[self.groups.index(group)]
        if len(set(self.engines)) == 1:
            return self.engines[0]
        return EngineThreads.for_cores(cores, self.workers, self.threads)

    def describe(self) -> str:
        engines = ", ".join(sorted({e.describe() for e in self.engines})) or "each worker's cores"
        return f"{self.kind} ({self.why}); engine: {engines}"

    def report(self) -> dict[str, Any]:
        """The run report's "plan" section."""
        return {
            "executor": self.kind,
            "why": self.why,
            "cores": self.cores,
            "engines": [e.report() for e in self.engines],
            "groups": [list(g) for g in self.groups],
            "task_threads": self.task_threads,
            "dask_workers": self.dask_workers,
            "files_per_task": self.files_per_task,
            "journal": self.journal,
            "time_guard": self.time_guard,
        }


def resolve_plan(
    config: Config,
    files: int,
    cores: int | None = None,
    executor: Executor | None = None,
    engine: EngineThreads | None = None,
) -> ExecutionPlan:
    """The plan of a run of `files` files under `config`, on `cores` (default: every core this
    process may use). `executor`: one passed to run(), which the files are mapped over;
    `engine`: the threads of an Ensemble passed to run(), which scores here."""
    cores = engine.cores if engine is not None else cores or available_cores()
    settings, inference = config.executor, config.inference
    if executor is not None:
        kind, why = "executor", f"a {type(executor).__name__} passed to run()"
    else:
        kind, why = choose_kind(
            settings.kind, cores, files, settings.files_per_task, config.budget.enabled
        )
        if settings.kind == "auto" and kind == "engine" and settings.workers is not None:
            # Not refused: a config written for the process path still runs a small folder;
            # but the run says so, here and in its report's plan.
            why += f"; executor.workers ({settings.workers}) unused: no task threads or processes"
            log.warning("executor.workers is unused: auto chose the engine (%s)", why)
    refuse_unhonoured(config, kind)
    workers, threads = inference.workers, inference.threads
    common: dict[str, Any] = {
        "kind": kind,
        "why": why,
        "cores": cores,
        "files_per_task": settings.files_per_task,
        "workers": workers,
        "threads": threads,
        "time_guard": config.budget.enabled and kind == "engine",
    }
    if kind != "engine" or config.output.resume:
        common["journal"] = "parquet" if settings.kind == "dask" else "npz"
    if kind == "engine":
        engines = (engine or EngineThreads.for_cores(cores, workers, threads),)
        return ExecutionPlan(engines=engines, **common)
    if kind == "tasks":
        return ExecutionPlan(
            engines=(EngineThreads.for_cores(cores, workers, threads),),
            task_threads=settings.workers or cores,
            **common,
        )
    if kind == "processes":
        groups = tuple(tuple(g) for g in process_groups(count=settings.workers))
        engines = tuple(EngineThreads.for_cores(len(g), workers, threads) for g in groups)
        return ExecutionPlan(engines=engines, groups=groups, **common)
    if kind == "dask" and not settings.scheduler:
        dask_workers = settings.local_workers or 1
        per_worker = max(1, available_cores() // dask_workers)
        return ExecutionPlan(
            engines=(EngineThreads.for_cores(per_worker, workers, threads),),
            task_threads=DASK_TASK_THREADS,
            dask_workers=dask_workers,
            **common,
        )
    return ExecutionPlan(engines=(), **common)  # each worker's own cores


def choose_kind(
    kind: str, cores: int, files: int, files_per_task: int, time_guard: bool
) -> tuple[str, str]:
    """The executor a run uses, and why: `kind` itself unless it is "auto". Then the streaming
    engine in this process, or worker processes of PROCESS_CORES cores each on a node of
    PROCESSES_FROM_CORES or more, for a run long enough to repay their start-up
    (PROCESSES_FROM_FILES, and a task for every process) with the time guard off (it runs with
    the engine only)."""
    if kind != "auto":
        return kind, "executor.kind"
    if cores < PROCESSES_FROM_CORES:
        return "engine", f"{cores} cores: one engine"
    if time_guard:
        return "engine", "the time guard runs with the engine only"
    groups = len(process_groups(list(range(cores))))
    if files < max(PROCESSES_FROM_FILES, groups * files_per_task):
        return "engine", f"{files} files are too few to repay starting {groups} worker processes"
    return "processes", f"{cores} cores: {groups} engines of {PROCESS_CORES} cores, a process each"


def refuse_unhonoured(config: Config, kind: str) -> None:
    """A ConfigError for a setting the chosen path cannot honour (rather than ignoring it)."""
    if config.budget.enabled and kind != "engine":
        raise ConfigError(
            f"config key 'budget.enabled': the time guard runs with the streaming engine only, "
            f"and this run's files are scored by '{kind}': drop the budget (--budget-minutes) "
            "or run the engine (--executor engine)"
        )
    asked = "executor" if kind == "executor" else config.executor.kind
    if config.executor.workers is not None and asked in ("engine", "dask", "executor"):
        raise ConfigError(
            f"config key 'executor.workers': it sizes the task threads (executor.kind: tasks) "
            f"or the worker processes (processes), and '{asked}' has neither; each engine's "
            "feature workers are inference.workers (--workers)"
        )


def process_groups(
    cores: list[int] | None = None, per_process: int | None = None, count: int | None = None
) -> list[list[int]]:
    """The cores this process may use, split into groups, one worker process each: `count`
    groups as even as the cores allow (at most one per core: executor.workers asked for that
    many processes), else groups of `per_process` (default PROCESS_CORES), a short last group
    joining the one before it."""
    if cores is None:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        cores = cores[: available_cores()] or list(range(available_cores()))
    if count:
        if count > len(cores):
            log.warning(
                "%d worker processes asked for on %d cores: one per core", count, len(cores)
            )
            count = len(cores)
        bounds = [round(i * len(cores) / count) for i in range(count + 1)]
        return [cores[a:b] for a, b in itertools.pairwise(bounds)]
    size = max(1, per_process or PROCESS_CORES)
    groups = [cores[i : i + size] for i in range(0, len(cores), size)]
    if len(groups) > 1 and len(groups[-1]) < size:
        tail = groups.pop()
        groups[-1] = groups[-1] + tail
    return groups
