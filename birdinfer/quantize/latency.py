"""Side-by-side latency: every model timed on the same batch, in one run, interleaved.

Timing one model after another lets a change in the machine's load (another process, turbo,
thermal) land on one of them; interleaving them in rounds, each round in a rotated order, spreads
it over all, and the median over rounds ignores the odd slow call. Ratios from one such run are
what this project quotes, never numbers from separate runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

Runner = Callable[[np.ndarray], object]


@dataclass(frozen=True)
class Timing:
    name: str
    batch_size: int
    ms_per_window: float  # median over rounds
    ms_per_window_rounds: tuple[float, ...]

    @property
    def spread(self) -> tuple[float, float]:
        """The 25th and 75th percentile over rounds, ms per window."""
        low, high = np.percentile(self.ms_per_window_rounds, [25, 75])
        return float(low), float(high)


def time_side_by_side(
    runners: Mapping[str, Runner],
    batch: np.ndarray,
    rounds: int = 20,
    warmup: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Timing]:
    """Median ms per window of each runner on `batch`, measured in interleaved rounds.

    Every runner is called `warmup` times first (lazy allocations, kernel selection); then each
    round calls every runner once, starting at a different runner each round.
    """
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    names = list(runners)
    for name in names:
        for _ in range(warmup):
            runners[name](batch)
    samples: dict[str, list[float]] = {name: [] for name in names}
    n = len(batch)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = clock()
            runners[name](batch)
            samples[name].append(1000.0 * (clock() - start) / n)
    return {
        name: Timing(name, n, float(np.median(values)), tuple(values))
        for name, values in samples.items()
    }
