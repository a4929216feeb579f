"""One inference run: a folder of recordings in, `submission.csv` and a JSON run report out."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from birdinfer import __version__
from birdinfer.config import Config, to_dict
from birdinfer.pipeline import FileFailure, FileResult, Pipeline, find_input_files
from birdinfer.submission import write_csv_atomic, write_json_atomic

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    submission: pd.DataFrame
    output_path: Path
    report_path: Path
    files: list[FileResult]
    failures: list[FileFailure]
    ignored: list[Path]
    stage_seconds: dict[str, float]
    wall_seconds: float

    @property
    def windows(self) -> int:
        return len(self.submission)


def report_path_for(output: Path) -> Path:
    """The run report sits next to the submission: submission.csv -> submission_report.json."""
    return output.with_name(f"{output.stem}_report.json")


def run(config: Config, pipeline: Pipeline | None = None) -> RunResult:
    """Score every recording under `config.input_dir` and write the submission atomically."""
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    pipeline = pipeline or Pipeline(config)
    files, ignored, input_dir = find_input_files(config, Path(config.input_dir))
    if not files:
        log.warning("no audio files in %s: writing a header-only submission", input_dir)
    log.info("%d files from %s; %s", len(files), input_dir, pipeline.plan.describe())
    results, failures = pipeline.run_files(files)
    output = Path(config.output.submission)
    with pipeline.timer("write"):
        frame = pipeline.submission(results)
        write_csv_atomic(frame, output)
    wall = time.perf_counter() - started
    result = RunResult(
        submission=frame,
        output_path=output,
        report_path=report_path_for(output),
        files=results,
        failures=failures,
        ignored=ignored,
        stage_seconds=dict(pipeline.timer.seconds),
        wall_seconds=wall,
    )
    write_json_atomic(
        build_report(config, pipeline, result, input_dir, started_at), result.report_path
    )
    for failure in failures:
        log.warning("skipped %s: %s", failure.path, failure.reason)
    return result


def build_report(
    config: Config, pipeline: Pipeline, result: RunResult, input_dir: Path, started_at: str
) -> dict[str, Any]:
    windows = max(result.windows, 1)
    return {
        "birdinfer_version": __version__,
        "started_at": started_at,
        "input_dir": str(input_dir),
        "output": str(result.output_path),
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
