"""A pool of worker processes, each pinned to its own group of cores, for many-core nodes.

    parent (run)                            process 1 (cores 0-3)    process 2 (cores 4-7) ...
    tasks of files --- ProcessPoolExecutor ---> score_task: its own models (loaded once per
    submission from the journal  <--- facts     process), its own streaming engine on its cores

Threads share one interpreter: however little each stage holds the GIL, the hand-offs between
a node's feature workers and its model lane grow with the cores (issue 15 measured 4.6x on 16
cores with one engine). Here each process runs the same engine as a 4-core machine would, with
its own GIL, and the processes share nothing but the journal folder. Models load once per
process (RSS grows with the processes, not with the files). `executor.kind: processes` picks it;
`threads.process_groups` sizes the groups.

Processes are started with "spawn", never "fork": a fork of a parent whose runtimes have
started their thread pools (OpenVINO, ONNX Runtime, OpenBLAS) can deadlock in the child.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def process_executor(groups: list[list[int]]) -> Iterator[Executor]:
    """A ProcessPoolExecutor of one process per core group, each pinned to its group."""
    context = multiprocessing.get_context("spawn")
    free = context.Queue()
    for group in groups:
        free.put(group)
    pool = ProcessPoolExecutor(
        max_workers=len(groups), mp_context=context, initializer=_pin, initargs=(free,)
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pin(free) -> None:
    """In a new worker: take one core group and keep this process (and its runtimes' thread
    pools, sized from the affinity mask by `available_cores`) on it."""
    group = free.get()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, group)
    # A task's runtime threads: this process's cores (executors.worker_cores reads it).
    os.environ["BIRDINFER_WORKER_CORES"] = str(len(group))
    log.info("worker %d pinned to cores %s", os.getpid(), group)
