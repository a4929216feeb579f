"""Front-end speed, side by side: ms per 5 s window for each option, and how the log-mel scales
from 1 to 2 threads (and how much of its time holds the GIL).

Configurations run interleaved in rounds (A B C ... A B C ...) and each figure is the median
over rounds, so a neighbour's load spike lands on all of them alike. Quote the machine's load
with the figures: on a shared machine they are noisy.

    python scripts/bench_frontend.py                    # every option, 2 threads at most
    python scripts/bench_frontend.py --baseline 13b8c7a # also the log-mel of that commit
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from birdinfer.config import MelConfig, from_dict  # noqa: E402
from birdinfer.frontend.logmel import LogMel  # noqa: E402

# Same shape as the default 2048/512/128 preset; each row turns one option on.
OPTIONS = {
    "default (librosa)": {},
    "htk, no filter norm, reflect": {
        "mel": {"mel_scale": "htk", "norm": None, "pad_mode": "reflect"}
    },
    "win_length 1024": {"mel": {"win_length": 1024}},
    "normalized (window)": {"mel": {"normalized": True}},
    "torchaudio dB (ref 1, amin 1e-10)": {"mel": {"ref": 1.0, "amin": 1e-10}},
    "log(x + 1e-6)": {"mel": {"amplitude": "log"}},
    "pcen": {"mel": {"amplitude": "pcen"}},
    "standardize + minmax": {
        "mel": {"normalization": [{"step": "standardize", "ddof": 1}, "minmax"]}
    },
    "3 channels, repeat": {"image": {"channels": 3}},
    "3 channels, deltas": {"image": {"channels": 3, "channel_mode": "delta"}},
    "resize 256 x 256": {"image": {"size": [256, 256]}},
    "time_mel layout": {"image": {"layout": "time_mel"}},
    "preset birdclef2023_1st": {"mel": {"preset": "birdclef2023_1st"}},
}


def old_logmel(commit: str):
    """The log-mel of an earlier commit, loaded from git, fed the old single-string settings."""
    source = subprocess.run(
        ["git", "show", f"{commit}:birdinfer/frontend/logmel.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    module = types.ModuleType("old_logmel")
    exec(compile(source, "old_logmel.py", "exec"), module.__dict__)
    mel = MelConfig()
    shim = types.SimpleNamespace(
        **{
            name: getattr(mel, name)
            for name in (
                "sample_rate",
                "n_fft",
                "hop_length",
                "n_mels",
                "fmin",
                "fmax",
                "power",
                "top_db",
                "ref",
                "center",
            )
        },
        normalization="standardize",
        frames_for=mel.frames_for,
    )
    return module.LogMel(shim)


def per_window_ms(frontend, batch: np.ndarray) -> tuple[float, float]:
    """(wall, CPU) ms per window. The CPU time of the calling thread barely moves when other
    processes load the machine, the wall time does: on a shared machine, read the CPU column."""
    start, cpu = time.perf_counter(), time.thread_time()
    frontend(batch)
    wall_ms = 1000 * (time.perf_counter() - start) / len(batch)
    return wall_ms, 1000 * (time.thread_time() - cpu) / len(batch)


def throughput(frontend, batches: list[np.ndarray], threads: int) -> float:
    """Windows per second with `threads` threads each running the front end on whole batches."""
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(frontend, batches))
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def gil_share(frontend, batch: np.ndarray, seconds: float = 1.0) -> float:
    """Share of time the front end holds the GIL: how much a pure-Python counter thread slows
    down while the front end runs in another thread (0: never holds it)."""

    def count(stop: threading.Event) -> int:
        n = 0
        while not stop.is_set():
            n += 1
        return n

    def rate(busy: bool) -> float:
        stop, result = threading.Event(), []
        counter = threading.Thread(target=lambda: result.append(count(stop)))
        start = time.perf_counter()
        counter.start()
        while time.perf_counter() - start < seconds:
            if busy:
                frontend(batch)
            else:
                time.sleep(0.01)
        stop.set()
        counter.join()
        return result[0] / (time.perf_counter() - start)

    alone, loaded = rate(False), rate(True)
    return max(0.0, 1.0 - loaded / alone)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16, help="windows per call")
    parser.add_argument("--baseline", help="git commit whose log-mel to time beside (e.g. 13b8c7a)")
    parser.add_argument("--only", action="append", help="option names to run (default: all)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    batch = (0.1 * rng.standard_normal((args.batch, 160000))).astype(np.float32)
    frontends = {
        name: LogMel(*_settings(spec))
        for name, spec in OPTIONS.items()
        if not args.only or name in args.only
    }
    if args.baseline:
        frontends = {f"{args.baseline} (before)": old_logmel(args.baseline), **frontends}
    with threadpool_limits(1):  # one BLAS thread: the threads below are the only parallelism
        for frontend in frontends.values():
            frontend(batch[:2])  # warm-up: buffers, imports
        times = {name: [] for name in frontends}
        for _ in range(args.rounds):
            for name, frontend in frontends.items():
                times[name].append(per_window_ms(frontend, batch))
        first = times[next(iter(frontends))]
        ref_wall = statistics.median(w for w, _ in first)
        ref_cpu = statistics.median(c for _, c in first)
        print(f"ms per 5 s window, 1 thread, batch {args.batch}, median of {args.rounds} rounds")
        for name, values in times.items():
            wall = statistics.median(w for w, _ in values)
            cpu = statistics.median(c for _, c in values)
            print(
                f"  {name:<36} wall {wall:6.2f} ms x{wall / ref_wall:4.2f}   "
                f"CPU {cpu:6.2f} ms x{cpu / ref_cpu:4.2f}"
            )

        batches = [batch] * 8
        print("log-mel alone, windows per second (1 thread vs 2 threads), median of rounds")
        scaling = {
            name: ([], [])
            for name in frontends
            if name.startswith(("default", args.baseline or "-"))
        }
        for _ in range(args.rounds):
            for name in scaling:
                scaling[name][0].append(throughput(frontends[name], batches, 1))
                scaling[name][1].append(throughput(frontends[name], batches, 2))
        for name, (one, two) in scaling.items():
            a, b = statistics.median(one), statistics.median(two)
            gil = gil_share(frontends[name], batch)
            print(
                f"  {name:<36} 1 thread {a:6.0f}/s  2 threads {b:6.0f}/s  ratio {b / a:4.2f}  "
                f"GIL held {100 * gil:4.1f}% of its time"
            )
    return 0


def _settings(spec: dict):
    config = from_dict({"mel": spec.get("mel", {}), "image": spec.get("image", {})})
    return config.mel, config.image


if __name__ == "__main__":
    raise SystemExit(main())
