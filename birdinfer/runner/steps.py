"""One inference run: a folder of recordings in, `submission.csv` and a JSON run report out.

`run()` is the list of a run's steps; each step is a call into its own module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path

from birdinfer.audio import list_inputs
from birdinfer.config import Config
from birdinfer.errors import display_path
from birdinfer.models.files import model_files, resolve_model_path
from birdinfer.output import (
    build_report,
    check_outputs,
    placeholder_warning,
    report_path_for,
    submission_frame,
    write_report,
    write_run_windows,
    write_submission,
)
from birdinfer.output.report import now_iso
from birdinfer.results import FileResult, RunResult
from birdinfer.runner.client import map_files
from birdinfer.runner.finish import postprocess_run
from birdinfer.runner.journal import open_for_run
from birdinfer.runner.placeholders import rows_for_failures, rows_for_unscored
from birdinfer.runner.plan import resolve_plan
from birdinfer.runner.time_guard import TimeGuard
from birdinfer.scorer.ensemble import Ensemble
from birdinfer.scorer.stage_timer import StageTimer
from birdinfer.scorer.streaming import score_files

log = logging.getLogger(__name__)


def run(
    config: Config,
    ensemble: Ensemble | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_file: Callable[[FileResult], None] | None = None,
    executor: Executor | None = None,
    protected: Mapping[Path, str] | None = None,
    started: float | None = None,
) -> RunResult:
    """Score every recording under `config.input_dir` and write the submission atomically.

    `ensemble` reuses loaded models; `clock` is what the time guard reads (tests pass a fake
    one); `on_file` sees each file scored as it finishes (on a mapped run, as its task ends).
    How the files are scored is the run's ExecutionPlan (`plan.resolve_plan`, in the report's
    "plan" section): by the streaming engine here, or mapped over `executor` (any
    `concurrent.futures.Executor`, e.g. a Dask client's) or over the executor that
    `config.executor` names (`executor.kind: auto` lets the plan choose).
    `protected` names more input files no output may replace (the CLI's config file). `started`
    is a `clock` reading from when the time budget began (a notebook's first cell); by default
    the budget starts here, before the models load.
    """
    budget_start = clock() if started is None else started
    started, started_at = time.perf_counter(), now_iso()
    output = Path(config.output.submission) if config.output.submission else None

    inputs = list_inputs(config)
    plan = resolve_plan(
        config,
        len(inputs.files),
        executor=executor,
        engine=ensemble.threads if ensemble is not None else None,
    )
    log.info("files scored by: %s (%s)", plan.kind, plan.why)
    check_outputs(
        config,
        [inputs.folder],
        inputs.recordings,
        plan.journal is not None,
        {**input_files(config), **(protected or {})},
    )
    ensemble = ensemble or Ensemble(config, plan.engines[0] if plan.engines else None)
    ensemble.timer = StageTimer()  # a reused ensemble: this run's stage times and costs only
    journal = open_for_run(config, ensemble, output, plan.journal)
    resumed = journal.resumed(inputs.files, inputs.stems) if journal is not None else {}
    todo = [i for i in range(len(inputs.files)) if i not in resumed]
    from_journal = f" ({len(resumed)} already in the journal)" if journal is not None else ""
    log.info(
        "%d files from %s%s; %s", len(inputs.files), inputs.folder, from_journal, plan.describe()
    )

    files, stems = [inputs.files[i] for i in todo], [inputs.stems[i] for i in todo]
    guard, engines = None, {}
    if plan.mapped:
        scored, failures, engines = map_files(
            ensemble, files, stems, journal, plan, executor, on_file
        )
        unscored: list[Path] = []
    else:
        if plan.time_guard:
            guard = TimeGuard.for_run(config, ensemble, files, clock, budget_start)
        record = journal.record if journal is not None else None
        scored, failures, unscored = score_files(
            ensemble, files, guard, stems, on_result=_each(record, on_file)
        )

    stem_of = {str(path): stem for path, stem in zip(inputs.files, inputs.stems, strict=True)}
    columns = len(ensemble.columns)
    unscored_rows, unscored_failures = rows_for_unscored(unscored, stem_of, config, columns)
    failures += unscored_failures
    scored += unscored_rows + rows_for_failures(failures, stem_of, config, columns)
    results = merge_in_order(inputs.files, resumed, scored)
    failures = sorted(inputs.skipped + failures, key=lambda f: f.path)
    postprocess_run(ensemble, results)

    with ensemble.timer("write"):
        frame = submission_frame(results, ensemble.columns)
        if output is not None:
            write_submission(frame, output)
        windows_path = write_run_windows(config, results, ensemble.columns)
    result = RunResult(
        submission=frame,
        output_path=output,
        report_path=report_path_for(output or windows_path),
        files=results,
        failures=failures,
        ignored=inputs.ignored,
        stage_seconds=dict(ensemble.timer.seconds),
        wall_seconds=time.perf_counter() - started,
        windows_path=windows_path,
        resumed=len(resumed),
    )
    report = build_report(config, result, inputs.folder, started_at, ensemble.describe())
    report["executor"] = plan.kind
    report["plan"] = plan.report()
    if plan.mapped:  # what ran: the workers' engines
        report["threads"] = mapped_threads(engines)
    report["time_guard"] = guard.report() if guard is not None else {"enabled": False}
    report["journal"] = str(journal.folder) if journal is not None else None
    write_report(report, result.report_path)
    for failure in failures:
        log.warning("skipped %s: %s", display_path(failure.path), failure.reason)
    if result.placeholders:
        log.warning("%s", placeholder_warning(result))
    return result


def mapped_threads(engines: dict[str, dict[str, int]]) -> dict:
    """A mapped run's "threads" report section: each worker engine's plan, and the plan itself
    at the top when every engine ran the same one."""
    plans = list(engines.values())
    same = plans[0] if plans and all(p == plans[0] for p in plans) else {}
    return {**same, "engines": engines}


def input_files(config: Config) -> dict[Path, str]:
    """The run's input files besides the recordings, each with what it is: no output may be
    written over one (the run would destroy what it reads, and exit 0)."""
    found: dict[Path, str] = {}
    for i, spec in enumerate(config.models):
        path = resolve_model_path(spec.path)
        try:
            parts = model_files(path)
        except OSError:  # unreadable: loading it reports that, naming the file
            parts = [path]
        for part in parts:
            found[part] = f"a file of the model models[{i}]"
        if spec.mapping:
            found[Path(spec.mapping)] = f"the mapping file of models[{i}]"
    if config.output.sample_submission:
        found[Path(config.output.sample_submission)] = "the sample submission"
    return found


def _each(*callbacks: Callable[[FileResult], None] | None) -> Callable[[FileResult], None]:
    def call(result: FileResult) -> None:
        for callback in callbacks:
            if callback is not None:
                callback(result)

    return call


def merge_in_order(
    files: list[Path], resumed: dict[int, FileResult], scored: list[FileResult]
) -> list[FileResult]:
    """Journaled and newly scored results, in the order of `files`."""
    position = {path: i for i, path in enumerate(files)}
    merged = list(resumed.items()) + [(position[r.path], r) for r in scored]
    return [result for _, result in sorted(merged, key=lambda item: item[0])]
