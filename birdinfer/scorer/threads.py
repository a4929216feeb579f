"""The cores this process may use, and one engine's threads on them.

`os.cpu_count()` reports the host's cores; a container's CPU quota (cgroup `cpu.max`) and the
process's affinity mask can allow far fewer, and runtimes that size their pools from the host's
count then thrash. The run's ExecutionPlan (birdinfer.runner.plan) sizes every engine from them.
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
class EngineThreads:
    """One streaming engine's threads: its feature workers and its model lane's runtime threads,
    on the cores it runs on (the run's ExecutionPlan gives each engine its own)."""

    cores: int
    workers: int  # feature workers: files decoded and turned into log-mels at once
    threads: int  # intra-op threads of the model runtime (the model lane)

    @classmethod
    def for_cores(
        cls, cores: int | None = None, workers: int | None = None, threads: int | None = None
    ) -> EngineThreads:
        """An engine on `cores` (default: every core this process may use): `workers` feature
        workers and `threads` runtime threads, each every core when unset.

        The engine has one model lane: its runtime's thread pool is the only one, so "runtime
        threads x lanes <= cores" is `threads <= cores`. Feature workers are a different stage
        that overlaps the model lane; idle runtime threads sleep (ONNX Runtime's spinning is off,
        BLAS is pinned to one thread), so both get every core by default: a thread sweep chose
        it (the figures are in docs/throughput.md, "Figures behind the code's choices"). Threads
        above the cores are honoured with a warning.
        """
        cores = cores or available_cores()
        workers = workers or cores
        threads = threads or cores
        for name, value in (("feature workers", workers), ("runtime threads", threads)):
            if value > cores:
                log.warning(
                    "%d %s exceed the %d available cores; expect thrashing", value, name, cores
                )
        return cls(cores=cores, workers=workers, threads=threads)

    def describe(self) -> str:
        return (
            f"{self.workers} feature workers + {self.threads} runtime threads on {self.cores} cores"
        )

    def report(self) -> dict[str, int]:
        """As the run report's "threads" section states an engine."""
        return {"cores": self.cores, "workers": self.workers, "runtime_threads": self.threads}
