"""One inference run: a folder of recordings in, `submission.csv` and a JSON run report out."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from birdinfer.audio.decode import probe
from birdinfer.audio.inputs import find_input_files
from birdinfer.audio.rows import count_windows, row_ids, row_stems
from birdinfer.config import Config, to_dict
from birdinfer.errors import AudioError
from birdinfer.inference.ensemble import Ensemble
from birdinfer.inference.executors import open_executor, score_on_executor
from birdinfer.inference.journal import Journal, fingerprint, journal_path_for
from birdinfer.inference.postprocess import percentile_ranks, postprocess_file
from birdinfer.inference.stage_timer import StageTimer
from birdinfer.inference.streaming import StreamingEngine
from birdinfer.inference.time_guard import TimeGuard
from birdinfer.output.submission import write_csv_atomic, write_json_atomic
from birdinfer.output.windows_table import write_run_windows
from birdinfer.results import FileFailure, FileResult
from birdinfer.version import __version__

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
    resumed: int = 0  # files whose scores came from the journal (--resume)

    @property
    def windows(self) -> int:
        return len(self.submission)


def report_path_for(output: Path) -> Path:
    """The run report sits next to the submission: submission.csv -> submission_report.json."""
    return output.with_name(f"{output.stem}_report.json")


def run(
    config: Config,
    ensemble: Ensemble | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_file: Callable[[FileResult], None] | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Score every recording under `config.input_dir` and write the submission atomically.

    `clock` is what the time guard reads (tests pass a fake one); `on_file` sees each file
    scored in this process as it finishes. Files are scored by the streaming engine here, or
    mapped over `executor` (any `concurrent.futures.Executor`, e.g. a Dask client's) or over the
    executor that `config.executor` names.
    """
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ensemble = ensemble or Ensemble(config)
    ensemble.timer = StageTimer()  # a reused ensemble: this run's stage times and costs only
    output = Path(config.output.submission) if config.output.submission else None
    mapped = executor is not None or config.executor.kind != "engine"
    journal = open_journal(config, ensemble, output, needed=mapped)
    listed, ignored, input_dir = find_input_files(config, Path(config.input_dir))
    files, stems, failures = row_stems(listed, input_dir, config.output.duplicate_stems)
    if not listed:
        log.warning("no audio files in %s: writing a header-only submission", input_dir)
    resumed = resume_results(journal, files, stems)
    todo = [i for i in range(len(files)) if i not in resumed]
    from_journal = f" ({len(resumed)} already in the journal)" if journal is not None else ""
    log.info(
        "%d files from %s%s; %s", len(files), input_dir, from_journal, ensemble.plan.describe()
    )
    todo_files, todo_stems = [files[i] for i in todo], [stems[i] for i in todo]
    guard = None
    if mapped:
        scored, scored_failures = map_files(ensemble, todo_files, todo_stems, journal, executor)
    else:
        guard = make_guard(config, ensemble, todo_files, clock)
        scored, scored_failures = score_files(
            ensemble,
            todo_files,
            guard,
            stems=todo_stems,
            on_result=_each(journal.record if journal is not None else None, on_file),
        )
    scored += placeholder_results(config, ensemble, scored_failures, files, stems)
    results = merge_in_order(files, resumed, scored)
    failures = sorted(failures + scored_failures, key=lambda f: f.path)
    if config.inference.combine == "rank_mean" and len(ensemble.members) > 1:
        rank_blend(ensemble, results)
    with ensemble.timer("postprocess"):
        for result in results:
            result.scores = postprocess_file(result.scores, config.postprocess)
    with ensemble.timer("write"):
        frame = ensemble.submission(results)
        if output is not None:
            write_csv_atomic(frame, output)
        windows_path = write_run_windows(config, results, ensemble.columns)
    wall = time.perf_counter() - started
    result = RunResult(
        submission=frame,
        output_path=output,
        report_path=report_path_for(output or windows_path),
        files=results,
        failures=failures,
        ignored=ignored,
        stage_seconds=dict(ensemble.timer.seconds),
        wall_seconds=wall,
        windows_path=windows_path,
        resumed=len(resumed),
    )
    report = build_report(config, ensemble, result, input_dir, started_at)
    report["time_guard"] = guard_report(config, guard)
    report["journal"] = str(journal.folder) if journal is not None else None
    write_json_atomic(report, result.report_path)
    for failure in failures:
        log.warning("skipped %s: %s", failure.path, failure.reason)
    return result


def _each(*callbacks: Callable[[FileResult], None] | None) -> Callable[[FileResult], None]:
    def call(result: FileResult) -> None:
        for callback in callbacks:
            if callback is not None:
                callback(result)

    return call


def open_journal(
    config: Config, ensemble: Ensemble, output: Path | None, needed: bool = False
) -> Journal | None:
    """The run's journal, beside the submission (or the table): when `output.resume` is set, or
    when `needed` (a mapped run's results travel through it; then it starts afresh unless
    resuming). Dask workers write parquet partitions; everything else numpy files."""
    if not (config.output.resume or needed):
        return None
    anchor = output or Path(config.output.windows)
    entry_format = "parquet" if config.executor.kind == "dask" else "npz"
    return Journal.start(
        journal_path_for(anchor), fingerprint(ensemble), config.output.resume, entry_format
    )


def map_files(
    ensemble: Ensemble,
    files: list[Path],
    stems: list[str],
    journal: Journal,
    executor: Executor | None,
) -> tuple[list[FileResult], list[FileFailure]]:
    """Score files as tasks on `executor`, or on the one `config.executor` names."""
    config = ensemble.config
    if config.budget.enabled:
        log.warning("the time guard runs with the streaming engine only: not on this executor")
    progress = tqdm(total=len(files), unit="file", disable=not config.output.progress, leave=False)
    try:
        if executor is not None:
            return score_on_executor(
                ensemble, files, stems, executor, journal, on_task_done=progress.update
            )
        with open_executor(config) as (opened, runtime_threads):
            return score_on_executor(
                ensemble, files, stems, opened, journal, runtime_threads, progress.update
            )
    finally:
        progress.close()


def resume_results(
    journal: Journal | None, files: list[Path], stems: list[str]
) -> dict[int, FileResult]:
    """Files the journal already holds (same file, same row-id stem), by index in `files`."""
    if journal is None:
        return {}
    found = {}
    for i, (path, stem) in enumerate(zip(files, stems, strict=True)):
        stored = journal.load(path)
        if stored is not None and stored.row_ids and stored.row_ids[0].startswith(f"{stem}_"):
            found[i] = stored
    return found


def placeholder_results(
    config: Config,
    ensemble: Ensemble,
    failures: list[FileFailure],
    files: list[Path],
    stems: list[str],
) -> list[FileResult]:
    """Placeholder rows for files that could not be scored, when the config asks for them:
    over the length the header declares, else `output.skipped_file_seconds`, else none."""
    if not config.output.placeholder_rows_for_skipped:
        return []
    stem_of = {str(path): stem for path, stem in zip(files, stems, strict=True)}
    window = config.audio.window_seconds
    placeholders = []
    for failure in failures:
        try:
            info = probe(Path(failure.path))
            n = count_windows(info.frames, info.sample_rate, window)
        except AudioError:
            n = 0
        if n == 0 and config.output.skipped_file_seconds:
            n = math.ceil(config.output.skipped_file_seconds / window - 1e-9)
        if n == 0:
            log.warning("%s: no length known, so no placeholder rows", failure.path)
            continue
        score = config.budget.placeholder_score
        placeholders.append(
            FileResult(
                path=Path(failure.path),
                row_ids=row_ids(stem_of[failure.path], n, window),
                scores=np.full((n, len(ensemble.columns)), score, np.float32),
                warnings=[f"placeholder rows ({score}): not scored ({failure.reason})"],
            )
        )
    return placeholders


def merge_in_order(
    files: list[Path], resumed: dict[int, FileResult], scored: list[FileResult]
) -> list[FileResult]:
    """Journaled and newly scored results, in the order of `files`."""
    position = {path: i for i, path in enumerate(files)}
    merged = list(resumed.items()) + [(position[r.path], r) for r in scored]
    return [result for _, result in sorted(merged, key=lambda item: item[0])]


def make_guard(
    config: Config, ensemble: Ensemble, files: list[Path], clock: Callable[[], float]
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
    return TimeGuard(ensemble, seconds, config.budget, minutes, clock=clock)


def guard_report(config: Config, guard: TimeGuard | None) -> dict[str, Any]:
    if guard is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "budget_minutes": config.budget.minutes or config.competition.budget_minutes,
        "reserve_minutes": config.budget.reserve_minutes,
        "safety": config.budget.safety,
        "members_at_end": [guard.ensemble.members[m].name for m in guard.active],
        "deadline_reached": guard.expired,
        "decisions": [d.as_dict() for d in guard.decisions],
    }


def score_files(
    ensemble: Ensemble,
    files: list[Path],
    guard: TimeGuard | None = None,
    stems: list[str] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> tuple[list[FileResult], list[FileFailure]]:
    """Run the files through the streaming engine, with a progress bar (files/s and ETA).

    `on_result` sees each finished file as soon as it is complete (the journal stores it).
    """
    progress = tqdm(
        total=len(files), unit="file", disable=not ensemble.config.output.progress, leave=False
    )

    def file_done(index: int, result: FileResult | None) -> None:
        progress.update()
        if result is not None and on_result is not None:
            on_result(result)
        if guard is not None:
            guard.on_file_done(index, result)

    engine = StreamingEngine(
        ensemble,
        feature_workers=ensemble.plan.workers,
        queue_windows=ensemble.config.inference.queue_windows,
        members_for=guard.members_for if guard is not None else None,
        on_file_done=file_done,
    )
    # The engine owns the parallelism: BLAS's own pool (the mel filterbank's small products)
    # would spin beside the workers and the model runtime, so it gets one thread for the run.
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return engine.run(files, stems)
    finally:
        progress.close()


def rank_blend(ensemble: Ensemble, results: list[FileResult]) -> None:
    """Replace each file's scores by the weighted mean of its members' percentile ranks,
    ranked per class over every row that member scored in this run."""
    ranked: dict[int, np.ndarray] = {}
    for member in range(len(ensemble.members)):
        rows = [r.member_scores[member] for r in results if member in r.member_scores]
        if rows:
            ranked[member] = percentile_ranks(np.concatenate(rows))
    offsets = dict.fromkeys(ranked, 0)
    for result in results:
        if not result.member_scores:  # placeholder rows: nothing to rank
            continue
        per_member = {}
        for member in sorted(result.member_scores):
            n = len(result.row_ids)
            per_member[member] = ranked[member][offsets[member] : offsets[member] + n]
            offsets[member] += n
        result.scores = ensemble.combine(per_member)


def build_report(
    config: Config, ensemble: Ensemble, result: RunResult, input_dir: Path, started_at: str
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
            "cores": ensemble.plan.cores,
            "workers": ensemble.plan.workers,
            "runtime_threads": ensemble.plan.threads,
        },
        "files_processed": len(result.files),
        "files_from_journal": result.resumed,
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
            for m in ensemble.members
        ],
        "config": to_dict(config),
    }
