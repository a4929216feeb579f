"""The thread budget: file workers x runtime threads <= the cores this process may really use.

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
    """Fill in whichever of workers/threads is unset so that workers x threads <= cores.

    Default: a feature worker per core and one runtime thread. The stages overlap (decode and mel
    of the next files run while the model scores the current batch), so one model thread plus a
    worker per core keeps every core busy without oversubscribing; docs/throughput.md has the
    sweep that chose it. An explicit pair that oversubscribes is honoured with a warning.
    """
    cores = cores or available_cores()
    if threads is None and workers is None:
        threads, workers = 1, cores
    elif threads is None:
        threads = max(1, cores // workers)
    elif workers is None:
        workers = max(1, cores // threads)
    if workers * threads > cores:
        log.warning(
            "%d workers x %d threads = %d exceeds the %d available cores; expect thrashing",
            workers,
            threads,
            workers * threads,
            cores,
        )
    return ThreadPlan(cores=cores, workers=workers, threads=threads)
