"""The engine against its stages, on 1 and 2 cores: does anything serialise, and where the time goes.

For each core count (a child process pinned with sched_setaffinity, the counts interleaved in
rounds), in one process with the models loaded first:
  decode alone       every file's windows, `cores` threads
  front end alone    the log-mel of those windows, `cores` threads
  model alone        OpenVINO on those features in batches, `cores` runtime threads
  end to end         the streaming engine over the same files
Figures are medians over rounds, wall and CPU (the process's) in ms per 5 s window, with
e2e / (decode + front end + model) and each stage's 2-core speed-up over 1 core. The last round
of the largest core count also prints a per-thread timeline of the engine's stages.

    python benchmarks/bench_engine.py --audio reports/peers/work/audio --files 24 --rounds 3 \
        --model reports/peers/work/variants/efficientnet_b0_234.xml
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(args: argparse.Namespace) -> dict:
    import numpy as np
    from threadpoolctl import threadpool_limits

    from birdinfer.audio import WindowReader
    from birdinfer.config import from_dict
    from birdinfer.scorer.ensemble import Ensemble
    from birdinfer.scorer.streaming import score_files
    from birdinfer.scorer.threads import EngineThreads

    files = sorted(Path(args.audio).glob("*.ogg"))[: args.files]
    config = from_dict(
        {
            "input_dir": str(args.audio),
            "models": [args.model],
            "inference": {"batch_size": args.batch, "allow_rejected_models": True},
            "output": {"progress": False},
        }
    )
    cores = len(os.sched_getaffinity(0))
    ensemble = Ensemble(config, EngineThreads.for_cores(cores))
    frontend = next(iter(ensemble.frontends.values())).logmel
    backend = ensemble.members[0].backend
    out = {"cores": cores}

    def timed(name, fn):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        out[name] = (time.perf_counter() - start, time.process_time() - cpu)
        return result

    def decode_all():
        with ThreadPoolExecutor(cores) as pool:
            return list(
                pool.map(lambda p: np.concatenate(list(WindowReader(p, config.audio))), files)
            )

    with threadpool_limits(1, user_api="blas"):
        windows = timed("decode", decode_all)
        batches = [w[i : i + args.batch] for w in windows for i in range(0, len(w), args.batch)]
        with ThreadPoolExecutor(cores) as pool:
            features = timed("front end", lambda: list(pool.map(frontend, batches)))
        timed("model", lambda: [backend(f) for f in features])
    timeline = _timeline_class()()
    ensemble.timer = timeline
    timed("end to end", lambda: score_files(ensemble, files))
    out["windows"] = sum(len(w) for w in windows)
    out["timeline"] = timeline.summary(out["end to end"][0]) if args.timeline else None
    return out


def _timeline_class():
    from birdinfer.scorer.stage_timer import StageTimer

    class Recording(StageTimer):
        """The engine's stage timer, also keeping (thread, stage, start, end) of every interval."""

        def __init__(self) -> None:
            super().__init__()
            self.intervals: list[tuple[str, str, float, float]] = []
            self.origin = time.perf_counter()

        def __call__(self, stage: str):
            timer = super().__call__(stage)
            recording = self

            class Span:
                def __enter__(self):
                    self.start = time.perf_counter()
                    return timer.__enter__()

                def __exit__(self, *exc):
                    end = time.perf_counter()
                    name = threading.current_thread().name
                    recording.intervals.append((name, stage, self.start, end))
                    return timer.__exit__(*exc)

            return Span()

        def summary(self, wall: float, columns: int = 72) -> list[str]:
            """One line per thread: each column the stage it spent most of that slice in."""
            marks = {"decode": "d", "mel": "m", "postprocess": "p"}
            lines = []
            for thread in sorted({i[0] for i in self.intervals}):
                row = []
                for c in range(columns):
                    lo = self.origin + wall * c / columns
                    hi = self.origin + wall * (c + 1) / columns
                    busy: dict[str, float] = {}
                    for t, stage, start, end in self.intervals:
                        if t == thread and end > lo and start < hi:
                            busy[stage] = busy.get(stage, 0) + min(end, hi) - max(start, lo)
                    if not busy or max(busy.values()) < 0.25 * (hi - lo):
                        row.append(".")
                    else:
                        stage = max(busy, key=busy.get)
                        row.append(marks.get(stage, "M" if stage.startswith("model") else "?"))
                lines.append(f"{thread[:24]:<24} {''.join(row)}")
            return lines

    return Recording


def parent(args: argparse.Namespace) -> int:
    counts = [int(c) for c in args.cores.split(",")]
    cpus = sorted(os.sched_getaffinity(0))
    runs: dict[int, list[dict]] = {c: [] for c in counts}
    for round_ in range(args.rounds):
        for cores in counts:
            last = round_ == args.rounds - 1 and cores == max(counts)
            argv = [sys.executable, __file__, "--child", *sys.argv[1:]]
            if last:
                argv.append("--timeline")
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                preexec_fn=lambda c=cores: os.sched_setaffinity(0, cpus[:c]),
            )
            if done.returncode:
                print(done.stderr[-3000:])
                return 1
            runs[cores].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"{args.files} files, {args.model}, batch {args.batch}, median of {args.rounds} rounds; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    stages = ("decode", "front end", "model", "end to end")
    medians = {}
    for cores, results in runs.items():
        windows = results[0]["windows"]
        for stage in stages:
            wall = 1000 * statistics.median(r[stage][0] for r in results) / windows
            cpu = 1000 * statistics.median(r[stage][1] for r in results) / windows
            medians[cores, stage] = wall
            print(f"  {cores} core(s)  {stage:<11} wall {wall:6.2f} ms/window  CPU {cpu:6.2f}")
        total = sum(medians[cores, s] for s in stages[:3])
        print(
            f"  {cores} core(s)  end to end / sum of stages = "
            f"{medians[cores, 'end to end'] / total:.2f}"
        )
    if len(counts) > 1:
        low, high = min(counts), max(counts)
        speedups = ", ".join(f"{s} {medians[low, s] / medians[high, s]:.2f}x" for s in stages)
        print(f"  {high} cores over {low}: {speedups}")
    timeline = runs[max(counts)][-1].get("timeline")
    if timeline:
        print("timeline of the last end-to-end run (d decode, m mel, M model, p postprocess):")
        print("\n".join(f"  {line}" for line in timeline))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", default="reports/peers/work/audio")
    parser.add_argument("--model", default="reports/peers/work/variants/efficientnet_b0_234.xml")
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", default="1,2", help="core counts to compare")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timeline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    return parent(args)


if __name__ == "__main__":
    raise SystemExit(main())
