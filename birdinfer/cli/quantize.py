"""`birdinfer quantize`: an FP32 model to FP16 / INT8 variants, each timed and kept only if the
accuracy guard accepts it; a report beside them."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def add_command(sub) -> None:
    parser = sub.add_parser(
        "quantize", help="FP32 model -> guarded FP16 / INT8 variants and a report"
    )
    add_quantize_arguments(parser)
    parser.set_defaults(handler=_quantize)


def add_quantize_arguments(parser: argparse.ArgumentParser) -> None:
    from birdinfer.quantize import DEFAULT_VARIANTS, QUANTIZED

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
    from birdinfer.quantize import QuantizeJob, run_job

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
