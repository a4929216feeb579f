"""ONNX Runtime backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from birdinfer.errors import ModelError
from birdinfer.models.backends.base import check_input_shape, check_output
from birdinfer.models.card import card_from_metadata


class OnnxRuntimeBackend:
    """One InferenceSession; ONNX Runtime allows concurrent `run` calls on a session."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.threads = threads
        options = ort.SessionOptions()
        # ONNX Runtime sizes its pools from the host's cores, not the container's quota: set both.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads spin by default, burning the cores the decode/mel workers need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelError(f"{self.path}: ONNX Runtime cannot load it ({exc})") from exc
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.card = card_from_metadata(metadata, str(self.path))
        model_input = self.session.get_inputs()[0]
        check_input_shape(self.path, self.card, list(model_input.shape))
        self.input_name = model_input.name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        (scores,) = self.session.run(None, {self.input_name: batch})[:1]
        return check_output(self.path, self.card, np.asarray(scores, np.float32), batch.shape[0])
