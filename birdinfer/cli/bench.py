"""`birdinfer bench`: the timing-budget report: what each stage and model costs on this machine,
and what fits each competition's budget."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_command(sub) -> None:
    parser = sub.add_parser("bench", help="timing-budget report: stages, runtimes, projections")
    add_bench_arguments(parser)
    parser.set_defaults(handler=_bench)


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--files",
        type=int,
        help="synthetic 60 s OGG soundscapes (default 40; 100 with --peers)",
    )
    parser.add_argument("--input", type=Path, help="a folder of recordings instead")
    parser.add_argument(
        "--report-dir",
        type=Path,
        help="report folder (default: reports/bench, or reports/soak)",
    )
    parser.add_argument("--cores", type=int, help="cores to use (default: all available)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--kaggle-scale",
        type=float,
        default=1.0,
        help="Kaggle minutes per minute measured here (4 vCPU = 2 cores x HT: 1.0)",
    )
    parser.add_argument("--rss-files", type=int, nargs=2, default=(100, 400), metavar=("N1", "N2"))
    parser.add_argument("--no-baseline", action="store_true", help="skip torch eager + librosa")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="instead: birdinfer beside the naive notebook and the 2024 winner's recipe, each "
        "pipeline in its own process, interleaved rounds (default 100 files)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--peers)")
    parser.add_argument(
        "--soak",
        type=int,
        metavar="FILES",
        help="instead: a soak run of this many short files, RSS sampled as they finish",
    )
    parser.add_argument("-q", "--quiet", action="store_true")


def _bench(args: argparse.Namespace) -> int:
    from birdinfer.bench.benchmark import BenchSettings, run_benchmark, summary
    from birdinfer.bench.report import write_report

    if args.soak is not None:
        return _soak(args)
    if args.peers:
        return _peers(args)
    out = args.report_dir or Path("reports/bench")
    settings = BenchSettings(
        files=args.files or 40,
        input_dir=args.input,
        report_dir=out,
        threads=args.cores,
        batch_size=args.batch_size,
        kaggle_scale=args.kaggle_scale,
        rss_files=tuple(args.rss_files),
        baseline=not args.no_baseline,
    )
    data = run_benchmark(settings)
    paths = write_report(data, out)
    print(summary(data))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0


def _peers(args: argparse.Namespace) -> int:
    from birdinfer.bench.peers import markdown, run_peers, write_peer_report

    out = args.report_dir or Path("reports/peers")
    # At least 100 files, so that interpreter start-up does not decide the ratios.
    files = args.files or 100
    data = run_peers(
        files, report_dir=out, cores=args.cores, rounds=args.rounds, batch_size=args.batch_size
    )
    paths = write_peer_report(data, out)
    print(markdown(data))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0


def _soak(args: argparse.Namespace) -> int:
    from birdinfer.bench.soak import SoakSettings, run_soak, summary, write_soak_report

    out = args.report_dir or Path("reports/soak")
    settings = SoakSettings(files=args.soak, report_dir=out, work_dir=out / f"audio_{args.soak}")
    data = run_soak(settings)
    paths = write_soak_report(data, out)
    print(summary(data))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0 if data["passed"] else 1
