"""A pool of worker processes, each pinned to its own group of cores, for many-core nodes.

    parent (run)                            process 1 (cores 0-3)    process 2 (cores 4-7) ...
    tasks of files --- ProcessPoolExecutor ---> score_task: its own models (loaded once per
    submission from the journal  <--- facts     process), its own streaming engine on its cores

Threads share one interpreter: however little each stage holds the GIL, the hand-offs between
a node's feature workers and its model lane grow with the cores (docs/throughput.md, "Figures
behind the code's choices"). Here each process runs the same engine as a 4-core machine would,
with its own GIL, and the processes share nothing but the journal folder. Models load once per
process (RSS grows with the processes, not with the files). `executor.kind: processes` picks it;
the run's ExecutionPlan sizes the groups and
each group's engine (`plan.process_groups`).

Processes are started with "spawn", never "fork": a fork of a parent whose runtimes have
started their thread pools (OpenVINO, ONNX Runtime, OpenBLAS) can deadlock in the child.

No worker outlives the run: a worker ignores SIGINT (Ctrl-C reaches the whole process group; the
parent stops its workers itself), the parent kills its workers when it is interrupted or
terminated, and the kernel kills a worker whose parent died any other way (PR_SET_PDEATHSIG).
A ProcessPoolExecutor cannot replace a dead worker: the first death breaks the pool and fails
every task in it. `WorkerPool` tells the tasks whose own worker died from those that only shared
the pool, and starts a new pool for their retries (`retries`).
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


class WorkerPool(Executor):
    """A ProcessPoolExecutor of one process per core group, each pinned to its group, that can
    be started afresh (`restart`) after a worker died."""

    def __init__(self, groups: list[list[int]]) -> None:
        self.groups = groups
        self._context = multiprocessing.get_context("spawn")
        # Each task writes its worker's pid here as it starts: after a death, which tasks ran
        # on the worker that died.
        self._started = Path(tempfile.mkdtemp(prefix="birdinfer-tasks-"))
        self._ids = itertools.count()
        self._task_of: dict[Future, int] = {}
        self._processes: dict[int, multiprocessing.process.BaseProcess] = {}
        self._pool = self._open()

    def _open(self) -> ProcessPoolExecutor:
        free = self._context.Queue()
        for group in self.groups:
            free.put(group)
        return ProcessPoolExecutor(
            max_workers=len(self.groups),
            mp_context=self._context,
            initializer=_start_worker,
            initargs=(free, os.getpid()),
        )

    def submit(self, fn, /, *args, **kwargs) -> Future:
        task = next(self._ids)
        future = self._pool.submit(_run_task, str(self._started), task, fn, *args, **kwargs)
        self._task_of[future] = task
        # The pool starts its processes on submit; kept to read their exit codes after a death.
        self._processes.update(getattr(self._pool, "_processes", None) or {})
        return future

    def death(self, future: Future) -> str | None:
        """How the worker that ran `future`'s task died ("killed by signal 9"), once the pool
        broke; None when the task had not started, or its worker was only stopped with the
        broken pool (SIGTERM)."""
        try:
            pid = int((self._started / str(self._task_of[future])).read_text())
        except (KeyError, OSError, ValueError):
            return None
        process = self._processes.get(pid)
        if process is None:
            return None
        # The pool's own thread reaps its processes too: its exit code may land a moment later.
        deadline = time.monotonic() + 10
        while (code := process.exitcode) is None and time.monotonic() < deadline:
            process.join(timeout=0.1)
        if code in (None, 0, -signal.SIGTERM):
            return None
        return f"killed by signal {-code}" if code < 0 else f"exited with code {code}"

    def restart(self) -> None:
        """A new pool of fresh workers (the broken one is shut down first)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._task_of.clear()
        self._pool = self._open()

    def stop_now(self) -> None:
        """Kill every worker: what they were scoring is dropped (its journal entries stay)."""
        for process in list(self._processes.values()):
            if process.is_alive():
                process.kill()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
        shutil.rmtree(self._started, ignore_errors=True)


@contextmanager
def process_executor(groups: list[list[int]]) -> Iterator[WorkerPool]:
    """A WorkerPool of one process per core group; interrupted (Ctrl-C, SIGTERM, an error),
    it kills its workers rather than wait for their tasks."""
    pool = WorkerPool(groups)
    try:
        yield pool
    except BaseException:
        pool.stop_now()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# The core group this worker process is pinned to (None outside the process path).
_pinned: tuple[int, ...] | None = None


def pinned_group() -> tuple[int, ...] | None:
    """The core group this process was pinned to as a worker, or None."""
    return _pinned


def _run_task(folder: str, task: int, fn, /, *args, **kwargs):
    (Path(folder) / str(task)).write_text(str(os.getpid()))
    return fn(*args, **kwargs)


def _start_worker(free, parent: int) -> None:
    """In a new worker: die with the parent, leave Ctrl-C to it, and pin to a core group."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    _pin(free)


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux's PR_SET_PDEATHSIG), so
    that a parent killed outright (SIGKILL, the OOM killer) leaves no worker scoring for no one."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux with glibc
        return
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _pin(free) -> None:
    """In a new worker: take one core group and keep this process (and its runtimes' thread
    pools, sized from the affinity mask by `available_cores`) on it."""
    group = free.get()
    global _pinned
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, group)
    _pinned = tuple(group)  # its engine's threads: the plan's for this group (pinned_group)
    log.info("worker %d pinned to cores %s", os.getpid(), group)
