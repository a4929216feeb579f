"""One inference run: a folder of recordings in, `submission.csv` and a JSON run report out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from birdinfer import __version__
from birdinfer.audio import AudioError, probe
from birdinfer.budget import TimeGuard
from birdinfer.config import Config, to_dict
from birdinfer.engine import Engine
from birdinfer.pipeline import FileFailure, FileResult, Pipeline, StageTimer, find_input_files
from birdinfer.postprocess import percentile_ranks, postprocess_file
from birdinfer.submission import write_csv_atomic, write_json_atomic
from birdinfer.windows_table import write_run_windows

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    submission: pd.DataFrame
    output_path: Path | None  # None when output.submission is null (per-window table only)
    report_path: Path
    files: list[FileResult]
    failures: list[FileFailure]
    ignored: list[Path]
    stage_seconds: dict[str, float]
    wall_seconds: float
    windows_path: Path | None = None  # the per-window table, when output.windows is set

    @property
    def windows(self) -> int:
        return len(self.submission)


def report_path_for(output: Path) -> Path:
    """The run report sits next to the submission: submission.csv -> submission_report.json."""
    return output.with_name(f"{output.stem}_report.json")


def run(
    config: Config, pipeline: Pipeline | None = None, clock: Callable[[], float] = time.monotonic
) -> RunResult:
    """Score every recording under `config.input_dir` and write the submission atomically.

    `clock` is what the time guard reads (tests pass a fake one).
    """
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    pipeline = pipeline or Pipeline(config)
    pipeline.timer = StageTimer()  # a reused pipeline: this run's stage times and costs only
    files, ignored, input_dir = find_input_files(config, Path(config.input_dir))
    if not files:
        log.warning("no audio files in %s: writing a header-only submission", input_dir)
    log.info("%d files from %s; %s", len(files), input_dir, pipeline.plan.describe())
    guard = make_guard(config, pipeline, files, clock)
    results, failures = score_files(pipeline, files, guard)
    if config.inference.combine == "rank_mean" and len(pipeline.members) > 1:
        rank_blend(pipeline, results)
    with pipeline.timer("postprocess"):
        for result in results:
            result.scores = postprocess_file(result.scores, config.postprocess)
    output = Path(config.output.submission) if config.output.submission else None
    with pipeline.timer("write"):
        frame = pipeline.submission(results)
        if output is not None:
            write_csv_atomic(frame, output)
        windows_path = write_run_windows(config, results, pipeline.columns)
    wall = time.perf_counter() - started
    result = RunResult(
        submission=frame,
        output_path=output,
        report_path=report_path_for(output or windows_path),
        files=results,
        failures=failures,
        ignored=ignored,
        stage_seconds=dict(pipeline.timer.seconds),
        wall_seconds=wall,
        windows_path=windows_path,
    )
    report = build_report(config, pipeline, result, input_dir, started_at)
    report["time_guard"] = guard_report(config, guard)
    write_json_atomic(report, result.report_path)
    for failure in failures:
        log.warning("skipped %s: %s", failure.path, failure.reason)
    return result


def make_guard(
    config: Config, pipeline: Pipeline, files: list[Path], clock: Callable[[], float]
) -> TimeGuard | None:
    """The time guard, when the config enables it; audio lengths come from the headers."""
    if not config.budget.enabled:
        return None
    seconds = []
    for path in files:
        try:
            seconds.append(probe(path).seconds)
        except AudioError:
            seconds.append(0.0)  # will be skipped with its reason when the engine reaches it
    minutes = config.budget.minutes or config.competition.budget_minutes
    return TimeGuard(pipeline, seconds, config.budget, minutes, clock=clock)


def guard_report(config: Config, guard: TimeGuard | None) -> dict[str, Any]:
    if guard is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "budget_minutes": config.budget.minutes or config.competition.budget_minutes,
        "reserve_minutes": config.budget.reserve_minutes,
        "safety": config.budget.safety,
        "members_at_end": [guard.pipeline.members[m].name for m in guard.active],
        "deadline_reached": guard.expired,
        "decisions": [d.as_dict() for d in guard.decisions],
    }


def score_files(
    pipeline: Pipeline, files: list[Path], guard: TimeGuard | None = None
) -> tuple[list[FileResult], list[FileFailure]]:
    """Run the files through the streaming engine, with a progress bar (files/s and ETA)."""
    progress = tqdm(
        total=len(files), unit="file", disable=not pipeline.config.output.progress, leave=False
    )

    def file_done(index: int, result: FileResult | None) -> None:
        progress.update()
        if guard is not None:
            guard.on_file_done(index, result)

    engine = Engine(
        pipeline,
        feature_workers=pipeline.plan.workers,
        queue_windows=pipeline.config.inference.queue_windows,
        members_for=guard.members_for if guard is not None else None,
        on_file_done=file_done,
    )
    # The engine owns the parallelism: BLAS's own pool (the mel filterbank's small products)
    # would spin beside the workers and the model runtime, so it gets one thread for the run.
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return engine.run(files)
    finally:
        progress.close()


def rank_blend(pipeline: Pipeline, results: list[FileResult]) -> None:
    """Replace each file's scores by the weighted mean of its members' percentile ranks,
    ranked per class over every row that member scored in this run."""
    ranked: dict[int, np.ndarray] = {}
    for member in range(len(pipeline.members)):
        rows = [r.member_scores[member] for r in results if member in r.member_scores]
        if rows:
            ranked[member] = percentile_ranks(np.concatenate(rows))
    offsets = dict.fromkeys(ranked, 0)
    for result in results:
        per_member = {}
        for member in sorted(result.member_scores):
            n = len(result.row_ids)
            per_member[member] = ranked[member][offsets[member] : offsets[member] + n]
            offsets[member] += n
        result.scores = pipeline.combine(per_member)


def build_report(
    config: Config, pipeline: Pipeline, result: RunResult, input_dir: Path, started_at: str
) -> dict[str, Any]:
    windows = max(result.windows, 1)
    return {
        "birdinfer_version": __version__,
        "started_at": started_at,
        "input_dir": str(input_dir),
        "output": str(result.output_path) if result.output_path else None,
        "windows_table": str(result.windows_path) if result.windows_path else None,
        "wall_seconds": round(result.wall_seconds, 3),
        "threads": {
            "cores": pipeline.plan.cores,
            "workers": pipeline.plan.workers,
            "runtime_threads": pipeline.plan.threads,
        },
        "files_processed": len(result.files),
        "windows": result.windows,
        "skipped": [{"path": f.path, "reason": f.reason} for f in result.failures],
        "ignored_non_audio": [str(p) for p in result.ignored],
        "warnings": [{"path": str(f.path), "warning": w} for f in result.files for w in f.warnings],
        "stage_seconds": {k: round(v, 4) for k, v in result.stage_seconds.items()},
        "stage_ms_per_window": {
            k: round(1000 * v / windows, 3) for k, v in result.stage_seconds.items()
        },
        "models": [
            {
                "path": str(m.backend.path),
                "arch": m.backend.card.arch,
                "classes": m.backend.card.num_classes,
                "weight": m.weight,
            }
            for m in pipeline.members
        ],
        "config": to_dict(config),
    }
