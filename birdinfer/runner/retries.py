"""What a dead worker process costs a run on `executor.kind: processes` (the OOM killer, say).

The first death breaks the whole process pool: every task in it fails. The tasks whose own
worker died are suspects: each of their files not journaled yet is scored again alone, in a task
of its own, on a new pool, so that a second death names the file that caused it. A file in flight
in two deaths is skipped, named, with both causes; the tasks that only shared the broken pool go
again as they were, at no charge. Journaled files are never scored again. Dask keeps its own
count (`distributed.scheduler.allowed-failures`) and is left to it.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from birdinfer.errors import display_path
from birdinfer.results import FileFailure, FileResult
from birdinfer.runner.journal import Journal
from birdinfer.runner.process_pool import WorkerPool

# A worker.FileTask (a frozen dataclass with `files` and `stems`): imported there, not here.
FileTask = Any

log = logging.getLogger(__name__)

# Deaths a file may be in flight for before it is skipped.
DEATHS_PER_FILE = 2


class WorkerDeaths:
    """The retries after each death of a WorkerPool's worker, and the files they cost."""

    def __init__(self, pool: WorkerPool, journal: Journal, tasks: int) -> None:
        self.pool = pool
        self.journal = journal
        self.deaths: dict[str, list[str]] = {}  # file -> how each worker it was on died
        # Deaths no task owns (a worker killed between tasks) charge no file: bounded here.
        self.restarts_left = 2 * tasks + 2

    def retry(
        self, lost: list[tuple[Future, FileTask]]
    ) -> tuple[list[FileTask], list[FileFailure], list[FileResult]]:
        """Start a new pool for the broken tasks `lost`: the tasks to submit to it, the files
        skipped, and the files their tasks had journaled before the death."""
        causes = [self.pool.death(future) for future, _ in lost]
        self.pool.restart()
        self.restarts_left -= 1
        retries: list[FileTask] = []
        skipped: list[FileFailure] = []
        journaled: list[FileResult] = []
        for (_, task), cause in zip(lost, causes, strict=True):
            left = []
            for path, stem in zip(task.files, task.stems, strict=True):
                stored = self.journal.load(Path(path))
                if stored is not None:
                    journaled.append(stored)
                elif self.restarts_left < 0:
                    skipped.append(FileFailure(path, "worker processes kept dying"))
                else:
                    left.append((path, stem))
            if cause is None:
                if left:
                    retries.append(_task_of(task, left))
                continue
            log.warning(
                "a worker process died (%s) scoring %s: scoring them again on a new worker",
                cause,
                ", ".join(display_path(Path(p)) for p, _ in left),
            )
            for path, stem in left:
                self.deaths.setdefault(path, []).append(cause)
                if len(self.deaths[path]) >= DEATHS_PER_FILE:
                    why = "; ".join(self.deaths[path])
                    skipped.append(FileFailure(path, f"its worker process died twice ({why})"))
                else:
                    retries.append(_task_of(task, [(path, stem)]))
        return retries, skipped, journaled


def _task_of(task: FileTask, files: list[tuple[str, str]]) -> FileTask:
    return dataclasses.replace(
        task, files=tuple(p for p, _ in files), stems=tuple(s for _, s in files)
    )
