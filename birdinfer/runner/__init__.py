"""The run around the scorer: a folder of recordings in, a submission and its report out.

`resolve_plan` decides once how the run executes (the ExecutionPlan: the executor and why, core
groups, each engine's threads, files per task, journal format, time guard); `run` follows it:
the streaming engine here, or tasks of files on a task pool, worker processes or Dask, with the
journal, the time guard, placeholder rows and the run-wide post-processing around them.
"""

from birdinfer.results import RunResult
from birdinfer.runner.journal import Journal
from birdinfer.runner.plan import ExecutionPlan, resolve_plan
from birdinfer.runner.steps import run
from birdinfer.runner.time_guard import TimeGuard

__all__ = [
    "ExecutionPlan",
    "Journal",
    "RunResult",
    "TimeGuard",
    "resolve_plan",
    "run",
]
