"""OpenVINO backend (an IR: model.xml with model.bin beside it)."""

from __future__ import annotations

import threading
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
from birdinfer.models.card import card_from_metadata
from birdinfer.models.files.card_io import openvino_metadata
from birdinfer.models.files.sessions import compile_openvino, read_openvino


class OpenVinoBackend:
    """One compiled model; infer requests per calling thread (requests are not thread-safe),
    one per stream."""

    def __init__(
        self,
        path: Path,
        threads: int = 1,
        output: str | None = None,
        embeddings: tuple[str, ...] = (),
        streams: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.threads = threads
        model = read_openvino(self.path)
        self.card = card_from_metadata(openvino_metadata(model), str(self.path))
        in_names = _names(model.inputs, set(self.card.input_constants))
        inputs = [
            _graph_input(port, name) for port, name in zip(model.inputs, in_names, strict=True)
        ]
        model_input = feature_input(self.path, self.card, inputs)
        check_input_shape(self.path, self.card, model_input.dims)
        self.constants = ConstantFeeds(self.path, self.card, inputs)
        self._input_index = [i.name for i in inputs].index(model_input.name)
        self._constant_index = {i.name: k for k, i in enumerate(inputs)}
        names = _names(model.outputs, {o.name for o in self.card.outputs})
        self.output = select_output(self.path, self.card, names, output)
        self.extra_outputs = select_embeddings(self.path, self.card, names, embeddings)
        self._output_index = names.index(self.output.name)
        self._extra_index = {o.name: names.index(o.name) for o in self.extra_outputs}
        # One stream per runtime thread, each batch split across the streams and run at once.
        # One stream with every thread synchronises the threads at each layer; streams took less
        # CPU and wall time per window (docs/throughput.md, "Figures behind the code's
        # choices"). One thread: one stream, as before.
        self.streams = max(1, min(threads, streams if streams is not None else threads))
        self.compiled = compile_openvino(model, threads, self.streams, name=self.path)
        self._local = threading.local()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run(batch)[self.output.name]

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The chosen output and the embedding outputs for `batch`, by name."""
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = [
                self.compiled.create_infer_request() for _ in range(self.streams)
            ]
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        parts = np.array_split(batch, min(len(requests), len(batch)))
        for request, part in zip(requests, parts, strict=False):
            request.start_async(self._feeds(part), share_inputs=True)
        indices = {self.output.name: self._output_index, **self._extra_index}
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in indices}
        for request, _ in zip(requests, parts, strict=False):
            request.wait()
            for name, index in indices.items():
                output = request.get_output_tensor(index).data
                pieces[name].append(np.array(output, dtype=np.float32))
        n = batch.shape[0]
        found = {}
        for name, values in pieces.items():
            values = values[0] if len(values) == 1 else np.concatenate(values)
            if name == self.output.name:
                found[name] = check_output(self.path, self.card, values, n, self.output.layout)
            else:
                found[name] = check_embedding(self.path, name, values, n)
        return found

    def _feeds(self, part: np.ndarray) -> dict[int, np.ndarray]:
        feeds = {self._input_index: part}
        for name, array in self.constants(part.shape[0]).items():
            feeds[self._constant_index[name]] = array
        return feeds


def _graph_input(port, name: str) -> GraphInput:
    dims = [d.get_length() if d.is_static else None for d in port.partial_shape]
    try:
        dtype = port.get_element_type().to_dtype()
    except (RuntimeError, TypeError):  # element types numpy has no dtype for
        dtype = None
    return GraphInput(name, dims, dtype)


def _names(ports, wanted: set[str]) -> list[str]:
    """One name per port: the one the card uses when the port has it (a port may carry several
    tensor names), else its first name, else a stand-in."""
    found = []
    for index, port in enumerate(ports):
        names = sorted(port.get_names())
        chosen = [n for n in names if n in wanted]
        found.append((chosen or names or [f"port_{index}"])[0])
    return found
