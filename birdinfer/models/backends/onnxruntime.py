"""ONNX Runtime backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
from birdinfer.models.files.sessions import onnxruntime_session

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
    """One InferenceSession (birdinfer.models.files.sessions: the house settings); ONNX Runtime
    allows concurrent `run` calls on a session."""

    def __init__(
        self,
        path: Path,
        threads: int = 1,
        output: str | None = None,
        embeddings: tuple[str, ...] = (),
    ) -> None:
        self.path = Path(path)
        self.threads = threads
        fixed = inference_batchnorm_bytes(self.path)
        self.session = onnxruntime_session(
            fixed if fixed is not None else self.path, threads, name=self.path
        )
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
