"""OpenVINO backend (an IR: model.xml with model.bin beside it)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from birdinfer.errors import ModelError, first_line
from birdinfer.models.backends.base import check_input_shape, check_output
from birdinfer.models.card import CARD_KEY, card_from_metadata


class OpenVinoBackend:
    """One compiled model; an infer request per calling thread (requests are not thread-safe)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import openvino as ov

        self.path = Path(path)
        self.threads = threads
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long texts
            raise ModelError(f"{self.path}: OpenVINO cannot read it ({first_line(exc)})") from exc
        metadata = {}
        if model.has_rt_info([CARD_KEY]):
            metadata[CARD_KEY] = model.get_rt_info([CARD_KEY]).astype(str)
        self.card = card_from_metadata(metadata, str(self.path))
        dims = [d.get_length() if d.is_static else None for d in model.inputs[0].partial_shape]
        check_input_shape(self.path, self.card, dims)
        config = {
            # CPUs with AVX512_BF16/AMX would otherwise run an FP32 model in bf16 by default:
            # keep FP32 honest; lower precision is the quantizer's explicit, guarded choice.
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise ModelError(
                f"{self.path}: OpenVINO cannot compile it ({first_line(exc)})"
            ) from exc
        self._local = threading.local()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        result = request.infer({0: batch}, share_inputs=True)
        scores = np.array(result[self.compiled.outputs[0]], dtype=np.float32)
        return check_output(self.path, self.card, scores, batch.shape[0])
