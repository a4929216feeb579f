"""The quantization report: one JSON and one markdown file per model, from measured figures only.

Every number comes from the `QuantizeResult`: file sizes from the files on disk, ms per window from
the one side-by-side timing run, accuracy from the guard. Speed-ups are against the FP32 model of
the same runtime in the same run.
"""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from birdinfer.atomic import write_json_atomic, write_text_atomic
from birdinfer.models.files import files_sha256
from birdinfer.models.host import cpu_info
from birdinfer.quantize.runner import QuantizeResult, Row
from birdinfer.version import __version__

BASELINE = {"onnxruntime": "ort-fp32", "openvino": "ov-fp32", "pytorch": "torch-fp32"}
DYNAMIC_NOTE = (
    "PyTorch dynamic quantization (torch.ao.quantization.quantize_dynamic, Linear -> qint8) "
    "only touches the Linear head of a CNN; every convolution stays FP32."
)


def report_paths(report_dir: str | Path, model: Path) -> tuple[Path, Path]:
    folder = Path(report_dir)
    return folder / f"{model.stem}.quantize.json", folder / f"{model.stem}.quantize.md"


def build(result: QuantizeResult) -> dict[str, Any]:
    s = result.settings
    card, heldout = result.card, result.heldout
    return {
        "birdinfer_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "path": str(result.model),
            "sha256": files_sha256(result.model),
            "arch": card.arch,
            "classes": card.num_classes,
            "input_shape": list(card.input_shape),
        },
        "timing": {
            "batch_size": s.batch_size,
            "threads": s.threads,
            "cores": result.cores,
            "rounds": s.rounds,
            "warmup_calls": s.warmup,
            "method": "all models interleaved in rounds (rotated order), median ms per window",
            # The CPU decides which INT8 kernels ran: its model and ISA flags (and any cap).
            "cpu": cpu_info(),
            "versions": _versions(),
        },
        "calibration": {
            "folder": result.calibration.folder,
            "windows": len(result.calibration),
            "files": len({r.rsplit("_", 1)[0] for r in result.calibration.row_ids}),
            "seed": s.calibration_seed,
        },
        "heldout": {
            "folder": heldout.windows.folder,
            "windows": len(heldout.windows),
            "labels": heldout.labels_path,
            "metric": s.guard.metric if heldout.labels is not None else None,
            "max_metric_drop": s.guard.max_metric_drop,
            "min_top1_agreement_without_labels": s.guard.min_top1_agreement,
        },
        "scope": {
            "keep_head_float": s.scope.keep_head_float,
            "patterns": list(s.scope.patterns),
            "types": list(s.scope.types),
        },
        "rows": [_row(result, row) for row in result.rows],
        "headline": headline(result),
        "warnings": list(result.warnings),
        "notes": [DYNAMIC_NOTE],
    }


def _row(result: QuantizeResult, row: Row) -> dict[str, Any]:
    parent = result.row("ort-fp32")
    base = result.row(BASELINE[row.runtime])
    speedup = None
    if row.timing and base and base.timing:
        speedup = base.timing.ms_per_window / row.timing.ms_per_window
    size_ratio = None
    if row.size_bytes and parent and parent.size_bytes:
        size_ratio = row.size_bytes / parent.size_bytes
    return {
        "key": row.key,
        "runtime": row.runtime,
        "precision": row.precision,
        "file": str(row.path) if row.path else None,
        "size_bytes": row.size_bytes,
        "size_ratio_vs_fp32_onnx": size_ratio,
        "ms_per_window": row.timing.ms_per_window if row.timing else None,
        "ms_per_window_iqr": list(row.timing.spread) if row.timing else None,
        "ms_per_window_rounds": list(row.timing.ms_per_window_rounds) if row.timing else None,
        "speedup_vs_fp32_same_runtime": speedup,
        "guard": row.guard.to_dict() if row.guard else None,
        "accepted": row.accepted,
        "build_seconds": row.build_seconds,
        "float_nodes": row.ignored,
        "error": row.error,
        "note": row.note,
    }


def headline(result: QuantizeResult) -> dict[str, Any]:
    """The three figures the project quotes for OpenVINO INT8 against OpenVINO FP32."""
    int8, fp32 = result.row("ov-int8"), result.row("ov-fp32")
    out: dict[str, Any] = {
        "ov_int8_speedup": None,
        "ov_int8_metric_change": None,
        "ov_int8_size_ratio": None,
    }
    if int8 is None:
        return out
    if int8.timing and fp32 and fp32.timing:
        out["ov_int8_speedup"] = fp32.timing.ms_per_window / int8.timing.ms_per_window
    if int8.guard and int8.guard.metric_drop is not None:
        out["ov_int8_metric_change"] = -int8.guard.metric_drop
        out["metric"] = int8.guard.metric
        out["fp32_score"] = int8.guard.parent_score
        out["ov_int8_score"] = int8.guard.variant_score
    if int8.size_bytes and fp32 and fp32.size_bytes:
        out["ov_int8_size_ratio"] = int8.size_bytes / fp32.size_bytes
    return out


def _versions() -> dict[str, str]:
    found = {}
    for package in ("onnxruntime", "openvino", "nncf", "torch", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


# --- markdown ------------------------------------------------------------------------------------


def _cpu_line(cpu: Any) -> str:
    if not isinstance(cpu, dict):  # reports written before the ISA was recorded
        return str(cpu)
    cap = f", capped at {cpu['isa_cap']}" if cpu.get("isa_cap") else ""
    return f"{cpu['model']} ({' '.join(cpu['isa'])}{cap})"


def markdown(data: dict[str, Any]) -> str:
    t, cal, held = data["timing"], data["calibration"], data["heldout"]
    metric = held["metric"]
    lines = [
        f"# Quantization report: {Path(data['model']['path']).name} ({data['model']['arch']})",
        "",
        f"Latency: batch {t['batch_size']}, {t['threads']} runtime threads, {t['cores']} cores "
        f"available, {t['rounds']} rounds after {t['warmup_calls']} warm-up calls; "
        f"{t['method']}. CPU: {_cpu_line(t['cpu'])}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in t["versions"].items())
        + ".",
        f"Calibration: {cal['windows']} windows from {cal['files']} files of {cal['folder']} "
        f"(seed {cal['seed']}).",
        f"Held-out: {held['windows']} windows of {held['folder']}"
        + (
            f", labels {held['labels']}, metric {metric}, a variant is rejected when it falls by "
            f"more than {held['max_metric_drop']:g}."
            if metric
            else f", no labels: judged on top-1 agreement >= "
            f"{held['min_top1_agreement_without_labels']:g}."
        ),
        "",
        "| model | runtime | precision | size MB | size vs FP32 | ms/window (IQR) | speed-up "
        "| max abs dp | mean abs dp | top-1 | top-5 | "
        + (metric or "metric")
        + " | change | verdict |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_markdown_row(row) for row in data["rows"]]
    head = data["headline"]
    lines += ["", "## Headline: OpenVINO INT8 against OpenVINO FP32, same run", ""]
    lines += [f"- {line}" for line in headline_lines(head)]
    problems = [r for r in data["rows"] if r["error"] or r["accepted"] is False]
    if problems:
        lines += ["", "## Rejected or failed", ""]
        for r in problems:
            lines.append(f"- {r['error'] or r['guard']['reason']}")
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in data["notes"] + data["warnings"]]
    for r in data["rows"]:
        if r["float_nodes"]:
            lines.append(f"- {r['key']} kept in float: {', '.join(r['float_nodes'])}")
        if r["note"]:
            lines.append(f"- {r['key']}: {r['note']}")
    return "\n".join(lines) + "\n"


def _markdown_row(r: dict[str, Any]) -> str:
    g = r["guard"] or {}
    verdict = {True: "accepted", False: "REJECTED", None: "reference"}[r["accepted"]]
    if r["error"]:
        verdict = "FAILED"
    ms = "-"
    if r["ms_per_window"] is not None:
        low, high = r["ms_per_window_iqr"]
        ms = f"{r['ms_per_window']:.2f} ({low:.2f}-{high:.2f})"
    change = g.get("metric_drop")
    cells = [
        r["key"],
        r["runtime"],
        r["precision"],
        _fmt(r["size_bytes"] / 1e6 if r["size_bytes"] else None, ".2f"),
        _fmt(r["size_ratio_vs_fp32_onnx"], ".0%"),
        ms,
        _fmt(r["speedup_vs_fp32_same_runtime"], ".2f", "x"),
        _fmt(g.get("max_abs_diff"), ".2e"),
        _fmt(g.get("mean_abs_diff"), ".2e"),
        _fmt(g.get("top1_agreement"), ".3f"),
        _fmt(g.get("top5_agreement"), ".3f"),
        _fmt(g.get("variant_score"), ".4f"),
        _fmt(-change if change is not None else None, "+.4f"),
        verdict,
    ]
    return "| " + " | ".join(cells) + " |"


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def headline_lines(head: dict[str, Any]) -> list[str]:
    lines = []
    if head.get("ov_int8_speedup") is not None:
        lines.append(f"speed: OpenVINO INT8 is {head['ov_int8_speedup']:.2f}x OpenVINO FP32")
    if head.get("ov_int8_metric_change") is not None:
        lines.append(
            f"accuracy: {head['metric']} {head['ov_int8_score']:.4f} INT8 vs "
            f"{head['fp32_score']:.4f} FP32 (change {head['ov_int8_metric_change']:+.4f})"
        )
    if head.get("ov_int8_size_ratio") is not None:
        lines.append(f"size: OpenVINO INT8 is {head['ov_int8_size_ratio']:.1%} of OpenVINO FP32")
    return lines or ["no OpenVINO INT8 variant in this run"]


def write(result: QuantizeResult, report_dir: str | Path) -> tuple[Path, Path, dict[str, Any]]:
    """Write `<model>.quantize.json` and `.md` atomically; returns both paths and the data."""
    data = build(result)
    json_path, md_path = report_paths(report_dir, result.model)
    write_json_atomic(data, json_path)
    write_text_atomic(markdown(data), md_path)
    return json_path, md_path, data
