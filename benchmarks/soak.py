"""Soak benchmark: many short recordings through one run, resident memory sampled as files finish.

A leak per file (a buffer kept, a session re-created, a queue that never drains) shows up as RSS
rising with the file count, which a 40-file benchmark cannot see. The verdict compares the
median RSS just before the halfway point (after warm-up: runtimes grow their arenas over the first
batches) with the median of the last tenth of the files, and fits the slope over the second half.

    python benchmarks/soak.py [--files 1000] [--report-dir reports/soak]
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from benchmark import proc_status_mb

from birdinfer.atomic import write_atomic, write_json_atomic
from birdinfer.config import from_dict
from birdinfer.runner.steps import run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SoakSettings:
    files: int = 1000
    min_seconds: float = 5.0
    max_seconds: float = 20.0
    model: str = "builtin:demo"
    report_dir: Path = Path("reports/soak")
    work_dir: Path = Path("reports/soak/audio")
    # "No growth": the last tenth's median RSS may exceed the median just before halfway by at
    # most this (a leak of 20 kB per file over 500 files would exceed it).
    allowed_growth_mb: float = 10.0
    seed: int = 4242


def rss_mb() -> float:
    """This process's resident set size now (VmRSS), in MB."""
    now = proc_status_mb("VmRSS")
    if now is None:
        raise RuntimeError("no VmRSS in /proc/self/status (not Linux?)")
    return now


def write_short_files(folder: Path, settings: SoakSettings, sample_rate: int = 32000) -> int:
    """Seeded FLAC files of noise and a tone, lengths spread over [min, max] seconds; returns
    the total seconds. Existing files of the same count are reused."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(settings.seed)
    lengths = rng.uniform(settings.min_seconds, settings.max_seconds, settings.files)
    for i, seconds in enumerate(lengths):
        path = folder / f"soak_{i:05d}.flac"
        if path.exists():
            continue
        n = round(seconds * sample_rate)
        t = np.arange(n) / sample_rate
        tone = 0.2 * np.sin(2 * np.pi * rng.uniform(500, 8000) * t)
        noise = 0.02 * rng.standard_normal(n)
        sf.write(str(path), (tone + noise).astype(np.float32), sample_rate, subtype="PCM_16")
    return float(lengths.sum())


def growth(samples: list[tuple[int, float, float]]) -> dict[str, float]:
    """RSS growth over the second half of a run, from (files done, seconds, MB) samples.

    The first half is warm-up: ONNX Runtime's CPU arena grows in steps to a high-water mark as
    batches of new sizes arrive (the engine sends partial batches when decoding lags), which is
    bounded, not a leak. A leak keeps growing: the last tenth's median is compared with the
    median of the tenth before the halfway point, and the slope is fitted over the second half.
    """
    if len(samples) < 20:
        raise ValueError(f"{len(samples)} samples: too few to judge growth (need >= 20)")
    files = np.array([s[0] for s in samples], dtype=np.float64)
    mb = np.array([s[2] for s in samples])
    tenth, half = len(mb) // 10, len(mb) // 2
    middle = float(np.median(mb[half - tenth : half]))
    late = float(np.median(mb[-tenth:]))
    slope = float(np.polyfit(files[half:], mb[half:], 1)[0]) * 1000
    return {
        "start_mb": round(float(mb[0]), 1),
        "middle_mb": round(middle, 1),
        "late_mb": round(late, 1),
        "growth_mb": round(late - middle, 1),
        "growth_percent": round(100 * (late - middle) / middle, 2),
        "slope_mb_per_1000_files": round(slope, 2),
        "peak_mb": round(float(mb.max()), 1),
    }


def run_soak(settings: SoakSettings) -> dict[str, Any]:
    audio_seconds = write_short_files(settings.work_dir, settings)
    config = from_dict(
        {
            "input_dir": str(settings.work_dir),
            "models": [settings.model],
            # RSS is sampled in this process: the engine's, whatever the cores.
            "executor": {"kind": "engine"},
            "output": {
                "submission": str(settings.report_dir / "soak_submission.csv"),
                "progress": False,
            },
        }
    )
    samples: list[tuple[int, float, float]] = []
    started = time.perf_counter()

    def sample(_result) -> None:
        samples.append((len(samples) + 1, time.perf_counter() - started, rss_mb()))

    result = run(config, on_file=sample)
    verdict = growth(samples)
    verdict["passed"] = verdict["growth_mb"] <= settings.allowed_growth_mb
    scores_mb = sum(r.scores.nbytes for r in result.files) / 2**20
    return {
        "files": len(result.files),
        "skipped": len(result.failures),
        "windows": result.windows,
        "audio_minutes": round(audio_seconds / 60, 1),
        "wall_seconds": round(result.wall_seconds, 1),
        "model": settings.model,
        "allowed_growth_mb": settings.allowed_growth_mb,
        # The results kept for the submission grow with the file count by design.
        "results_mb": round(scores_mb, 2),
        **verdict,
        "samples": [
            {"files": f, "seconds": round(t, 2), "rss_mb": round(m, 1)} for f, t, m in samples
        ],
    }


def write_soak_report(data: dict[str, Any], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "soak.json", "md": folder / "soak.md"}
    write_json_atomic(data, paths["json"])
    text = markdown(data)
    write_atomic(paths["md"], lambda handle: handle.write(text))
    with contextlib.suppress(ImportError):  # matplotlib: benchmarks/requirements.txt
        paths["png"] = chart(data, folder / "soak.png")
    return paths


def markdown(data: dict[str, Any]) -> str:
    verdict = "no growth" if data["passed"] else "GROWTH"
    lines = [
        "# Soak: resident memory over a long run",
        "",
        f"{data['files']} files ({data['audio_minutes']} min of audio, {data['windows']} windows, "
        f"{data['skipped']} skipped) in {data['wall_seconds']} s with {data['model']}.",
        "",
        f"- RSS after the first file: {data['start_mb']} MB (the first half is warm-up: "
        "runtime arenas grow to their high-water mark)",
        f"- RSS, median of the tenth of the files before halfway: {data['middle_mb']} MB",
        f"- RSS, median of the last tenth: {data['late_mb']} MB "
        f"({data['growth_mb']:+} MB, {data['growth_percent']:+}%; allowed "
        f"{data['allowed_growth_mb']} MB): **{verdict}**",
        f"- slope over the second half: {data['slope_mb_per_1000_files']:+} MB per 1,000 files",
        f"- peak RSS {data['peak_mb']} MB; the scores kept for the submission: "
        f"{data['results_mb']} MB",
        "",
        "| files done | seconds | RSS MB |",
        "|---:|---:|---:|",
    ]
    step = max(1, len(data["samples"]) // 20)
    for row in data["samples"][::step] + data["samples"][-1:]:
        lines.append(f"| {row['files']} | {row['seconds']} | {row['rss_mb']} |")
    return "\n".join(lines) + "\n"


def chart(data: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = [s["files"] for s in data["samples"]]
    mb = [s["rss_mb"] for s in data["samples"]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(files, mb)
    ax.set_xlabel("files done")
    ax.set_ylabel("RSS (MB)")
    ax.set_title(f"soak: {data['files']} files, growth {data['growth_mb']:+} MB")
    ax.set_ylim(0, max(mb) * 1.15)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summary(data: dict[str, Any]) -> str:
    verdict = "no growth" if data["passed"] else "RSS GREW"
    return (
        f"soak: {data['files']} files, {data['windows']} windows in {data['wall_seconds']} s; "
        f"RSS {data['middle_mb']} MB at halfway -> {data['late_mb']} MB at the end "
        f"({data['growth_mb']:+} MB, {data['slope_mb_per_1000_files']:+} MB/1000 files), "
        f"peak {data['peak_mb']} MB: {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="short files in the run")
    parser.add_argument("--report-dir", type=Path, default=Path("reports/soak"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    out = args.report_dir
    data = run_soak(
        SoakSettings(files=args.files, report_dir=out, work_dir=out / f"audio_{args.files}")
    )
    paths = write_soak_report(data, out)
    print(summary(data))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0 if data["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
