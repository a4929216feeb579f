"""Model runtimes behind one small interface: `backend(batch) -> scores`, plus the model's card.

The runtime is chosen from the file: `.onnx` runs on ONNX Runtime, `.xml` (an OpenVINO IR) on
OpenVINO, `.tflite` on LiteRT (the optional extra `litert`: BirdNET's published files). Every backend takes an explicit thread count and is safe to call from many threads.
"""

from __future__ import annotations

from pathlib import Path

from birdinfer.errors import ModelError
from birdinfer.models.backends.base import Backend
from birdinfer.models.files.locate import resolve_model_path

__all__ = ["Backend", "open_backend"]


def open_backend(
    path: str | Path,
    threads: int = 1,
    output: str | None = None,
    embeddings: tuple[str, ...] = (),
) -> Backend:
    """Load a model file with the runtime its suffix names, using `threads` intra-op threads;
    it returns the output named `output`, or the card's first (and, from `run`, the
    `embeddings` outputs beside it)."""
    resolved = resolve_model_path(path)
    if not resolved.is_file():
        raise ModelError(f"{path}: model file not found")
    suffix = resolved.suffix.lower()
    if suffix == ".onnx":
        from birdinfer.models.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(resolved, threads, output, embeddings)
    if suffix == ".xml":
        from birdinfer.models.backends.openvino import OpenVinoBackend

        return OpenVinoBackend(resolved, threads, output, embeddings)
    if suffix == ".tflite":
        from birdinfer.models.backends.litert import LiteRtBackend

        return LiteRtBackend(resolved, threads, output, embeddings)
    raise ModelError(
        f"{path}: unknown model format '{suffix}' (expected .onnx, OpenVINO .xml or .tflite)"
    )
