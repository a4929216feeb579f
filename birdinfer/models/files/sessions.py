"""Runtime sessions opened with the house settings, for the backends and every tool alike.

ONNX Runtime: the CPU provider, an explicit thread count for both pools (it sizes them from the
host's cores, not the container's quota), sequential execution, and idle threads that do not
spin (spinning burns the cores the decode and mel workers need). OpenVINO: FP32 kept honest with
`INFERENCE_PRECISION_HINT: f32` (CPUs with AVX512_BF16/AMX would otherwise run an FP32 model in
bf16; lower precision is the quantizer's explicit, guarded choice), an explicit thread count
and streams. LiteRT: XNNPACK with an explicit thread count. A file a runtime refuses raises
ModelError naming it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from birdinfer.errors import ModelError, first_line


def onnxruntime_session(model: str | Path | bytes, threads: int = 1, name: str | Path = ""):
    """An `onnxruntime.InferenceSession` of a file (or its bytes, named `name` in errors)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        where = name or (model if not isinstance(model, bytes) else "model")
        raise ModelError(f"{where}: ONNX Runtime cannot load it ({first_line(exc)})") from exc


def openvino_config(threads: int = 1, streams: int = 1) -> dict[str, Any]:
    """The compile settings: FP32 pinned, `threads` threads over `streams` streams."""
    return {
        "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "THROUGHPUT" if streams > 1 else "LATENCY",
        "NUM_STREAMS": streams,
    }


def read_openvino(path: str | Path):
    """An OpenVINO IR (or any file OpenVINO reads) as an `openvino.Model`."""
    import openvino as ov

    try:
        return ov.Core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long texts
        raise ModelError(f"{path}: OpenVINO cannot read it ({first_line(exc)})") from exc


def compile_openvino(model, threads: int = 1, streams: int = 1, name: str | Path = ""):
    """`model` (an `openvino.Model`, or a path to read) compiled for the CPU with the house
    settings."""
    import openvino as ov

    if isinstance(model, (str, Path)):
        name, model = name or model, read_openvino(model)
    try:
        return ov.Core().compile_model(model, "CPU", openvino_config(threads, streams))
    except Exception as exc:
        raise ModelError(
            f"{name or 'model'}: OpenVINO cannot compile it ({first_line(exc)})"
        ) from exc


def litert_interpreter(path: Path, threads: int, keep_tensors: bool = False):
    """A LiteRT interpreter for `path` (XNNPACK, `threads` threads), tensors allocated.
    `keep_tensors`: inner tensors stay readable after a call (for `card set` to read their
    shapes; its first call costs seconds per window)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise ModelError(
            f"{path}: a .tflite model needs LiteRT: pip install 'birdinfer[litert]' "
            "(ai-edge-litert)"
        ) from exc
    try:
        with warnings.catch_warnings():  # keep_tensors warns of its memory: a choice made here
            warnings.simplefilter("ignore", UserWarning)
            runner = Interpreter(
                model_path=str(path),
                num_threads=threads,
                experimental_preserve_all_tensors=keep_tensors,
            )
        runner.allocate_tensors()
    except Exception as exc:  # LiteRT raises ValueError/RuntimeError with long texts
        raise ModelError(f"{path}: LiteRT cannot load it ({first_line(exc)})") from exc
    return runner
