"""The client side of a file map: tasks of a few files on any `concurrent.futures.Executor`
(a thread pool here, worker processes, a Dask cluster), and their outcomes gathered in file order.

    client (run)                              executor workers (threads or Dask processes)
    tasks of a few files  --- submit --->     worker.score_task: the process's shared engine
                                              -> one journal entry (parquet partition) per file
    assemble the submission                   <--- outcome: the scored files' results, failures

Every scored file is in the journal folder beside the output before its task returns: a task that
is retried (its worker died) skips the files whose entries exist, and `--resume` works across
workers and runs. The outcome also carries the results the entries were written from, so the
client reads back only the entries it did not get that way (a retried or failed task's): reading
every partition again cost the client CPU on the cores the workers use (docs/distributed.md).
Dask's client offers a `concurrent.futures` executor, so nothing here is Dask-specific:
`dask_cluster` opens it.

Every task in a process feeds that process's one engine (`shared_engine`), which runs on all the
process's cores: tasks only wait for their files, so a worker needs two task threads or more to
keep the engine fed across task boundaries (local clusters get two).
"""

from __future__ import annotations

import dataclasses
import logging
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
from pathlib import Path

from tqdm import tqdm

from birdinfer.config import Config
from birdinfer.errors import ConfigError, JournalError
from birdinfer.results import FileFailure, FileResult
from birdinfer.runner.journal import Journal
from birdinfer.runner.plan import ExecutionPlan
from birdinfer.runner.process_pool import WorkerPool, process_executor
from birdinfer.runner.retries import WorkerDeaths
from birdinfer.runner.worker import (
    FileTask,
    TaskOutcome,
    abort_worker_engines,
    close_worker_engines,
    reset_abort,
    score_task,
)
from birdinfer.scorer.ensemble import Ensemble

log = logging.getLogger(__name__)


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


def map_files(
    ensemble: Ensemble,
    files: list[Path],
    stems: list[str],
    journal: Journal,
    plan: ExecutionPlan,
    executor: Executor | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> tuple[list[FileResult], list[FileFailure], dict[str, dict[str, int]]]:
    """Score files as tasks on `executor`, or on the executor `plan` names (opened as it says);
    `on_result` sees each file's result here as its task ends. Also returns what each worker's
    engine ran (threads), by worker."""
    config = ensemble.config
    progress = tqdm(total=len(files), unit="file", disable=not config.output.progress, leave=False)
    try:
        if executor is not None:
            return score_on_executor(
                ensemble, files, stems, executor, journal, plan, progress.update, on_result
            )
        with open_executor(config, plan) as opened:
            return score_on_executor(
                ensemble, files, stems, opened, journal, plan, progress.update, on_result
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
    plan: ExecutionPlan,
    on_task_done: Callable[[int], None] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> tuple[list[FileResult], list[FileFailure], dict[str, dict[str, int]]]:
    """Map tasks of `plan.files_per_task` files over `executor`; results in file order, and the
    threads each worker's engine ran.

    A task that fails for good (Dask gave up after its workers died, say) costs its files that
    were not journaled yet, each reported with the reason; the other tasks' files are intact.
    On a WorkerPool, a dead worker's files are scored again on a new pool (`retries`).
    """
    tasks = _tasks(ensemble.config, files, stems, journal, plan)
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
    return (*tally.in_order(files), {o.worker: o.threads for o in tally.outcomes})


def _tasks(
    config: Config, files: list[Path], stems: list[str], journal: Journal, plan: ExecutionPlan
) -> list[FileTask]:
    """Tasks of `plan.files_per_task` files each (their config without a progress bar)."""
    config = dataclasses.replace(config, output=dataclasses.replace(config.output, progress=False))
    size = plan.files_per_task
    return [
        FileTask(
            config=config,
            files=tuple(str(p) for p in files[i : i + size]),
            stems=tuple(stems[i : i + size]),
            journal=str(journal.folder),
            stamp=journal.stamp,
            plan=plan,
        )
        for i in range(0, len(files), size)
    ]


@contextmanager
def open_executor(config: Config, plan: ExecutionPlan) -> Iterator[Executor]:
    """The executor `plan` names, set up as it says: a pool of task threads here, worker
    processes on the plan's core groups, or a Dask cluster (`config.executor` gives its
    address). Its tasks feed each process's one engine, on the threads the plan gives it."""
    if plan.kind == "tasks":
        reset_abort()
        pool = ThreadPoolExecutor(plan.task_threads, thread_name_prefix="birdinfer-task")
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
    if plan.kind == "processes":
        groups = [list(g) for g in plan.groups]
        log.info("%d worker processes on cores %s", len(groups), groups)
        with process_executor(groups) as pool:
            yield pool  # each process: its engine on its core group (process_pool._pin)
        return
    if plan.kind != "dask":
        raise ConfigError(f"config key 'executor.kind': '{plan.kind}' is not a file map")
    from birdinfer.runner.dask_cluster import dask_executor

    with dask_executor(config.executor.scheduler, plan.dask_workers, plan.task_threads) as client:
        yield client
