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
        self.member_rows: dict[int, int] = defaultdict(int)  # rows scored, per member
        # Seconds and rows of each distinct front end (within the "mel" stage), for the time
        # guard: dropping the last member that needs a front end saves its cost too.
        self.part_seconds: dict[str, float] = defaultdict(float)
        self.part_rows: dict[str, int] = defaultdict(int)

    def count(self, windows: int, member: int | None = None, rows: int | None = None) -> None:
        """`windows` model inputs (through the front end, or scored by `member`); a member's
        inputs cover `rows` rows (default: as many as inputs)."""
        with self._lock:
            if member is None:
                self.windows += windows
            else:
                self.member_windows[member] += windows
                self.member_rows[member] += windows if rows is None else rows

    def snapshot(self) -> dict[str, float]:
        """The stage seconds so far (a copy: other threads go on adding)."""
        with self._lock:
            return dict(self.seconds)

    def add(self, seconds: dict[str, float]) -> None:
        """Add stage seconds measured elsewhere (a mapped run's workers)."""
        with self._lock:
            for stage, value in seconds.items():
                self.seconds[stage] += value

    def part(self, name: str, rows: int):
        """Time a part of a stage (one front end), kept apart from the stage table."""

        def add(elapsed: float) -> None:
            self.part_seconds[name] += elapsed
            self.part_rows[name] += rows

        return self._timed(add)

    def __call__(self, stage: str):
        def add(elapsed: float) -> None:
            self.seconds[stage] += elapsed

        return self._timed(add)

    @contextmanager
    def _timed(self, add) -> Iterator[None]:
        """Time the block and hand the seconds to `add`, under the lock (threads share it)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                add(elapsed)
