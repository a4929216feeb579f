"""The run report (`submission_report.json`) and the summary a run prints.

The report says what ran (version, config, threads, models), on what (files, windows, skips
with their reasons, warnings) and how long each stage took; it sits beside the submission.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from birdinfer.atomic import write_json_atomic
from birdinfer.config import Config, to_dict
from birdinfer.errors import display_path
from birdinfer.results import RunResult
from birdinfer.version import __version__


def report_path_for(output: Path) -> Path:
    """The run report sits next to the submission: submission.csv -> submission_report.json."""
    return output.with_name(f"{output.stem}_report.json")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_report(
    config: Config,
    result: RunResult,
    input_dir: Path,
    started_at: str,
    setup: dict[str, Any],
) -> dict[str, Any]:
    """The report's data; `setup` holds the run's "threads" and "models" sections."""
    windows = max(result.windows, 1)
    return {
        "birdinfer_version": __version__,
        "started_at": started_at,
        "input_dir": str(input_dir),
        "output": str(result.output_path) if result.output_path else None,
        "windows_table": str(result.windows_path) if result.windows_path else None,
        "wall_seconds": round(result.wall_seconds, 3),
        "threads": setup["threads"],
        "files_processed": len(result.files),
        "files_from_journal": result.resumed,
        "windows": result.windows,
        "placeholder_files": len(result.placeholders),
        "placeholder_rows": sum(len(r.row_ids) for r in result.placeholders),
        "skipped": [{"path": f.path, "reason": f.reason} for f in result.failures],
        "ignored_non_audio": [str(p) for p in result.ignored],
        "warnings": [{"path": str(f.path), "warning": w} for f in result.files for w in f.warnings],
        "stage_seconds": {k: round(v, 4) for k, v in result.stage_seconds.items()},
        "stage_ms_per_window": {
            k: round(1000 * v / windows, 3) for k, v in result.stage_seconds.items()
        },
        "models": setup["models"],
        "config": to_dict(config),
    }


def write_report(report: dict[str, Any], path: Path) -> Path:
    return write_json_atomic(report, path)


def placeholder_warning(result: RunResult) -> str:
    """How many files and rows hold placeholders instead of scores, and why: a spent budget
    must not read as a fast run."""
    reasons: dict[str, list[int]] = {}
    for r in result.placeholders:
        count = reasons.setdefault(r.placeholder or "not scored", [0, 0])
        count[0] += 1
        count[1] += len(r.row_ids)
    why = "; ".join(f"{files} files ({rows} rows): {why}" for why, (files, rows) in reasons.items())
    rows = sum(rows for _, rows in reasons.values())
    return (
        f"{len(result.placeholders)} of {len(result.files)} files ({rows} of "
        f"{result.windows} rows) are placeholders, not scores: {why}"
    )


def summary(result: RunResult, window_seconds: float) -> str:
    """What a user wants to see after a run: where, how much, how fast, what was skipped."""
    windows = result.windows
    placeholder_rows = sum(len(r.row_ids) for r in result.placeholders)
    audio_seconds = (windows - placeholder_rows) * window_seconds  # scored audio only
    shape = f"({windows} rows x {result.submission.shape[1] - 1} classes)"
    lines = [f"WARNING: {placeholder_warning(result)}"] if result.placeholders else []
    if result.output_path is not None:
        lines.append(f"submission: {result.output_path} {shape}")
    if result.windows_path is not None:
        lines.append(f"windows: {result.windows_path} {shape}")
    lines += [
        f"files: {len(result.files)} processed ({windows} windows"
        + (f", {result.resumed} files from the journal" if result.resumed else "")
        + (
            f"; {len(result.placeholders)} files, {placeholder_rows} rows of them placeholders"
            if result.placeholders
            else ""
        )
        + "), "
        f"{len(result.failures)} skipped, {len(result.ignored)} non-audio ignored",
        f"time: {result.wall_seconds:.2f} s wall for {audio_seconds / 60:.1f} min of scored audio "
        f"({audio_seconds / max(result.wall_seconds, 1e-9):.0f}x real time)",
    ]
    total = sum(result.stage_seconds.values()) or 1.0
    for stage, seconds in result.stage_seconds.items():
        per_window = 1000 * seconds / max(windows, 1)
        lines.append(f"  {stage:<40} {per_window:8.2f} ms/window {100 * seconds / total:5.1f}%")
    for failure in result.failures:
        # A skipped name may hold bytes that are not UTF-8 or control characters: printed
        # escaped, so that the summary itself never fails.
        lines.append(f"skipped: {display_path(failure.path)}: {failure.reason}")
    lines.append(f"run report: {result.report_path}")
    return "\n".join(lines)
