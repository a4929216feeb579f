"""Dask scaling benchmark: the same folder scored by this process's engine and by LocalClusters
of 1 and 2 worker processes, interleaved in rounds so that machine noise hits every row alike.

Cluster start-up and each worker's first model load are outside the timings (a warm-up run
on each cluster first): an archive run lasts hours, start-up seconds.

    python benchmarks/dask_scaling.py [--files 40] [--rounds 3] [--report-dir reports/dask]
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from soak import rss_mb

from birdinfer.atomic import write_atomic, write_json_atomic
from birdinfer.audio import probe
from birdinfer.budget.measure import synthetic_folder
from birdinfer.config import ExecutorConfig, from_dict
from birdinfer.runner.dask_cluster import local_cluster
from birdinfer.runner.steps import run
from birdinfer.scorer.ensemble import Ensemble
from birdinfer.scorer.threads import available_cores

ENGINE = "engine (this process)"


@dataclass(frozen=True)
class DaskBenchSettings:
    files: int = 40
    seconds: float = 60.0
    model: str = "builtin:demo"
    rounds: int = 3
    files_per_task: int = 4
    report_dir: Path = Path("reports/dask")


def run_dask_bench(settings: DaskBenchSettings) -> dict[str, Any]:
    audio = settings.report_dir / "audio"
    files = synthetic_folder(audio, settings.files, settings.seconds)
    base = from_dict(
        {
            "input_dir": str(audio),
            "models": [settings.model],
            # A benchmark measures speed: a quantized variant its guard rejected (the reference
            # model has random weights) still runs, as in bench.peers.
            "inference": {"allow_rejected_models": True},
            "output": {"submission": str(settings.report_dir / "out" / "s.csv"), "progress": False},
        }
    )
    cores = available_cores()
    # (processes, task threads per process, cores per process): every layout uses every core.
    layouts = {
        ENGINE: None,
        f"Dask: 1 process x 1 task thread on {cores} cores": (1, 1, cores),
        f"Dask: 1 process x {cores} task threads": (1, cores, cores),
        f"Dask: {cores} processes x 1 task thread": (cores, 1, 1),
    }
    clusters, startup = {}, {}
    for name, shape in layouts.items():
        if shape:
            started = time.perf_counter()
            clusters[name] = local_cluster(*shape)
            startup[name] = time.perf_counter() - started
    try:
        configs = {name: base for name in layouts}
        for name, (_, client) in clusters.items():
            executor = {
                "kind": "dask",
                "scheduler": client.scheduler.address,
                "files_per_task": settings.files_per_task,
            }
            configs[name] = dataclasses.replace(base, executor=ExecutorConfig(**executor))
        # Models loaded once for every layout: the client's Ensemble (the engine's, or the one
        # a mapped run assembles its submission with) and the workers' (a warm-up run each);
        # the loading is reported apart from the timings.
        ensembles, loading = {}, {}
        for name, config in configs.items():
            started = time.perf_counter()
            ensembles[name] = Ensemble(config)
            if name != ENGINE:
                run(config, ensemble=ensembles[name])  # warm-up: workers load their models
            loading[name] = time.perf_counter() - started
        seconds: dict[str, list[float]] = {name: [] for name in layouts}
        for round_ in range(settings.rounds):
            order = list(layouts)[round_ % len(layouts) :] + list(layouts)[: round_ % len(layouts)]
            for name in order:
                started = time.perf_counter()
                result = run(configs[name], ensemble=ensembles[name])
                seconds[name].append(time.perf_counter() - started)
                assert not result.failures, result.failures
        rss = {name: sum(client.run(rss_mb).values()) for name, (_, client) in clusters.items()}
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
    audio_seconds = sum(probe(p).seconds for p in files)
    engine_median = float(np.median(seconds[ENGINE]))
    rows = []
    for name in layouts:
        best, median = min(seconds[name]), float(np.median(seconds[name]))
        rows.append(
            {
                "layout": name,
                "seconds_best": round(best, 2),
                "seconds_median": round(median, 2),
                "vs_engine": round(median / engine_median, 3),
                "files_per_second": round(len(files) / median, 2),
                "x_real_time": round(audio_seconds / median),
                "worker_rss_mb": round(rss[name]) if name in rss else None,
                # Reported on their own, outside the timings: the cluster's start-up, and the
                # model loading (the engine's Ensemble; a worker's first run beyond a steady one).
                "cluster_startup_seconds": round(startup[name], 2) if name in startup else None,
                "model_loading_seconds": round(
                    loading[name] - (0 if name == ENGINE else median), 2
                ),
            }
        )
    return {
        "cores": cores,
        "files": len(files),
        "audio_minutes": round(audio_seconds / 60, 1),
        "model": settings.model,
        "rounds": settings.rounds,
        "files_per_task": settings.files_per_task,
        "rows": rows,
        "best_dask_vs_engine": min(r["vs_engine"] for r in rows[1:]),
        "cpu": os.uname().machine,
    }


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Dask scaling on this machine",
        "",
        f"{data['files']} synthetic soundscapes ({data['audio_minutes']} min of audio), "
        f"{data['model']}, {data['cores']} cores, tasks of {data['files_per_task']} files; "
        f"median of {data['rounds']} interleaved rounds; cluster start-up and model loading apart.",
        "",
        "| layout | s (median) | s (best) | vs engine (median) | files/s | x real time "
        "| workers' RSS MB | cluster start-up s | model loading s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in data["rows"]:
        rss = row["worker_rss_mb"] if row["worker_rss_mb"] is not None else "-"
        lines.append(
            f"| {row['layout']} | {row['seconds_median']} | {row['seconds_best']} | "
            f"{row['vs_engine']} | {row['files_per_second']} | {row['x_real_time']} | {rss} | "
            f"{row.get('cluster_startup_seconds') or '-'} | {row.get('model_loading_seconds')} |"
        )
    lines += [
        "",
        f"- the best Dask layout, once started and loaded: {data['best_dask_vs_engine']}x "
        "the engine's time (median of rounds)",
    ]
    return "\n".join(lines) + "\n"


def write_dask_report(data: dict[str, Any], folder: Path) -> dict[str, Path]:
    paths = {"json": folder / "dask_scaling.json", "md": folder / "dask_scaling.md"}
    write_json_atomic(data, paths["json"])
    text = markdown(data)
    write_atomic(paths["md"], lambda handle: handle.write(text))
    return paths


def report(settings: DaskBenchSettings) -> dict[str, Any]:
    data = run_dask_bench(settings)
    paths = write_dask_report(data, settings.report_dir)
    print(markdown(data))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return data


if __name__ == "__main__":  # Dask's worker processes re-import this file: start nothing then
    import argparse
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40, help="synthetic 60 s soundscapes")
    parser.add_argument("--model", default="builtin:demo", help="model file or builtin:demo")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files-per-task", type=int, default=4)
    parser.add_argument("--report-dir", type=Path, default=Path("reports/dask"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    report(
        DaskBenchSettings(
            files=args.files,
            model=args.model,
            rounds=args.rounds,
            files_per_task=args.files_per_task,
            report_dir=args.report_dir,
        )
    )
