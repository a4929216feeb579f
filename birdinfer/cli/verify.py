"""`birdinfer verify`: model files' stored probes run on this CPU, one line each."""

from __future__ import annotations

import argparse

from birdinfer.errors import ModelError


def add_command(sub) -> None:
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
