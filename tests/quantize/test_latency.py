"""Latency: models timed side by side in interleaved, rotated rounds; medians reported."""

import numpy as np
import pytest

from birdinfer.quantize.latency import time_side_by_side


def test_timing_interleaves_models_in_rotated_rounds_and_takes_medians():
    now = [0.0]
    calls = []
    cost = {"a": [0.016, 0.032, 0.016], "b": [0.160, 0.160, 0.016]}  # seconds per call of 16

    def runner(name):
        def run(batch):
            calls.append(name)
            if len(calls) > 2:  # after the warm-up calls
                now[0] += cost[name].pop(0)

        return run

    timings = time_side_by_side(
        {"a": runner("a"), "b": runner("b")},
        np.zeros((16, 1)),
        rounds=3,
        warmup=1,
        clock=lambda: now[0],
    )
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert timings["a"].ms_per_window == pytest.approx(1.0)  # median of 1, 2, 1 ms
    assert timings["b"].ms_per_window == pytest.approx(10.0)  # median of 10, 10, 1 ms
