"""birdinfer beside the recipes it must beat, each pipeline in its own process.

    python benchmarks/peers.py [--files 100] [--rounds 3] [--cores N] [--report-dir reports/peers]

Pipelines (same files, same model, same cores):
- `naive`: a first notebook: librosa per 5 s window, torch eager, one file after another;
- `recipe-2024`: the 2024 winner's recipe: librosa log-mels of every file computed in worker
  processes (joblib's loky backend, one per core), then OpenVINO FP32 with one batch per file;
- `birdinfer-ov-fp32`, `birdinfer-ov-int8`: `birdinfer.run` on the OpenVINO FP32 / INT8 files.

Each pipeline runs as a fresh child (`peer_pipelines.py`, a plain script) pinned to the same cores,
once per round, the rounds interleaved (A B C D, A B C D, ...: a slow spell of the machine hits
every pipeline alike), and the median per pipeline is reported. Two figures per run: the whole
process (interpreter start and imports included, measured by the parent) and in-process (from
after the imports to the last score, model loading and compilation included, measured by the
child). OpenVINO runs in f32 for both FP32 pipelines, so they compare at equal precision.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from birdinfer.atomic import write_atomic, write_json_atomic

log = logging.getLogger(__name__)

PIPELINES = ("naive", "recipe-2024", "birdinfer-ov-fp32", "birdinfer-ov-int8")


@dataclass(frozen=True)
class PeerSettings:
    audio_dir: Path
    models: dict[str, Path]  # "onnx" (FP32), "ov-fp32", "ov-int8"
    cores: int
    mel: dict[str, Any]  # the model's mel settings (its card's), for the librosa pipelines
    arch: str = "efficientnet_b0"
    classes: int = 234
    rounds: int = 3
    batch_size: int = 16
    pipelines: tuple[str, ...] = PIPELINES


@dataclass
class PeerRuns:
    name: str
    whole_seconds: list[float] = field(default_factory=list)
    in_process_seconds: list[float] = field(default_factory=list)
    windows: int = 0

    def median_ms(self, which: str) -> float:
        seconds = self.whole_seconds if which == "whole" else self.in_process_seconds
        return 1000.0 * statistics.median(seconds) / max(self.windows, 1)


def compare(settings: PeerSettings) -> dict[str, Any]:
    """Run every pipeline once per round, interleaved; medians in ms per window."""
    runs = {name: PeerRuns(name) for name in settings.pipelines}
    cpus = sorted(os.sched_getaffinity(0))[: settings.cores]
    for round_ in range(settings.rounds):
        for name in settings.pipelines:
            whole, facts = run_child(name, settings, cpus)
            runs[name].whole_seconds.append(whole)
            runs[name].in_process_seconds.append(facts["in_process_seconds"])
            runs[name].windows = facts["windows"]
            log.info(
                "round %d %s: %.2f s whole, %.2f s in-process, %d windows",
                round_ + 1,
                name,
                whole,
                facts["in_process_seconds"],
                facts["windows"],
            )
    return report_data(settings, runs)


def run_child(name: str, settings: PeerSettings, cpus: list[int]) -> tuple[float, dict]:
    """One pipeline in a fresh interpreter pinned to `cpus`: (whole-process seconds, facts)."""
    job = {
        "audio_dir": str(settings.audio_dir),
        "models": {k: str(v) for k, v in settings.models.items()},
        "cores": len(cpus),
        "batch_size": settings.batch_size,
        "mel": settings.mel,
        "arch": settings.arch,
        "classes": settings.classes,
    }
    args = [
        sys.executable,
        str(Path(__file__).with_name("peer_pipelines.py")),
        name,
        json.dumps(job),
    ]
    # The child imports this birdinfer, not whichever one the environment would find first
    # (an editable install of another checkout, say).
    package_root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p),
    }
    start = time.perf_counter()
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    whole = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"peer pipeline {name} failed:\n{done.stderr[-3000:]}")
    return whole, json.loads(done.stdout.strip().splitlines()[-1])


def report_data(settings: PeerSettings, runs: dict[str, PeerRuns]) -> dict[str, Any]:
    recipe = runs.get("recipe-2024")
    naive = runs.get("naive")
    rows = []
    for name, r in runs.items():
        row = {
            "pipeline": name,
            "windows": r.windows,
            "whole_ms_per_window": round(r.median_ms("whole"), 3),
            "in_process_ms_per_window": round(r.median_ms("in_process"), 3),
            "whole_seconds": [round(s, 3) for s in r.whole_seconds],
            "in_process_seconds": [round(s, 3) for s in r.in_process_seconds],
        }
        for peer, label in ((recipe, "recipe"), (naive, "naive")):
            if peer is not None:
                # Speed relative to the peer: > 1 means faster than it.
                row[f"vs_{label}_whole"] = round(peer.median_ms("whole") / r.median_ms("whole"), 3)
                row[f"vs_{label}_in_process"] = round(
                    peer.median_ms("in_process") / r.median_ms("in_process"), 3
                )
        rows.append(row)
    return {
        "cores": settings.cores,
        "rounds": settings.rounds,
        "files": len(list(Path(settings.audio_dir).glob("*.ogg"))),
        "batch_size": settings.batch_size,
        "rows": rows,
    }


def markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# birdinfer vs its peers: {data['files']} files, {data['cores']} cores, "
        f"median of {data['rounds']} interleaved rounds (ms per 5 s window)",
        "",
        "| pipeline | whole process | in-process | vs the 2024 recipe (whole / in-process) "
        "| vs naive (in-process) |",
        "|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        vs_recipe = (
            f"{r['vs_recipe_whole']:.2f} / {r['vs_recipe_in_process']:.2f}"
            if "vs_recipe_whole" in r
            else "-"
        )
        vs_naive = f"{r['vs_naive_in_process']:.2f}" if "vs_naive_in_process" in r else "-"
        lines.append(
            f"| {r['pipeline']} | {r['whole_ms_per_window']:.2f} | "
            f"{r['in_process_ms_per_window']:.2f} | {vs_recipe} | {vs_naive} |"
        )
    return "\n".join(lines) + "\n"


def write_peer_report(data: dict[str, Any], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "peers.json", "markdown": folder / "peers.md"}
    write_json_atomic(data, paths["json"])
    write_atomic(paths["markdown"], lambda handle: handle.write(markdown(data)))
    return paths


def run_peers(
    files: int = 100,
    seconds: float = 60.0,
    report_dir: Path = Path("reports/peers"),
    cores: int | None = None,
    rounds: int = 3,
    batch_size: int = 16,
    pipelines: tuple[str, ...] = PIPELINES,
) -> dict[str, Any]:
    """The peer comparison on the benchmark's reference workload: `files` synthetic OGG
    soundscapes, efficientnet_b0 with 234 classes and its OpenVINO FP32 / INT8 files."""
    import dataclasses

    from benchmark import reference_model, variants

    from birdinfer.budget.measure import synthetic_folder
    from birdinfer.models.backends import open_backend
    from birdinfer.scorer.threads import available_cores

    work = report_dir / "work"
    audio = synthetic_folder(work / "audio", files, seconds)[0].parent
    fp32 = reference_model(work)
    made = variants(fp32, work / "variants", audio)
    card = open_backend(fp32).card
    settings = PeerSettings(
        audio_dir=audio,
        models={"onnx": fp32, "ov-fp32": made["OpenVINO FP32"], "ov-int8": made["OpenVINO INT8"]},
        cores=cores or available_cores(),
        mel=dataclasses.asdict(card.mel),
        arch=card.arch,
        classes=card.num_classes,
        rounds=rounds,
        batch_size=batch_size,
        pipelines=pipelines,
    )
    return compare(settings)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # At least 100 files, so that interpreter start-up does not decide the ratios.
    parser.add_argument("--files", type=int, default=100, help="synthetic 60 s OGG soundscapes")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--cores", type=int, help="cores to use (default: all available)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per model call")
    parser.add_argument("--report-dir", type=Path, default=Path("reports/peers"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    data = run_peers(
        args.files,
        report_dir=args.report_dir,
        cores=args.cores,
        rounds=args.rounds,
        batch_size=args.batch_size,
    )
    paths = write_peer_report(data, args.report_dir)
    print(markdown(data))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
