"""The `birdinfer` command: `infer` (the default: with no arguments, the embedded demo), `score`,
`export`, `quantize`, `verify`, `bench`, `card` and `frontend`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from birdinfer.config import load_config, parse_override, resolve_config_path
from birdinfer.errors import (
    AudioError,
    BirdinferError,
    ConfigError,
    JournalError,
    ModelError,
    SubmissionError,
)

log = logging.getLogger("birdinfer")

COMMANDS = ("infer", "score", "export", "quantize", "verify", "bench", "card", "frontend")
# A problem the user can fix ends the command with exit code 2 and one "error:" line; any other
# exception is a bug and keeps its traceback. Subclasses (ExportError is a ModelError) follow
# their base's entry.
EXIT_CODES: dict[type[BaseException], int] = {
    ConfigError: 2,
    AudioError: 2,
    ModelError: 2,
    SubmissionError: 2,
    JournalError: 2,
    BirdinferError: 2,
    FileNotFoundError: 2,
}


def exit_code(exc: BaseException) -> int:
    """The exit code of the nearest class in `exc`'s ancestry that EXIT_CODES names."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread: the command stops as on Ctrl-C (every executor
    stops its threads and kills its worker processes on the way out), exit code 143."""


def _terminate(signum, frame) -> None:
    raise Terminated()


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt and SIGTERM Terminated while the command runs, in the
    main thread only (where Python delivers signals). SIGINT's handler is installed even when
    the process started with SIGINT ignored (a job started from a background shell inherits
    that, and would otherwise ignore Ctrl-C's signal). The previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    with _stopped_by_signals():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS + ("-h", "--help"):
        argv = ["infer", *argv]
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except (BirdinferError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:  # every write is atomic: earlier outputs are intact
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"interrupted ({name}): nothing more was written", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="birdinfer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    infer = sub.add_parser("infer", help="score a folder of soundscapes into submission.csv")
    add_infer_arguments(infer)
    infer.set_defaults(handler=_infer)
    score = sub.add_parser("score", help="check a submission's format, then score it vs labels")
    add_score_arguments(score)
    score.set_defaults(handler=_score)
    export = sub.add_parser("export", help="timm checkpoint -> ONNX + OpenVINO with metadata")
    add_export_arguments(export)
    export.set_defaults(handler=_export)
    quantize = sub.add_parser(
        "quantize", help="FP32 model -> guarded FP16 / INT8 variants and a report"
    )
    add_quantize_arguments(quantize)
    quantize.set_defaults(handler=_quantize)
    add_verify_command(sub)
    bench = sub.add_parser("bench", help="timing-budget report: stages, runtimes, projections")
    add_bench_arguments(bench)
    bench.set_defaults(handler=_bench)
    add_card_commands(sub)
    add_frontend_commands(sub)
    return parser


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
    from birdinfer.output.report import summary
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


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--solution", required=True, type=Path, help="labels: row_id then one 0/1 column per class"
    )
    parser.add_argument("--submission", required=True, type=Path, help="the submission to score")
    parser.add_argument(
        "--sample-submission",
        type=Path,
        help="check the columns and their order against this (default: the solution's)",
    )
    parser.add_argument(
        "--metric",
        choices=["macro_roc_auc", "padded_cmap"],
        help="default: the --config's competition metric, else macro_roc_auc (2024-2026); "
        "padded_cmap is 2023's",
    )
    parser.add_argument("--config", help="a config (e.g. birdclef2023) whose metric to use")
    parser.add_argument("-q", "--quiet", action="store_true", help="the score line only")


def _score(args: argparse.Namespace) -> int:
    from birdinfer.output.submission import read_class_columns
    from birdinfer.scoring.evaluate import (
        read_table,
        score_submission,
        validate_solution,
        validate_submission,
    )

    metric = args.metric
    if metric is None:
        metric = load_config(args.config).competition.metric if args.config else "macro_roc_auc"
    solution = read_table(args.solution)
    problems = [f"{args.solution}: {p}" for p in validate_solution(solution)]
    if problems:
        print("error: the solution is not usable:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    sample = read_class_columns(args.sample_submission) if args.sample_submission else None
    submission = read_table(args.submission)
    check = validate_submission(submission, solution, sample)
    for warning in [] if args.quiet else check.warnings:
        print(f"warning: {args.submission}: {warning}", file=sys.stderr)
    if not check.ok:
        lines = "\n  ".join(check.errors)
        print(f"error: {args.submission} is not a valid submission:\n  {lines}", file=sys.stderr)
        return 2
    score = score_submission(solution, submission, metric)
    if score.undefined and not args.quiet:
        print(
            f"warning: {len(score.undefined)} classes are positive in every row "
            f"({', '.join(score.undefined[:5])}): ROC-AUC is undefined for them; they are left "
            "out here, while scikit-learn's roc_auc_score (Kaggle's metric) returns NaN",
            file=sys.stderr,
        )
    print(score.describe())
    return 0


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--arch", help="timm model name, e.g. efficientnet_b0")
    source.add_argument(
        "--factory",
        metavar="MODULE:FUNCTION",
        help="your own model: package.module:build or path/to/file.py:build, a function that "
        "returns an nn.Module (given num_classes and in_chans when it takes them). This imports "
        "that module and runs its code, as python would: name only code you trust",
    )
    parser.add_argument(
        "--classes",
        required=True,
        type=Path,
        help="sample_submission.csv, taxonomy.csv (primary_label) or one name per line",
    )
    parser.add_argument(
        "--in-chans",
        type=int,
        help="the model's input channels (default: what the config's image steps make, 1 unless "
        "image.channels: 3)",
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="trained weights (.pt/.pth/.ckpt); none = random"
    )
    parser.add_argument(
        "--checkpoint-key",
        metavar="KEY",
        help="the checkpoint entry holding the weights (default: the first of state_dict, "
        "model_state_dict, model, state_dict_ema, model_ema, ema)",
    )
    parser.add_argument(
        "--strip-prefix",
        metavar="PREFIX",
        help="use only the checkpoint keys under PREFIX, without it (e.g. backbone.)",
    )
    parser.add_argument(
        "--remap",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename checkpoint keys starting with OLD to start with NEW (repeatable)",
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="also unpickle objects other than weights (weights_only=False). Unpickling runs "
        "code stored in the file: use it only for checkpoints you made or fully trust",
    )
    parser.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="NAME[:HOLDS]",
        help="an output to export, by name (a dict key) or index, with what it holds: logits "
        "(default) or probabilities, e.g. clipwise:probabilities; repeat for several; "
        "none = every output. The first is the one a run scores by default",
    )
    parser.add_argument(
        "--constant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a constant for an input after the features (value read as YAML, e.g. 0 or "
        "[0, 1]), fed to every window; in the order forward() takes them",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output .onnx (the .xml goes beside it)"
    )
    parser.add_argument(
        "--config",
        default="default",
        help="config whose audio and mel settings the model was trained with",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set mel.n_mels=64",
    )
    parser.add_argument(
        "--waveform",
        action="store_true",
        help="the module takes raw audio (its mel inside the graph, or a foundation model): "
        "(batch, samples), or (batch, 1, samples) with --in-chans 1; audio.window_seconds "
        "and audio.sample_rate give the samples",
    )
    parser.add_argument("--no-openvino", action="store_true", help="ONNX only")
    parser.add_argument(
        "--tolerance", type=float, default=1e-4, help="max abs diff allowed vs torch"
    )
    parser.add_argument(
        "--preset",
        help="the front-end preset the model was trained with (birdinfer frontend presets): "
        "replaces the config's mel settings; --set keys win over it",
    )
    parser.add_argument(
        "--probe-audio",
        type=Path,
        help="a recording for the parity probe (default: synthetic chirps over noise)",
    )
    parser.add_argument("-q", "--quiet", action="store_true")


def _export(args: argparse.Namespace) -> int:
    from birdinfer.config import MelConfig
    from birdinfer.models.export_job import ExportJob, run_export

    overrides = dict(parse_override(item) for item in args.set)
    if args.preset:
        overrides.setdefault("mel.preset", args.preset)
    config = load_config(args.config, overrides)
    job = ExportJob(
        classes=args.classes,
        out=args.out,
        mel=config.mel or MelConfig(sample_rate=config.audio.sample_rate),
        image=config.image,
        window_seconds=config.audio.input_seconds,
        arch=args.arch,
        factory=args.factory,
        in_chans=args.in_chans,
        checkpoint=args.checkpoint,
        checkpoint_key=args.checkpoint_key,
        strip_prefix=args.strip_prefix,
        remap=tuple(_pair(item, "--remap") for item in args.remap),
        trust_checkpoint=args.trust_checkpoint,
        outputs=tuple(args.output),
        constants=dict(parse_override(item) for item in args.constant),
        openvino=not args.no_openvino,
        tolerance=args.tolerance,
        waveform=args.waveform,
        preset=overrides.get("mel.preset"),
        probe_audio=args.probe_audio,
    )
    result = run_export(job)
    print(f"onnx: {result.onnx_path} (max abs diff vs torch {result.onnx_max_abs_diff:.2e})")
    if result.openvino_path:
        print(
            f"openvino: {result.openvino_path} (max abs diff vs torch {result.openvino_max_abs_diff:.2e})"
        )
    for output in result.card.outputs:
        print(f"output {output.name}: {output.layout}, holds {output.holds}")
    return 0


def _pair(text: str, flag: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old:
        raise ConfigError(f"{flag} {text!r}: expected OLD=NEW")
    return old, new


def add_quantize_arguments(parser: argparse.ArgumentParser) -> None:
    from birdinfer.quantize.variants import DEFAULT_VARIANTS, QUANTIZED

    parser.add_argument(
        "--model", default="builtin:demo", help="exported FP32 .onnx (default: the demo model)"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="where variants go (default: beside the model; reports/quantize for built-ins)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports/quantize"),
        help="where <model>.quantize.md and .json go (default: %(default)s)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, from {', '.join(QUANTIZED)} (default: %(default)s)",
    )
    parser.add_argument(
        "--ort-dynamic",
        action="store_true",
        help="also build onnxruntime dynamic INT8 (ConvInteger: several times slower than FP32 "
        "on a CNN; the report and a warning quote the slowdown measured in the run)",
    )
    parser.add_argument(
        "--calibration", type=Path, help="folder of your own soundscapes (default: demo ones)"
    )
    parser.add_argument(
        "--calibration-count", type=int, default=300, help="calibration windows (default 300)"
    )
    parser.add_argument("--seed", type=int, default=0, help="calibration sampling seed")
    parser.add_argument(
        "--heldout",
        type=Path,
        help="held-out recordings for the guard (default: the demo's labelled soundscapes)",
    )
    parser.add_argument("--labels", type=Path, help="labels CSV for --heldout (solution format)")
    parser.add_argument("--heldout-files", type=int, default=16, help="demo held-out files")
    parser.add_argument("--calibration-files", type=int, default=32, help="demo calibration files")
    parser.add_argument(
        "--demo-data", type=Path, default=Path("birdinfer_demo/quantize"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--config", default="default", help="config whose metric and activation the guard uses"
    )
    parser.add_argument(
        "--metric", choices=["macro_roc_auc", "padded_cmap"], help="default: the config's"
    )
    parser.add_argument(
        "--max-drop", type=float, default=0.005, help="largest metric drop accepted"
    )
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=0.95,
        help="without labels: smallest top-1 agreement with FP32 accepted",
    )
    parser.add_argument(
        "--quantize-head",
        action="store_true",
        help="quantize the head and global pool too (by default they stay in float)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="REGEX",
        help="also keep nodes whose name matches in float (repeatable)",
    )
    parser.add_argument(
        "--ignore-type",
        action="append",
        default=[],
        metavar="OP",
        help="also keep ops of this type in float: ONNX (Gemm) or OpenVINO (MatMul) spelling",
    )
    parser.add_argument("--threads", type=int, default=2, help="runtime threads when timing")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per call")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds")
    parser.add_argument(
        "--checkpoint", type=Path, help="trained weights: PyTorch rows then show accuracy too"
    )
    parser.add_argument("--no-torch", action="store_true", help="no PyTorch reference rows")
    parser.add_argument("-q", "--quiet", action="store_true")


def _quantize(args: argparse.Namespace) -> int:
    from birdinfer.quantize.job import QuantizeJob, run_job

    if args.quiet:
        _quiet_nncf()
    job = QuantizeJob(
        **{
            name: getattr(args, name)
            for name in QuantizeJob.__dataclass_fields__
            if name != "variants"
        },
        variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
    )
    result, json_path, md_path, data = run_job(job)
    print(quantize_summary(data))
    print(f"report: {md_path} and {json_path}")
    bad = [r for r in result.rows if r.is_variant and not r.accepted]
    for row in bad:
        reason = f"{row.key} failed: {row.error}" if row.error else row.guard.reason
        print(f"not usable: {reason}", file=sys.stderr)
    return 1 if bad else 0


def _quiet_nncf() -> None:
    """NNCF sets up its own logger (level INFO) when imported: lower it after the import."""
    try:
        import nncf
    except ImportError:
        return
    nncf.set_log_level(logging.WARNING)


def quantize_summary(data: dict) -> str:
    """The report's table in a terminal: one line per model, then the three headline figures."""
    from birdinfer.quantize.report import headline_lines

    t = data["timing"]
    lines = [
        f"{data['model']['arch']}: batch {t['batch_size']}, {t['threads']} threads, "
        f"{t['rounds']} interleaved rounds (median ms/window)",
        f"  {'model':<20} {'MB':>7} {'ms/win':>7} {'speed':>6} {'top-1':>6} {'metric':>7} verdict",
    ]
    for r in data["rows"]:
        g = r["guard"] or {}
        size = f"{r['size_bytes'] / 1e6:7.2f}" if r["size_bytes"] else f"{'-':>7}"
        ms = f"{r['ms_per_window']:7.2f}" if r["ms_per_window"] is not None else f"{'-':>7}"
        speed = r["speedup_vs_fp32_same_runtime"]
        speed = f"{speed:5.2f}x" if speed is not None else f"{'-':>6}"
        top1 = f"{g['top1_agreement']:6.3f}" if g else f"{'-':>6}"
        score = g.get("variant_score")
        score = f"{score:7.4f}" if score is not None else f"{'-':>7}"
        verdict = {True: "accepted", False: "REJECTED", None: "reference"}[r["accepted"]]
        if r["error"]:
            verdict = f"FAILED: {r['error']}"
        lines.append(f"  {r['key']:<20} {size} {ms} {speed} {top1} {score} {verdict}")
    lines += [f"headline: {line}" for line in headline_lines(data["headline"])]
    return "\n".join(lines)


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--files",
        type=int,
        help="synthetic 60 s OGG soundscapes (default 40; 100 with --peers)",
    )
    parser.add_argument("--input", type=Path, help="a folder of recordings instead")
    parser.add_argument(
        "--out", type=Path, help="report folder (default: reports/bench, or reports/soak)"
    )
    parser.add_argument("--threads", type=int, help="cores to use (default: all available)")
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
    out = args.out or Path("reports/bench")
    settings = BenchSettings(
        files=args.files or 40,
        input_dir=args.input,
        report_dir=out,
        threads=args.threads,
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

    out = args.out or Path("reports/peers")
    # At least 100 files, so that interpreter start-up does not decide the ratios.
    files = args.files or 100
    data = run_peers(
        files, report_dir=out, cores=args.threads, rounds=args.rounds, batch_size=args.batch_size
    )
    paths = write_peer_report(data, out)
    print(markdown(data))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0


def _soak(args: argparse.Namespace) -> int:
    from birdinfer.bench.soak import SoakSettings, run_soak, summary, write_soak_report

    out = args.out or Path("reports/soak")
    settings = SoakSettings(files=args.soak, report_dir=out, work_dir=out / f"audio_{args.soak}")
    data = run_soak(settings)
    paths = write_soak_report(data, out)
    print(summary(data))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0 if data["passed"] else 1


def add_verify_command(sub) -> None:
    verify = sub.add_parser(
        "verify", help="run model files' probes on this CPU: one line each, exit 1 on a failure"
    )
    verify.add_argument("models", nargs="+", help="model files (.onnx, .xml, .tflite) or folders")
    verify.add_argument(
        "--threads",
        type=int,
        default=None,
        help="runtime threads, as the run would use them (default: every core)",
    )
    verify.add_argument("-q", "--quiet", action="store_true")
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    from birdinfer.models.probe import model_paths, verify_file
    from birdinfer.scorer.threads import available_cores

    threads = args.threads or available_cores()
    paths = model_paths(args.models)
    if not paths:
        raise ModelError(f"no .onnx, .xml or .tflite model files in {', '.join(args.models)}")
    failed = 0
    for path in paths:
        try:
            line, ok = (check := verify_file(path, threads)).line(), check.status != "failed"
        except ModelError as exc:
            line, ok = f"ERROR {path}: {exc}", False
        print(line)
        failed += not ok
    print(f"{len(paths)} files, {failed} failed, {threads} runtime threads")
    return 1 if failed else 0


def add_card_commands(sub) -> None:
    card = sub.add_parser("card", help="show or attach a model file's card (its settings)")
    actions = card.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="print the card of an .onnx or .xml model file")
    show.add_argument("model", help="model file (.onnx or OpenVINO .xml)")
    show.add_argument("-q", "--quiet", action="store_true")
    show.set_defaults(handler=_card_show)
    put = actions.add_parser(
        "set", help="attach or replace the card of a model exported elsewhere (atomic write)"
    )
    put.add_argument(
        "model", help="model file (.onnx, OpenVINO .xml, or .tflite: its card goes beside it)"
    )
    put.add_argument("--config", help="YAML (or bundled name) with the audio, mel and image keys")
    put.add_argument("--preset", help="a front-end preset (birdinfer frontend presets)")
    put.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config key, e.g. --set mel.n_mels=224 --set image.channels=3",
    )
    put.add_argument(
        "--classes", type=Path, help="sample_submission.csv, taxonomy.csv or one name per line"
    )
    put.add_argument("--arch", help="architecture name to record")
    put.add_argument("--output", choices=("logits", "probabilities"), help="what the model returns")
    put.add_argument(
        "--named-output",
        action="append",
        default=[],
        metavar="NAME[:HOLDS]",
        help="describe an output by name, with what it holds: logits (default), probabilities "
        "or embedding (for the per-window table); repeat for several, the first is scored "
        "by default. Its layout is read off a forward pass",
    )
    put.add_argument(
        "--waveform",
        action="store_true",
        help="the model takes raw audio, e.g. Perch v2 (audio.sample_rate, audio.window_seconds)",
    )
    put.add_argument("--out", type=Path, help="write a copy here instead of changing the file")
    put.add_argument(
        "--probe-audio",
        type=Path,
        help="recording or folder whose windows make the file's probe (default: synthetic "
        "soundscapes; `birdinfer verify` runs the probe on another CPU)",
    )
    put.add_argument(
        "--probe-tolerance",
        type=float,
        help="largest departure of probabilities the probe accepts (default 1e-3; a quantized "
        "file needs more: other CPUs run other INT8 kernels)",
    )
    put.add_argument("-q", "--quiet", action="store_true")
    put.set_defaults(handler=_card_set)


def _card_show(args: argparse.Namespace) -> int:
    from birdinfer.models.card_tool import show

    print(show(args.model))
    return 0


def _card_set(args: argparse.Namespace) -> int:
    from birdinfer.models.card_tool import build_card, set_card
    from birdinfer.models.export import read_class_names

    overrides = dict(parse_override(item) for item in args.set)
    if args.preset:
        overrides["mel.preset"] = args.preset
    card = build_card(
        args.model,
        config=args.config,
        overrides=overrides,
        classes=read_class_names(args.classes) if args.classes else None,
        arch=args.arch,
        output=args.output,
        waveform=args.waveform,
        outputs=tuple(args.named_output),
    )
    path = set_card(args.model, card, args.out)
    print(f"card written to {path}: {card.num_classes} classes, input {card.input_shape}")
    return _card_probe(path, card, args)


def _card_probe(path: Path, card, args: argparse.Namespace) -> int:
    """Keep the card's probe while it fits the model's input, else store a new one."""
    from birdinfer.models.card_tool import set_card
    from birdinfer.models.probe import with_probe
    from birdinfer.quantize.probes import kept_probe, self_probe

    kept = None if args.probe_audio or args.probe_tolerance else kept_probe(card, str(path))
    if kept is not None:
        print(f"probe kept: {kept.windows} windows, tolerance {kept.tolerance:.3g}")
        return 0
    tolerance = {"tolerance": args.probe_tolerance} if args.probe_tolerance else {}
    try:
        probe = self_probe(path, args.probe_audio, **tolerance)
    except (ModelError, AudioError) as exc:
        # The card is written; only `verify` and the load-time check lose their reference.
        print(f"warning: no probe stored, so runs will not check this file: {exc}")
        return 0 if args.probe_audio is None else 2
    set_card(path, with_probe(card, probe))
    print(f"probe stored: {probe.windows} windows, tolerance {probe.tolerance:.3g}")
    return 0


def add_frontend_commands(sub) -> None:
    frontend = sub.add_parser("frontend", help="check the front end against training, list presets")
    actions = frontend.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "check", help="compare birdinfer's model input with a reference, stage by stage"
    )
    check.add_argument("recording", help="an audio file")
    check.add_argument("--model", help="model file whose card gives the settings")
    check.add_argument("--config", help="or a config (YAML or bundled name) with mel/image keys")
    check.add_argument("--preset", help="or a front-end preset")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    check.add_argument(
        "--reference",
        default="torchaudio",
        help="torchaudio, librosa, or a .npy of features your training code saved for the "
        "first --windows windows of the recording (default: %(default)s)",
    )
    check.add_argument("--windows", type=int, default=4, help="windows compared (from the start)")
    check.add_argument("-q", "--quiet", action="store_true")
    check.set_defaults(handler=_frontend_check)
    presets = actions.add_parser("presets", help="list the named front ends and their sources")
    presets.add_argument("-q", "--quiet", action="store_true")
    presets.set_defaults(handler=_frontend_presets)


def _frontend_check(args: argparse.Namespace) -> int:
    from birdinfer.models.card_tool import check_frontend

    overrides = dict(parse_override(item) for item in args.set)
    if args.preset:
        overrides["mel.preset"] = args.preset
    result = check_frontend(
        args.recording, args.model, args.config, overrides, args.reference, args.windows
    )
    print(result.describe())
    return 0 if result.first_divergence is None else 1


def _frontend_presets(args: argparse.Namespace) -> int:
    from birdinfer.presets import PRESETS

    for name, entry in PRESETS.items():
        print(f"{name}\n  {entry['summary']}\n  source: {entry['source']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
