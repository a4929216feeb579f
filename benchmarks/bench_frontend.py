"""Front-end speed, side by side: ms per 5 s window for each option, and how the log-mel scales
from 1 to 2 threads beside a GIL-free reference, and a bound on the share of its time that
holds the GIL.

Configurations run interleaved in rounds (A B C ... A B C ...) and each figure is the median
over rounds, so a neighbour's load spike lands on all of them alike. Quote the machine's load
with the figures: on a shared machine they are noisy.

    python benchmarks/bench_frontend.py                    # every option, 2 threads at most
    python benchmarks/bench_frontend.py --baseline 94d2ed7 # also the log-mel of that commit
    python benchmarks/bench_frontend.py --baseline 94d2ed7 --only 'default (librosa)' --rounds 15
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from birdinfer.config import from_dict  # noqa: E402
from birdinfer.frontend import LogMel  # noqa: E402

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


def baseline_logmel(commit: str):
    """The log-mel of an earlier commit, default settings: that commit's whole `birdinfer`
    package, extracted from git and imported as `birdinfer_<commit>`, so it runs with its own
    config, filterbank and framing beside today's."""
    root = Path(__file__).resolve().parents[1]
    name = f"birdinfer_{commit}"
    target = Path(tempfile.mkdtemp(prefix="bench_frontend_"))
    archive = subprocess.run(
        ["git", "archive", commit, "birdinfer"], capture_output=True, check=True, cwd=root
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    package = target / name
    (target / "birdinfer").rename(package)
    for source in package.rglob("*.py"):
        text = source.read_text()
        source.write_text(re.sub(r"\bbirdinfer\.", f"{name}.", text))
    sys.path.insert(0, str(target))
    config = importlib.import_module(f"{name}.config")
    logmel = importlib.import_module(f"{name}.frontend.logmel")
    return logmel.LogMel(config.MelConfig())


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


def gil_bound(frontend, batch: np.ndarray, rounds: int) -> float:
    """An upper bound on the share of the front end's time that holds the GIL: its CPU time on
    windows of 2048 samples (5 frames: the same Python-level calls, ~1/60 of the numeric work)
    over its CPU time on the full windows. Both are CPU times of one thread, measured in
    alternation, so other processes' load moves them alike. (A counter thread's slowdown, the
    probe this replaced, read 25-60% even for one sgemm when the machine was loaded.)"""
    tiny = np.ascontiguousarray(batch[:, :2048])
    frontend(tiny)
    full_cpu, tiny_cpu = [], []
    for _ in range(rounds):
        full_cpu.append(per_window_ms(frontend, batch)[1])
        tiny_cpu.append(per_window_ms(frontend, tiny)[1])
    return statistics.median(tiny_cpu) / statistics.median(full_cpu)


def gil_free_reference(batch: np.ndarray):
    """A stand-in that certainly releases the GIL (float32 matrix products in BLAS), about as
    long per call as the front end: its 1-vs-2-thread ratio is what this machine allows now."""
    a = np.random.default_rng(1).standard_normal((384, 384)).astype(np.float32)

    def products(windows: np.ndarray) -> None:
        for _ in range(len(windows)):
            a @ a

    return products


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
        frontends = {f"{args.baseline} (before)": baseline_logmel(args.baseline), **frontends}
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
        scaled = {
            name: frontends[name]
            for name in frontends
            if name.startswith(("default", args.baseline or "-"))
        }
        scaled["GIL-free reference (sgemm)"] = gil_free_reference(batch)
        print(
            "log-mel alone, windows per second (1 thread vs 2 threads), median of rounds; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        scaling = {name: ([], []) for name in scaled}
        for _ in range(args.rounds):
            for name, frontend in scaled.items():
                scaling[name][0].append(throughput(frontend, batches, 1))
                scaling[name][1].append(throughput(frontend, batches, 2))
        ratios = {n: statistics.median(b) / statistics.median(a) for n, (a, b) in scaling.items()}
        reference = ratios["GIL-free reference (sgemm)"]
        for name, (one, two) in scaling.items():
            a, b = statistics.median(one), statistics.median(two)
            bound = (
                ""
                if name not in frontends
                else (f"  GIL held <= {100 * gil_bound(frontends[name], batch, args.rounds):4.1f}%")
            )
            print(
                f"  {name:<36} 1 thread {a:6.0f}/s  2 threads {b:6.0f}/s  ratio {b / a:4.2f}"
                f"  (x{ratios[name] / reference:4.2f} of the reference's){bound}"
            )
    return 0


def _settings(spec: dict):
    config = from_dict({"mel": spec.get("mel", {}), "image": spec.get("image", {})})
    return config.mel, config.image


if __name__ == "__main__":
    raise SystemExit(main())
