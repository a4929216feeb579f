"""Seconds and windows per stage, summed over threads: the run report's stage table and the
time guard's cost model both read it."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """Seconds spent per stage, summed over worker threads (so shares add up to 100%)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = defaultdict(float)
        self.windows = 0  # windows through the front end
        self.member_windows: dict[int, int] = defaultdict(int)  # windows scored, per member

    def count(self, windows: int, member: int | None = None) -> None:
        with self._lock:
            if member is None:
                self.windows += windows
            else:
                self.member_windows[member] += windows

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[stage] += elapsed
