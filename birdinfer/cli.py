"""The `birdinfer` command: `infer` (the default: with no arguments, the embedded demo) and `export`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from birdinfer.config import ConfigError, load_config, parse_override

log = logging.getLogger("birdinfer")

COMMANDS = ("infer", "export")


def main(argv: list[str] | None = None) -> int:
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
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from birdinfer.modelcard import ModelFileError
        from birdinfer.submission import SubmissionError

        if (
            isinstance(exc, (ModelFileError, SubmissionError))
            or type(exc).__name__ == "ExportError"
        ):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="birdinfer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    infer = sub.add_parser("infer", help="score a folder of soundscapes into submission.csv")
    add_infer_arguments(infer)
    infer.set_defaults(handler=_infer)
    export = sub.add_parser("export", help="timm checkpoint -> ONNX + OpenVINO with metadata")
    add_export_arguments(export)
    export.set_defaults(handler=_export)
    return parser


def add_infer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default="default",
        help="YAML file, or a bundled name: default (the demo), birdclef2023..2026",
    )
    parser.add_argument("--input", help="folder of recordings (turns the demo off)")
    parser.add_argument(
        "--model", action="append", help="model file (.onnx or .xml); repeat for an ensemble"
    )
    parser.add_argument("--sample-submission", help="sample_submission.csv: column order")
    parser.add_argument("--output", help="where submission.csv goes")
    parser.add_argument("--workers", type=int, help="files processed at once")
    parser.add_argument("--threads", type=int, help="runtime threads per model call")
    parser.add_argument("--batch-size", type=int, help="windows per model call")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set mel.fmin=40",
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
        "inference.workers": args.workers,
        "inference.threads": args.threads,
        "inference.batch_size": args.batch_size,
    }
    overrides.update({k: v for k, v in flags.items() if v is not None})
    if args.model:
        overrides["models"] = list(args.model)
    if args.input:
        overrides["demo"] = None  # a real folder: nothing to generate, nothing to score against
    if args.no_progress:
        overrides["output.progress"] = False
    return overrides


def _infer(args: argparse.Namespace) -> int:
    from birdinfer import demo
    from birdinfer.run import run

    config = load_config(args.config, infer_overrides(args))
    if config.demo is not None:
        solution = demo.prepare(config)
        print(f"demo: {config.demo.files} held-out synthetic soundscapes in {config.input_dir}")
    result = run(config)
    print(summary(result, config.audio.window_seconds))
    if config.demo is not None:
        value = demo.score(config, result)
        print(
            f"demo: {config.competition.metric} on held-out soundscapes = {value:.4f} "
            f"(labels: {solution})"
        )
    return 0


def summary(result, window_seconds: float) -> str:
    """What a user wants to see after a run: where, how much, how fast, what was skipped."""
    windows = result.windows
    audio_seconds = windows * window_seconds
    lines = [
        f"submission: {result.output_path} ({windows} rows x {result.submission.shape[1] - 1} classes)",
        f"files: {len(result.files)} processed ({windows} windows), "
        f"{len(result.failures)} skipped, {len(result.ignored)} non-audio ignored",
        f"time: {result.wall_seconds:.2f} s wall for {audio_seconds / 60:.1f} min of audio "
        f"({audio_seconds / max(result.wall_seconds, 1e-9):.0f}x real time)",
    ]
    total = sum(result.stage_seconds.values()) or 1.0
    for stage, seconds in result.stage_seconds.items():
        per_window = 1000 * seconds / max(windows, 1)
        lines.append(f"  {stage:<40} {per_window:8.2f} ms/window {100 * seconds / total:5.1f}%")
    for failure in result.failures:
        lines.append(f"skipped: {failure.path}: {failure.reason}")
    lines.append(f"run report: {result.report_path}")
    return "\n".join(lines)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", required=True, help="timm model name, e.g. efficientnet_b0")
    parser.add_argument(
        "--classes",
        required=True,
        type=Path,
        help="sample_submission.csv, taxonomy.csv (primary_label) or one name per line",
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="trained weights (.pt/.pth/.ckpt); none = random"
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
    parser.add_argument("--no-openvino", action="store_true", help="ONNX only")
    parser.add_argument(
        "--tolerance", type=float, default=1e-4, help="max abs diff allowed vs torch"
    )
    parser.add_argument("-q", "--quiet", action="store_true")


def _export(args: argparse.Namespace) -> int:
    from birdinfer.config import MelConfig
    from birdinfer.export import build_model, export, load_checkpoint, make_card, read_class_names

    config = load_config(args.config, dict(parse_override(item) for item in args.set))
    mel = config.mel or MelConfig(sample_rate=config.audio.sample_rate)
    classes = read_class_names(args.classes)
    model = build_model(args.arch, num_classes=len(classes))
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint)
    else:
        log.warning("no --checkpoint: exporting randomly initialised weights")
    card = make_card(args.arch, classes, mel, config.audio.window_seconds)
    result = export(model, card, args.out, openvino=not args.no_openvino, tolerance=args.tolerance)
    print(f"onnx: {result.onnx_path} (max abs diff vs torch {result.onnx_max_abs_diff:.2e})")
    if result.openvino_path:
        print(
            f"openvino: {result.openvino_path} (max abs diff vs torch {result.openvino_max_abs_diff:.2e})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
