"""The interface every runtime implements, and what they share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from birdinfer.errors import ModelError
from birdinfer.models.card import ModelCard, OutputSpec


class Backend(Protocol):
    """A loaded model: call it with a (batch, channels, n_mels, frames) float32 array, or the
    (batch, samples) or (batch, 1, samples) audio of a waveform model."""

    path: Path
    card: ModelCard
    threads: int
    # The output this backend returns, from the card: what it holds and its layout.
    output: OutputSpec
    # Outputs returned beside it by `run` (embeddings for the per-window table).
    extra_outputs: tuple[OutputSpec, ...]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Raw model outputs (what `output.holds`), shape (batch, classes) for a clip-wise
        output, (batch, frames, classes) for a frame-wise one."""
        ...

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The scored output and the extra outputs of one forward pass, by name."""
        ...


@dataclass(frozen=True)
class GraphInput:
    """A model file's input as the runtimes declare it: None for a dynamic axis."""

    name: str
    dims: list[int | None]
    dtype: Any  # a numpy dtype; None when numpy has none for it


def check_input_shape(path: Path, card: ModelCard, dims: list[object]) -> None:
    """The file's declared input (batch, c, h, w), or a waveform model's (batch, samples) or
    (batch, 1, samples), must fit the card; a dynamic dim fits anything."""
    expected = (None, *card.input_shape)
    if len(dims) != len(expected):
        if card.waveform:
            axes = "(batch, samples)" if len(expected) == 2 else "(batch, 1, samples)"
            advice = ""
        else:
            axes = "(batch, c, h, w)"
            advice = (
                "; a model that takes raw audio needs a waveform card (birdinfer.make_waveform_"
                "card, or birdinfer card set --waveform)"
                if len(dims) in (2, 3)
                else ""
            )
        raise ModelError(
            f"{path}: model input has {len(dims)} dims, its card says {len(expected)} "
            f"{axes}{advice}"
        )
    for axis, (dim, want) in enumerate(zip(dims, expected, strict=True)):
        if want is not None and isinstance(dim, int) and dim != want:
            raise ModelError(
                f"{path}: model input axis {axis} is {dim}, but its card says {want} "
                f"(input shape {card.input_shape})"
            )


def check_output(
    path: Path, card: ModelCard, scores: np.ndarray, batch: int, layout: str = "clipwise"
) -> np.ndarray:
    classes = card.num_classes
    if layout == "framewise":
        if scores.ndim != 3 or scores.shape[0] != batch or scores.shape[2] != classes:
            raise ModelError(
                f"{path}: output shape {scores.shape}, expected ({batch}, frames, {classes}) "
                f"for a frame-wise output of {classes} classes"
            )
    elif scores.shape != (batch, classes):
        raise ModelError(
            f"{path}: output shape {scores.shape}, expected ({batch}, {classes}) "
            f"for {classes} classes"
        )
    return scores


def select_output(path: Path, card: ModelCard, graph_outputs: list[str], name: str | None):
    """The OutputSpec to score (`name`, else the card's first), present in the file."""
    try:
        spec = card.output_spec(name, graph_outputs)
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    if spec.name not in graph_outputs:
        raise ModelError(
            f"{path}: its card names output '{spec.name}', the file has {graph_outputs}"
        )
    if not spec.scores:
        scored = [o.name for o in card.outputs if o.scores]
        raise ModelError(
            f"{path}: output '{spec.name}' holds an embedding, not class scores: score one of "
            f"{scored} (models.output) and name '{spec.name}' as the member's embedding"
        )
    return spec


def select_embeddings(
    path: Path, card: ModelCard, graph_outputs: list[str], names: tuple[str, ...]
) -> tuple[OutputSpec, ...]:
    """The outputs named as embeddings: each on the card as `holds: embedding`, in the file."""
    chosen = []
    for name in names:
        spec = next((o for o in card.outputs if o.name == name), None)
        if spec is None or spec.holds != "embedding":
            marked = [o.name for o in card.outputs if o.holds == "embedding"]
            raise ModelError(
                f"{path}: embedding '{name}': its card marks {marked or 'no output'} as an "
                "embedding (export with --graph-output NAME:embedding)"
            )
        if name not in graph_outputs:
            raise ModelError(
                f"{path}: its card names output '{name}', the file has {graph_outputs}"
            )
        chosen.append(spec)
    return tuple(chosen)


def check_embedding(path: Path, name: str, values: np.ndarray, batch: int) -> np.ndarray:
    if values.ndim != 2 or values.shape[0] != batch:
        raise ModelError(
            f"{path}: embedding output '{name}' has shape {values.shape}, expected ({batch}, dims)"
        )
    return values


def feature_input(path: Path, card: ModelCard, inputs: list[GraphInput]) -> GraphInput:
    """The input the features go to: the one the card gives no constant value. Any other input
    without a value is refused, by name, rather than fed a guess."""
    names = [i.name for i in inputs]
    unknown = sorted(set(card.input_constants) - set(names))
    if unknown:
        raise ModelError(
            f"{path}: its card gives values for inputs {unknown}, the file's inputs are {names}"
        )
    free = [i for i in inputs if i.name not in card.input_constants]
    if not free:
        raise ModelError(f"{path}: its card gives every input a constant, none takes features")
    if len(free) > 1:
        extra = ", ".join(f"'{i.name}' {_shape(i.dims)}" for i in free[1:])
        raise ModelError(
            f"{path}: the model takes {len(inputs)} inputs; the features go to "
            f"'{free[0].name}', and nothing says what to feed {extra}. Give each a constant "
            "value in the card (birdinfer export --constant NAME=VALUE)"
        )
    return free[0]


def _shape(dims: list[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


class ConstantFeeds:
    """The card's constant inputs as arrays for a batch: (batch, *value's shape) for an input
    whose first axis is dynamic (a batch axis), else the value shaped as the input is."""

    def __init__(self, path: Path, card: ModelCard, inputs: list[GraphInput]) -> None:
        self.path = path
        self.inputs = [i for i in inputs if i.name in card.input_constants]
        self.values = {i.name: card.input_constants[i.name] for i in self.inputs}
        self._cache: dict[int, dict[str, np.ndarray]] = {}
        self(1)  # a value that does not fit its input fails here, at load

    def __call__(self, batch: int) -> dict[str, np.ndarray]:
        feeds = self._cache.get(batch)
        if feeds is None:
            feeds = self._cache[batch] = {i.name: self._array(i, batch) for i in self.inputs}
        return feeds

    def _array(self, graph_input: GraphInput, batch: int) -> np.ndarray:
        value, dims = self.values[graph_input.name], graph_input.dims
        if graph_input.dtype is None:
            raise ModelError(f"{self.path}: input '{graph_input.name}' has a type numpy lacks")
        try:
            array = np.asarray(value, dtype=graph_input.dtype)
            if dims and dims[0] is None:
                rest = (
                    array.shape
                    if array.ndim == len(dims) - 1
                    else tuple(d if d is not None else 1 for d in dims[1:])
                )
                shape = (batch, *rest)
            else:
                shape = tuple(d if d is not None else 1 for d in dims)
            return np.ascontiguousarray(np.broadcast_to(array, shape))
        except (TypeError, ValueError) as exc:
            raise ModelError(
                f"{self.path}: the card's value {value!r} for input '{graph_input.name}' "
                f"does not fit its shape {_shape(dims)} ({exc})"
            ) from exc
