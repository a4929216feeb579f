"""The thread budget: how many threads each stage gets, from the cores this process may use.

`os.cpu_count()` reports the host's cores; a container's CPU quota (cgroup `cpu.max`) and the
process's affinity mask can allow far fewer, and runtimes that size their pools from the host's
count then thrash. The budget is computed once, here, and passed to every stage.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may use: the smallest of affinity, cgroup quota and cpu_count."""
    counts = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):
        counts.append(len(os.sched_getaffinity(0)))
    quota = cgroup_cpu_quota()
    if quota is not None:
        counts.append(quota)
    return max(1, min(counts))


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Whole cores allowed by a cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us`, or None if unlimited."""
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
        v1_quota, v1_period = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if v1_quota.is_file() and v1_period.is_file():
            quota_us = int(v1_quota.read_text())
            return (
                None if quota_us <= 0 else max(1, math.ceil(quota_us / int(v1_period.read_text())))
            )
    except (OSError, ValueError):
        return None
    return None


@dataclass(frozen=True)
class ThreadPlan:
    cores: int
    workers: int  # feature workers: files decoded and turned into log-mels at once
    threads: int  # intra-op threads of the model runtime (the model lane)

    def describe(self) -> str:
        return (
            f"{self.workers} feature workers + {self.threads} runtime threads on {self.cores} cores"
        )


def plan_threads(
    workers: int | None = None, threads: int | None = None, cores: int | None = None
) -> ThreadPlan:
    """Feature workers and model-lane runtime threads, each at most the available cores.

    The engine has one model lane: its runtime's thread pool is the only one, so "runtime
    threads x lanes <= cores" is `threads <= cores`. Feature workers are a different stage that
    overlaps the model lane; idle runtime threads sleep (ONNX Runtime's spinning is off, BLAS is
    pinned to one thread), so both get every core by default. The sweep in docs/throughput.md
    decided it: on 2 cores, 2 workers + 2 threads ran 4.88 ms/window against 5.10 for 2 + 1, and
    a 3-member ensemble 9.20 against 11.05. A plan above the cores is honoured with a warning.
    """
    cores = cores or available_cores()
    workers = workers or cores
    threads = threads or cores
    for name, value in (("feature workers", workers), ("runtime threads", threads)):
        if value > cores:
            log.warning("%d %s exceed the %d available cores; expect thrashing", value, name, cores)
    return ThreadPlan(cores=cores, workers=workers, threads=threads)


# Cores per process on the process path: a group as large as the machines the engine's thread
# plan was tuned on (2-4 cores), so each process's stages overlap as on such a machine.
PROCESS_CORES = 4
# From this many cores on, `executor.kind: auto` runs one engine per group of PROCESS_CORES.
# Issue 15's measurements of the one-process engine on a 16-core Xeon: 3.7x one core's
# throughput on 8 cores and 4.6x on 16, where a 4-core engine gave 2.3x, so two 4-core engines
# would give ~4.5x on 8 and four ~9x on 16. Not remeasured since the front end stopped holding
# the GIL: no machine with more than 2 cores was lent (docs/throughput.md, "The process path").
PROCESSES_FROM_CORES = 2 * PROCESS_CORES
# ... and from this many files on: each run starts its worker processes afresh (spawn and
# imports 1.2 s, models loaded and the engine started 1.55 s, then the pipeline fills: 3-5 s on
# 2 cores here, after which a warm process ran 100 files in 12.3 s against the engine's 13.9).
# From the 16-core figures above, processes save ~1 ms per window on 8 cores and ~2 on 16: a
# start-up of ~5 s is repaid after ~200-400 one-minute files.
PROCESSES_FROM_FILES = 400


def choose_executor(
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


def process_groups(
    cores: list[int] | None = None, per_process: int | None = None
) -> list[list[int]]:
    """The cores this process may use, split into groups of `per_process` (default
    PROCESS_CORES), one worker process each; a short last group joins the one before it."""
    if cores is None:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        cores = cores[: available_cores()] or list(range(available_cores()))
    size = max(1, per_process or PROCESS_CORES)
    groups = [cores[i : i + size] for i in range(0, len(cores), size)]
    if len(groups) > 1 and len(groups[-1]) < size:
        tail = groups.pop()
        groups[-1] = groups[-1] + tail
    return groups
