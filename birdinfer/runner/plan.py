"""How a run executes: the executor `auto` picks, and the core groups of the process path."""

from __future__ import annotations

import os

from birdinfer.scorer.threads import available_cores

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
