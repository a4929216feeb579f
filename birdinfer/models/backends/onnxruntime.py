"""ONNX Runtime backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from birdinfer.errors import ModelError
from birdinfer.models.backends.base import (
    ConstantFeeds,
    GraphInput,
    check_embedding,
    check_input_shape,
    check_output,
    feature_input,
    select_embeddings,
    select_output,
)
from birdinfer.models.batchnorm import inference_batchnorm_bytes
from birdinfer.models.card import card_from_metadata

# ONNX Runtime names element types as strings; the ones a constant input may have.
DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


class OnnxRuntimeBackend:
    """One InferenceSession; ONNX Runtime allows concurrent `run` calls on a session."""

    def __init__(
        self,
        path: Path,
        threads: int = 1,
        output: str | None = None,
        embeddings: tuple[str, ...] = (),
    ) -> None:
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
        fixed = inference_batchnorm_bytes(self.path)
        try:
            self.session = ort.InferenceSession(
                fixed if fixed is not None else str(self.path),
                options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelError(f"{self.path}: ONNX Runtime cannot load it ({exc})") from exc
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.card = card_from_metadata(metadata, str(self.path))
        inputs = [
            GraphInput(
                i.name, [d if isinstance(d, int) else None for d in i.shape], DTYPES.get(i.type)
            )
            for i in self.session.get_inputs()
        ]
        model_input = feature_input(self.path, self.card, inputs)
        check_input_shape(self.path, self.card, model_input.dims)
        self.input_name = model_input.name
        self.constants = ConstantFeeds(self.path, self.card, inputs)
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = select_output(self.path, self.card, outputs, output)
        self.extra_outputs = select_embeddings(self.path, self.card, outputs, embeddings)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run(batch)[self.output.name]

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        feeds = {self.input_name: batch, **self.constants(batch.shape[0])}
        names = [self.output.name, *(o.name for o in self.extra_outputs)]
        scores, *extra = self.session.run(names, feeds)
        n = batch.shape[0]
        found = {
            self.output.name: check_output(
                self.path, self.card, np.asarray(scores, np.float32), n, self.output.layout
            )
        }
        for name, values in zip(names[1:], extra, strict=True):
            found[name] = check_embedding(self.path, name, np.asarray(values, np.float32), n)
        return found
