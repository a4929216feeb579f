"""`birdinfer bench`: the budget report: what each stage and each model of a config costs on
this machine, and what fits each competition's budget. The lab benchmarks (peers, soak, Dask,
the naive baseline) live in the repository's benchmarks/ folder, outside the package."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_command(sub) -> None:
    parser = sub.add_parser(
        "bench", help="budget report: what each stage and model costs, what fits the budget"
    )
    add_bench_arguments(parser)
    parser.set_defaults(handler=_bench)


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default="default",
        help="YAML file or bundled name whose members and settings are measured "
        "(default: the demo's)",
    )
    parser.add_argument(
        "--model",
        action="append",
        help="measure this model file instead of the config's members; repeat for several",
    )
    add_workload_arguments(parser)


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """What is timed and where the report goes (benchmarks/benchmark.py takes these too)."""
    parser.add_argument("--input", type=Path, help="a folder of recordings to time on")
    parser.add_argument(
        "--files", type=int, default=40, help="else this many synthetic 60 s OGG soundscapes"
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports/bench"),
        help="where bench.md, .json and .png go (default: %(default)s)",
    )
    parser.add_argument("--cores", type=int, help="cores to use (default: all available)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per model call")
    parser.add_argument(
        "--kaggle-scale",
        type=float,
        default=1.0,
        help="Kaggle minutes per minute measured here (4 vCPU = 2 cores x HT: 1.0)",
    )
    parser.add_argument("-q", "--quiet", action="store_true")


def settings_of(args: argparse.Namespace):
    """The flags as BudgetSettings (benchmarks/ reuses this parser and these settings)."""
    from birdinfer.budget import BudgetSettings

    return BudgetSettings(
        config=args.config,
        models=tuple(args.model or ()),
        input_dir=args.input,
        files=args.files,
        batch_size=args.batch_size,
        cores=args.cores,
        report_dir=args.report_dir,
        kaggle_scale=args.kaggle_scale,
    )


def _bench(args: argparse.Namespace) -> int:
    from birdinfer.budget import measure_budget, summary, write_report

    data = measure_budget(settings_of(args))
    paths = write_report(data, args.report_dir)
    print(summary(data))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0
