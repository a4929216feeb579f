"""Lower-precision variants of an exported FP32 ONNX model, each a self-describing file.

| key         | file                   | what                                                       |
|-------------|------------------------|------------------------------------------------------------|
| ov-fp32     | `model.xml`            | the FP32 OpenVINO IR (the exporter's; reference only)      |
| ov-fp16     | `model.ov-fp16.xml`    | OpenVINO IR with FP16 weights (half the size; computed in FP32 on CPU) |
| ov-int8     | `model.ov-int8.xml`    | OpenVINO INT8 IR from NNCF post-training quantization      |
| ort-int8    | `model.ort-int8.onnx`  | onnxruntime static INT8: QDQ, per-channel weights          |
| ort-dynamic | `model.ort-dynamic-int8.onnx` | onnxruntime dynamic INT8 (opt-in: far slower on CNNs) |

INT8 variants keep the head (global pool onwards) in float by default (`headscope`). Files are
put in place whole, with their card and any other metadata kept (birdinfer.models.files).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from birdinfer.errors import ModelError, first_line
from birdinfer.models.card import ModelCard
from birdinfer.models.files import (
    files_sha256,
    onnxruntime_session,
    read_openvino,
    write_onnx_card,
    write_openvino_card,
)
from birdinfer.quantize.headscope import onnx_head_nodes, openvino_head_nodes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VariantKind:
    key: str
    label: str  # recorded as card.extra["variant"]
    suffix: str
    runtime: str
    precision: str


KINDS = {
    k.key: k
    for k in (
        VariantKind("ort-fp32", "onnx-fp32", ".onnx", "onnxruntime", "fp32"),
        VariantKind("ov-fp32", "openvino-fp32", ".xml", "openvino", "fp32"),
        VariantKind("ov-fp16", "openvino-fp16", ".ov-fp16.xml", "openvino", "fp16 weights"),
        VariantKind("ov-int8", "openvino-int8-nncf", ".ov-int8.xml", "openvino", "int8"),
        VariantKind("ort-int8", "onnxruntime-int8-qdq", ".ort-int8.onnx", "onnxruntime", "int8"),
        VariantKind(
            "ort-dynamic",
            "onnxruntime-int8-dynamic",
            ".ort-dynamic-int8.onnx",
            "onnxruntime",
            "int8 (dynamic)",
        ),
    )
}
QUANTIZED = ("ov-fp16", "ov-int8", "ort-int8", "ort-dynamic")
DEFAULT_VARIANTS = ("ov-fp16", "ov-int8", "ort-int8")


class QuantizeError(ModelError):
    """A variant could not be built; the message names the model file and the step."""


@dataclass(frozen=True)
class ScopeSettings:
    """What stays in float: the head (by default) plus nodes named by pattern or op type."""

    keep_head_float: bool = True
    # Regular expressions matched at the start of node names (as NNCF's IgnoredScope patterns).
    patterns: tuple[str, ...] = ()
    # Op types: ONNX spelling for onnxruntime (Gemm, Conv), OpenVINO spelling for NNCF (MatMul).
    types: tuple[str, ...] = ()


@dataclass
class Variant:
    """A built variant, in memory until `save` writes it with its card."""

    kind: VariantKind
    ignored: list[str]
    save_to: Callable[[ModelCard, Path], None]


def output_path(parent: Path, out_dir: Path, key: str) -> Path:
    return out_dir / f"{parent.stem}{KINDS[key].suffix}"


def scoped_names(
    names: Sequence[str], types: Sequence[str], head: list[str], scope: ScopeSettings
) -> list[str]:
    """Node names to keep in float: the head (if asked) plus pattern and type matches."""
    chosen = list(head) if scope.keep_head_float else []
    for name, kind in zip(names, types, strict=True):
        by_pattern = any(re.match(p, name) for p in scope.patterns)
        if (by_pattern or kind in scope.types) and name not in chosen:
            chosen.append(name)
    return chosen


# --- OpenVINO ----------------------------------------------------------------------------------


def _openvino_model(onnx_path: Path):
    import openvino as ov

    try:
        return ov.convert_model(str(onnx_path))
    except Exception as exc:  # OpenVINO's conversion errors are RuntimeError subclasses
        raise QuantizeError(f"{onnx_path}: OpenVINO cannot convert it ({first_line(exc)})") from exc


def openvino_fp32(onnx_path: Path) -> Variant:
    model = _openvino_model(onnx_path)
    return Variant(KINDS["ov-fp32"], [], _ov_saver(model, compress_to_fp16=False))


def openvino_fp16(onnx_path: Path) -> Variant:
    """FP16 weights in the file; OpenVINO's CPU plugin decompresses them and computes in FP32
    (the backend pins INFERENCE_PRECISION_HINT=f32), so the gain is size, not speed."""
    model = _openvino_model(onnx_path)
    return Variant(KINDS["ov-fp16"], [], _ov_saver(model, compress_to_fp16=True))


def openvino_int8(onnx_path: Path, windows: np.ndarray, scope: ScopeSettings) -> Variant:
    """NNCF post-training quantization over the calibration windows (one window per sample,
    subset_size = all of them), with the head and the given scope kept in float, and the INT8
    weights' scales stored as FP16 (`store_scales_fp16`).

    Weights that PTQ leaves in float (the squeeze-excite convs of EfficientNet, ~2 MB of 16) stay
    FP32: NNCF's INT8 weight-only compression of them gave files that OpenVINO 2026.4's CPU
    plugin runs wrongly whenever the model is compiled with more than one stream (on AVX2,
    AVX-512 and VNNI kernels alike), which is how the backend runs on 2 cores and more. The file
    is larger than with it; docs/quantization.md has the scores and the sizes."""
    import nncf

    model = _openvino_model(onnx_path)
    ops = model.get_ordered_ops()
    ignored = scoped_names(
        [op.get_friendly_name() for op in ops],
        [op.get_type_name() for op in ops],
        openvino_head_nodes(model) if scope.keep_head_float else [],
        scope,
    )
    dataset = nncf.Dataset([windows[i : i + 1] for i in range(len(windows))])
    scope_float = nncf.IgnoredScope(names=ignored, validate=False)
    with _step(onnx_path, "NNCF quantization"):
        quantized = nncf.quantize(
            model,
            dataset,
            subset_size=len(windows),
            target_device=nncf.TargetDevice.CPU,
            # Symmetric INT8 weights, asymmetric activations: SiLU outputs and residual sums are
            # lopsided around zero, and a zero point spends all 256 levels on their range: more
            # agreement with FP32 for a small share of the speed-up (docs/quantization.md).
            preset=nncf.QuantizationPreset.MIXED,
            ignored_scope=scope_float,
        )
    with _step(onnx_path, "FP16 dequantization scales"):
        store_scales_fp16(quantized)
    return Variant(KINDS["ov-int8"], ignored, _ov_saver(quantized, compress_to_fp16=False))


# A scale is stored in FP16 only when every element keeps this relative precision (FP16 normals
# are exact to 2^-11; tiny subnormal scales would lose more, and stay FP32).
SCALE_FP16_TOLERANCE = 1e-3


def store_scales_fp16(model) -> int:
    """Store the per-channel dequantization scales of the INT8 weights (i8 -> Convert ->
    Multiply by an FP32 constant) as FP16 constants with a Convert to FP32, as NNCF's weight
    compression already stores its own scales. The CPU plugin folds the Convert when it compiles
    the model: the compiled graph is the same (the same u8 convolutions), each scale moves by at
    most 2^-11 of itself, and the .bin loses 2 bytes per output channel (docs/quantization.md
    has the sizes). OpenVINO's `compress_to_fp16` leaves quantized models alone,
    hence this pass. Returns the number of scales converted."""
    import openvino as ov
    from openvino import opset13

    converted = 0
    for op in model.get_ordered_ops():
        if not _is_weight_scale(op, ov):
            continue
        values = op.get_data()
        half = values.astype(np.float16)
        error = np.abs(half.astype(np.float32) - values) / np.maximum(np.abs(values), 1e-30)
        if not (np.all(np.isfinite(half)) and error.max() <= SCALE_FP16_TOLERANCE):
            continue
        decompressed = opset13.convert(opset13.constant(half), ov.Type.f32)
        next(iter(op.output(0).get_target_inputs())).replace_source_output(decompressed.output(0))
        converted += 1
    model.validate_nodes_and_infer_types()
    return converted


def _is_weight_scale(op, ov) -> bool:
    """An FP32 constant whose only consumer is a Multiply by an INT8 constant's Convert."""
    if op.get_type_name() != "Constant" or op.get_output_element_type(0) != ov.Type.f32:
        return False
    users = list(op.output(0).get_target_inputs())
    if len(users) != 1 or users[0].get_node().get_type_name() != "Multiply":
        return False
    for value in users[0].get_node().input_values():
        source = value.get_node()
        if source.get_type_name() == "Convert":
            raw = source.input_value(0)
            if raw.get_node().get_type_name() == "Constant" and raw.get_element_type() in (
                ov.Type.i8,
                ov.Type.u8,
            ):
                return True
    return False


def _ov_saver(model, compress_to_fp16: bool) -> Callable[[ModelCard, Path], None]:
    def save(card: ModelCard, path: Path) -> None:
        write_openvino_card(model, card, path, compress_to_fp16=compress_to_fp16)

    return save


# --- onnxruntime -------------------------------------------------------------------------------


def preprocess_onnx(onnx_path: Path, out: Path):
    """onnxruntime's recommended pre-processing (symbolic shape inference, graph optimisation,
    ONNX shape inference) before quantization; returns the loaded ModelProto."""
    import onnx
    from onnxruntime.quantization import quant_pre_process

    with _step(onnx_path, "onnxruntime's quant_pre_process"):
        quant_pre_process(str(onnx_path), str(out))
    return onnx.load(str(out))


def onnxruntime_int8(
    onnx_path: Path, windows: np.ndarray, scope: ScopeSettings, work: Path
) -> Variant:
    """Static INT8 in QDQ format: per-channel symmetric INT8 weights, UINT8 activations; the head
    and the given scope are excluded.

    Activation ranges are NNCF's default estimator: the mean over calibration windows of each
    window's min and max (onnxruntime's CalibMovingAverage averages per-batch ranges, and every
    batch here is one window). The global min/max, onnxruntime's default, lets a few outlier
    windows stretch the ranges: on the demo model it cost 0.039 ROC-AUC (docs/quantization.md).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    pre = work / "preprocessed.onnx"
    excluded = _excluded_nodes(preprocess_onnx(onnx_path, pre), scope)
    out = work / "ort-int8.onnx"
    with _step(onnx_path, "onnxruntime static quantization"):
        quantize_static(
            str(pre),
            str(out),
            _Reader(windows, 1, _input_name(pre)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            # U8 activations x S8 weights: onnxruntime's x86 kernels (VNNI) run this far faster
            # than S8 x S8 QDQ (docs/quantization.md has the figures).
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            # 7-bit weights: without VNNI (AVX2, AVX-512 without VNNI) U8S8 products saturate
            # onnxruntime's 16-bit intermediate sums. On the demo model, emulated AVX2 gave
            # ROC-AUC 0.9753 with 8-bit weights and 0.9794 with 7 (0.9782 / 0.9796 with VNNI;
            # docs/quantization.md).
            reduce_range=True,
            # MinMax keeps only per-batch min/max per tensor, so memory stays small. Do not set
            # CalibMaxIntermediateOutputs: onnxruntime 1.32 then drops the collected batches
            # instead of folding them into the ranges.
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"CalibMovingAverage": True},
        )
    return Variant(KINDS["ort-int8"], excluded, _onnx_saver(out))


def onnxruntime_dynamic(onnx_path: Path, scope: ScopeSettings, work: Path) -> Variant:
    """Dynamic INT8 (weights INT8, activations quantized at run time): ConvInteger on a CNN,
    which onnxruntime runs far slower than FP32. Opt-in only; the report states the slowdown."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    pre = work / "preprocessed-dynamic.onnx"
    excluded = _excluded_nodes(preprocess_onnx(onnx_path, pre), scope)
    out = work / "ort-dynamic.onnx"
    with _step(onnx_path, "onnxruntime dynamic quantization"):
        quantize_dynamic(
            str(pre),
            str(out),
            per_channel=True,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
        )
    return Variant(KINDS["ort-dynamic"], excluded, _onnx_saver(out))


def _excluded_nodes(model, scope: ScopeSettings) -> list[str]:
    nodes = list(model.graph.node)
    head = onnx_head_nodes(model) if scope.keep_head_float else []
    return scoped_names([n.name for n in nodes], [n.op_type for n in nodes], head, scope)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over the calibration windows."""

    def __init__(self, windows: np.ndarray, batch_size: int, input_name: str) -> None:
        self._batches: Iterator[np.ndarray] = (
            np.ascontiguousarray(windows[i : i + batch_size])
            for i in range(0, len(windows), batch_size)
        )
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch}


def _input_name(path: Path) -> str:
    return onnxruntime_session(path).get_inputs()[0].name


def _onnx_saver(staged: Path) -> Callable[[ModelCard, Path], None]:
    def save(card: ModelCard, path: Path) -> None:
        import onnx

        write_onnx_card(onnx.load(str(staged)), card, path)

    return save


def file_variant(path: Path, key: str) -> Variant:
    """An existing model file (a hand-made or external variant) as a Variant of kind `key`,
    so it can be guarded and published like the built ones."""
    path = Path(path)
    if path.suffix == ".onnx":
        return Variant(KINDS[key], [], _onnx_saver(path))
    return Variant(KINDS[key], [], _ov_saver(read_openvino(path), False))


def variant_card(parent: ModelCard, kind: VariantKind, parent_path: Path, **extra) -> ModelCard:
    """The parent's card, with what this variant is and where it came from in `extra`."""
    info = {
        "variant": kind.label,
        "parent": {"file": parent_path.name, "sha256": files_sha256(parent_path)},
        **extra,
    }
    return replace(parent, extra={**parent.extra, **info})


@contextmanager
def _step(model: Path, what: str) -> Iterator[None]:
    """One build step: any failure becomes a QuantizeError naming the model file and the step.

    onnxruntime's quantizer logs a line per tensor at INFO on the root logger; they are kept out
    of a script's output while the step runs.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    except QuantizeError:
        raise
    except Exception as exc:  # runtimes and NNCF raise many types; the user needs file and step
        raise QuantizeError(f"{model}: {what} failed ({first_line(exc)})") from exc
    finally:
        root.setLevel(level)
