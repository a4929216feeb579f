"""One command from an FP32 model to guarded lower-precision variants and a report.

Steps: build the variants (`variants`) from calibration windows of real recordings
(`calibration`), run each against its FP32 parent on held-out windows (`guard`), write each file
with the parent's card plus what it is, where it came from, the guard's figures and its verdict,
then time every model side by side on one batch (`latency`). The pipeline refuses a variant whose
card says `accepted: false` unless `inference.allow_rejected_models` is set.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import birdinfer.quantize.variants as V
from birdinfer.errors import ModelError
from birdinfer.models.backends import Backend, open_backend
from birdinfer.models.card import ModelCard
from birdinfer.models.files import model_files, resolve_model_path
from birdinfer.models.host import runtime_version
from birdinfer.models.probe import (
    FLOAT_TOLERANCE,
    Probe,
    build_probe,
    check_backend,
    lowered_tolerance,
    probe_windows,
    with_probe,
)
from birdinfer.quantize.accuracy_guard import GuardResult, GuardSettings, HeldOut, compare, outputs
from birdinfer.quantize.calibration import WindowSet
from birdinfer.quantize.latency import Timing, time_side_by_side
from birdinfer.scorer.threads import available_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizeSettings:
    variants: tuple[str, ...] = V.DEFAULT_VARIANTS
    scope: V.ScopeSettings = field(default_factory=V.ScopeSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)
    calibration_seed: int = 0
    # Latency: windows per call, runtime threads, interleaved rounds after warm-up calls.
    batch_size: int = 16
    threads: int = 2
    rounds: int = 20
    warmup: int = 3
    torch_reference: bool = True
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.variants) - set(V.QUANTIZED))
        if unknown:
            raise ValueError(f"unknown variants {unknown}; choose from {list(V.QUANTIZED)}")


@dataclass
class Row:
    """One model in the report: a quantized variant, or a reference (FP32, PyTorch)."""

    key: str
    runtime: str
    precision: str
    path: Path | None = None
    size_bytes: int | None = None
    build_seconds: float | None = None
    timing: Timing | None = None
    guard: GuardResult | None = None
    ignored: list[str] = field(default_factory=list)
    error: str | None = None
    note: str = ""
    variant: V.Variant | None = field(default=None, repr=False)  # built, not yet written
    staged: Path | None = None  # the provisional file the guard runs on

    @property
    def is_variant(self) -> bool:
        return self.key in V.QUANTIZED

    @property
    def accepted(self) -> bool | None:
        if not self.is_variant:
            return None
        if self.error or self.guard is None:
            return False
        return self.guard.accepted


@dataclass
class QuantizeResult:
    model: Path
    card: ModelCard
    rows: list[Row]
    calibration: WindowSet
    heldout: HeldOut
    settings: QuantizeSettings
    cores: int
    warnings: list[str] = field(default_factory=list)

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)


def quantize(
    model: str | Path,
    calibration: WindowSet,
    heldout: HeldOut,
    out_dir: str | Path,
    settings: QuantizeSettings = QuantizeSettings(),
) -> QuantizeResult:
    """Build, guard, write and time every variant of the FP32 ONNX `model`."""
    parent_path = resolve_model_path(model)
    if parent_path.suffix.lower() != ".onnx":
        raise ModelError(f"{model}: quantization starts from the exported FP32 .onnx file")
    parent = open_backend(parent_path, settings.threads)
    card = parent.card
    if "variant" in card.extra:
        raise ModelError(
            f"{parent_path}: already a quantized variant ({card.extra['variant']}); "
            f"quantize its FP32 parent {card.extra.get('parent', {}).get('file', '')}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = QuantizeResult(
        parent_path, card, [], calibration, heldout, settings, available_cores()
    )
    result.rows.append(Row("ort-fp32", "onnxruntime", "fp32", parent_path))
    result.rows.append(_openvino_reference(parent_path, card, out_dir))
    features = heldout.windows.features
    parent_raw = outputs(parent, features, settings.batch_size)
    _guard(result.row("ov-fp32"), card, parent_raw, heldout, settings)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".quantize-") as tmp:
        for key in settings.variants:
            row = _build(key, parent_path, card, calibration, settings, Path(tmp))
            result.rows.append(row)
            if row.error is None:
                _guard(row, card, parent_raw, heldout, settings)
                probe = _probe(row, parent, calibration, settings)
                _publish(row, parent_path, card, calibration, settings, out_dir, probe)
    runners = {r.key: open_backend(r.path, settings.threads) for r in result.rows if r.path}
    if settings.torch_reference:
        runners.update(_torch_rows(result, parent_raw, settings))
    for row in result.rows:
        if row.path is not None:
            row.size_bytes = file_size(row.path)
    batch = calibration.features[: settings.batch_size]
    timings = time_side_by_side(runners, batch, settings.rounds, settings.warmup)
    for row in result.rows:
        row.timing = timings.get(row.key)
    _note_dynamic(result)
    return result


def file_size(path: Path) -> int:
    """Bytes on disk: an OpenVINO IR counts its .xml and .bin."""
    return sum(part.stat().st_size for part in model_files(path) if part.is_file())


def _openvino_reference(parent_path: Path, card: ModelCard, out_dir: Path) -> Row:
    """The FP32 OpenVINO IR to time against: the exporter's `model.xml` beside the ONNX when it
    carries the same card, else converted now into `out_dir`."""
    beside = parent_path.with_suffix(".xml")
    if beside.is_file():
        try:
            if open_backend(beside).card == card:
                return Row("ov-fp32", "openvino", "fp32", beside)
        except ModelError as exc:
            log.warning("not using %s as the OpenVINO FP32 reference: %s", beside, exc)
    path = V.output_path(parent_path, out_dir, "ov-fp32")
    V.openvino_fp32(parent_path).save_to(card, path)
    return Row("ov-fp32", "openvino", "fp32", path, note="converted from the ONNX file")


def _build(
    key: str,
    parent_path: Path,
    card: ModelCard,
    calibration: WindowSet,
    settings: QuantizeSettings,
    work: Path,
) -> Row:
    """Build one variant and stage it (with a provisional card) for the guard."""
    kind = V.KINDS[key]
    row = Row(key, kind.runtime, kind.precision)
    builders: dict[str, Callable[[], V.Variant]] = {
        "ov-fp16": lambda: V.openvino_fp16(parent_path),
        "ov-int8": lambda: V.openvino_int8(parent_path, calibration.features, settings.scope),
        "ort-int8": lambda: V.onnxruntime_int8(
            parent_path, calibration.features, settings.scope, work
        ),
        "ort-dynamic": lambda: V.onnxruntime_dynamic(parent_path, settings.scope, work),
    }
    log.info("building %s from %s", kind.label, parent_path.name)
    started = time.perf_counter()
    try:
        row.variant = builders[key]()
        row.ignored = row.variant.ignored
        row.staged = work / f"staged{kind.suffix}"
        row.variant.save_to(V.variant_card(card, kind, parent_path), row.staged)
    except (V.QuantizeError, ModelError) as exc:
        row.error = str(exc)
        log.error("%s: %s", kind.label, exc)
    row.build_seconds = time.perf_counter() - started
    return row


def guard_variant(
    parent: str | Path,
    variant: str | Path,
    heldout: HeldOut,
    settings: GuardSettings | None = None,
    threads: int = 1,
    batch_size: int = 16,
) -> GuardResult:
    """Compare any model file with its FP32 parent on held-out windows (figures and verdict)."""
    settings = settings or GuardSettings()
    backend = open_backend(parent, threads)
    features = heldout.windows.features
    parent_raw = outputs(backend, features, batch_size)
    raw = outputs(open_backend(variant, threads), features, batch_size)
    return compare(Path(variant).name, parent_raw, raw, heldout, backend.card, settings)


def publish(
    variant: V.Variant,
    parent_path: Path,
    parent_card: ModelCard,
    guard: GuardResult,
    path: Path,
    quantization: dict | None = None,
    probe: Probe | None = None,
) -> Path:
    """Write a variant with its parent's card plus what it is, where it came from (file name and
    sha256), how it was made, the guard's figures, its verdict (`accepted`) and its own probe
    (the parent's is not the variant's: without one, the variant carries none)."""
    extra = {
        "quantization": quantization or {},
        "guard": guard.to_dict(),
        "accepted": guard.accepted,
    }
    card = V.variant_card(parent_card, variant.kind, parent_path, **extra)
    variant.save_to(with_probe(card, probe), path)
    return path


def _probe(
    row: Row, parent: Backend, calibration: WindowSet, settings: QuantizeSettings
) -> Probe | None:
    """The variant's probe: calibration windows, the FP32 file's outputs for them, and as
    tolerance what the variant departs by here, with the margin other CPUs need."""
    if row.error is not None or row.staged is None:
        return None
    encoded = probe_windows(calibration.features, file_size(row.staged))
    probe = build_probe(
        encoded,
        parent.run,
        parent.card.outputs or (parent.output,),
        tolerance=FLOAT_TOLERANCE,
        reference_name=f"FP32 file {parent.path.name} on {runtime_version('onnxruntime')}",
    )
    measured = check_backend(open_backend(row.staged, settings.threads), row.key, probe).departure
    tolerance = lowered_tolerance(measured, row.precision)
    log.info("%s: probe departure here %.3g, tolerance %.3g", row.key, measured, tolerance)
    return dataclasses.replace(probe, tolerance=tolerance)


def _guard(
    row: Row | None,
    card: ModelCard,
    parent_raw: np.ndarray,
    heldout: HeldOut,
    settings: QuantizeSettings,
) -> None:
    if row is None:
        return
    path = row.staged if row.staged is not None else row.path
    try:
        backend = open_backend(path, settings.threads)
        raw = outputs(backend, heldout.windows.features, settings.batch_size)
    except ModelError as exc:
        row.error = str(exc)
        log.error("%s: %s", row.key, exc)
        return
    row.guard = compare(row.key, parent_raw, raw, heldout, card, settings.guard)
    if row.is_variant:
        log_fn = log.info if row.guard.accepted else log.warning
        log_fn("%s %s", "accepted" if row.guard.accepted else "REJECTED", row.guard.reason)


def _publish(
    row: Row,
    parent_path: Path,
    card: ModelCard,
    calibration: WindowSet,
    settings: QuantizeSettings,
    out_dir: Path,
    probe: Probe | None,
) -> None:
    if row.error is not None or row.guard is None:
        return
    quantization = {
        "calibration_windows": len(calibration),
        "calibration_folder": calibration.folder,
        "calibration_seed": settings.calibration_seed,
        "float_nodes": row.ignored,
    }
    row.path = V.output_path(parent_path, out_dir, row.key)
    publish(row.variant, parent_path, card, row.guard, row.path, quantization, probe)
    row.staged = None


def _torch_rows(
    result: QuantizeResult, parent_raw: np.ndarray, settings: QuantizeSettings
) -> dict[str, Callable]:
    """PyTorch eager FP32 and dynamic INT8 as reference rows (skipped without torch/timm)."""
    try:
        from birdinfer.quantize.torch_reference import torch_reference

        ref = torch_reference(result.card, settings.checkpoint, settings.threads)
    except Exception as exc:  # ImportError, ExportError (unknown arch), checkpoint errors
        message = f"PyTorch reference rows skipped: {exc}"
        log.warning(message)
        result.warnings.append(message)
        return {}
    for key, runner in ref.runners.items():
        row = Row(key, "pytorch", "int8 Linear only" if "dynamic" in key else "fp32")
        row.note = ref.weights
        if ref.trained:
            features = result.heldout.windows.features
            raw = outputs(runner, features, settings.batch_size)
            row.guard = compare(key, parent_raw, raw, result.heldout, result.card, settings.guard)
        result.rows.append(row)
    return ref.runners


def _note_dynamic(result: QuantizeResult) -> None:
    """onnxruntime dynamic INT8 on a CNN: warn with the slowdown measured in this run."""
    dynamic, fp32 = result.row("ort-dynamic"), result.row("ort-fp32")
    if dynamic is None or dynamic.timing is None or fp32 is None or fp32.timing is None:
        return
    ratio = dynamic.timing.ms_per_window / fp32.timing.ms_per_window
    message = (
        f"onnxruntime dynamic INT8 runs at {dynamic.timing.ms_per_window:.1f} ms/window against "
        f"{fp32.timing.ms_per_window:.1f} for onnxruntime FP32 in this run ({ratio:.1f}x "
        f"{'slower' if ratio > 1 else 'faster'}): its ConvInteger kernels are not meant for CNNs; "
        "use the static INT8 variant"
    )
    log.warning(message)
    result.warnings.append(message)
