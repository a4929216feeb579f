"""`birdinfer infer` (the default command): a folder of soundscapes scored into submission.csv;
with no arguments, the embedded demo."""

from __future__ import annotations

import argparse
from typing import Any

from birdinfer.config import load_config, parse_override, resolve_config_path


def add_command(sub) -> None:
    parser = sub.add_parser("infer", help="score a folder of soundscapes into submission.csv")
    add_infer_arguments(parser)
    parser.set_defaults(handler=_infer)


def add_infer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default="default",
        help="YAML file, or a bundled name: default (the demo), birdclef2023..2026",
    )
    parser.add_argument("--input", help="folder of recordings (turns the demo off)")
    parser.add_argument(
        "--model",
        action="append",
        help="model file (.onnx, .xml or .tflite); repeat for an ensemble",
    )
    parser.add_argument("--sample-submission", help="sample_submission.csv: column order")
    parser.add_argument(
        "--output", help="where submission.csv goes (--set output.submission=null: none)"
    )
    parser.add_argument(
        "--windows",
        metavar="PATH",
        help="also write a per-window table (file, start, end, scores): .parquet or .csv",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="each engine's feature workers: files decoded at once (every executor)",
    )
    parser.add_argument(
        "--threads", type=int, help="each engine's runtime threads per model call (every executor)"
    )
    parser.add_argument("--batch-size", type=int, help="windows per model call")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set mel.fmin=40",
    )
    parser.add_argument(
        "--budget-minutes",
        type=float,
        help="turn the time guard on with this CPU budget (members in priority order)",
    )
    parser.add_argument(
        "--executor",
        choices=("auto", "engine", "tasks", "processes", "dask", "threads"),
        help="where files are scored: this process's streaming engine, or tasks of files on a "
        "pool of task threads here, on worker processes pinned to groups of cores, or on a Dask "
        "cluster; auto (default): the engine, or worker processes from 8 cores on "
        "(threads: the deprecated name of tasks)",
    )
    parser.add_argument(
        "--executor-workers",
        type=int,
        metavar="N",
        help="task threads (--executor tasks) or worker processes (--executor processes)",
    )
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (--executor dask)"
    )
    parser.add_argument(
        "--local-workers",
        type=int,
        metavar="N",
        help="start a Dask LocalCluster of N worker processes (--executor dask)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="journal each finished file beside the output and skip the files already in it",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and the summary only")


def infer_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line flags as dotted config keys; flags win over the file."""
    overrides: dict[str, Any] = dict(parse_override(item) for item in args.set)
    flags = {
        "input_dir": args.input,
        "output.sample_submission": args.sample_submission,
        "output.submission": args.output,
        "output.windows": args.windows,
        "inference.workers": args.workers,
        "inference.threads": args.threads,
        "executor.workers": args.executor_workers,
        "inference.batch_size": args.batch_size,
        "executor.kind": args.executor,
        "executor.scheduler": args.scheduler,
        "executor.local_workers": args.local_workers,
    }
    overrides.update({k: v for k, v in flags.items() if v is not None})
    if args.model:
        overrides["models"] = list(args.model)
    if args.budget_minutes is not None:
        overrides["budget.enabled"] = True
        overrides["budget.minutes"] = args.budget_minutes
    if args.input:
        overrides["demo"] = None  # a real folder: nothing to generate, nothing to score against
    if args.no_progress:
        overrides["output.progress"] = False
    if args.resume:
        overrides["output.resume"] = True
    return overrides


def _infer(args: argparse.Namespace) -> int:
    from birdinfer.demo import heldout as demo
    from birdinfer.output import summary
    from birdinfer.runner.steps import run

    config = load_config(args.config, infer_overrides(args))
    if config.demo is not None:
        solution = demo.prepare(config)
        print(f"demo: {config.demo.files} held-out synthetic soundscapes in {config.input_dir}")
    result = run(config, protected={resolve_config_path(args.config): "the --config file"})
    print(summary(result, config.audio.window_seconds))
    if config.demo is not None:
        value = demo.score(config, result)
        print(
            f"demo: {config.competition.metric} on held-out soundscapes = {value:.4f} "
            f"(labels: {solution})"
        )
    return 0
