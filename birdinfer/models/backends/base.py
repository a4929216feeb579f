"""The interface every runtime implements, and what they share."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from birdinfer.errors import ModelError
from birdinfer.models.card import ModelCard

BUILTIN_PREFIX = "builtin:"
ASSETS = Path(__file__).resolve().parents[2] / "demo" / "assets"
BUILTIN_MODELS = {"demo": ASSETS / "demo_model.onnx"}


class Backend(Protocol):
    """A loaded model: call it with a (batch, channels, n_mels, frames) float32 array."""

    path: Path
    card: ModelCard
    threads: int

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Raw model outputs (logits unless the card says otherwise), shape (batch, classes)."""
        ...


def resolve_model_path(path: str | Path) -> Path:
    """A model path, where `builtin:<name>` names a model shipped inside the package."""
    text = str(path)
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX) :]
        if name not in BUILTIN_MODELS:
            raise ModelError(f"{text}: no built-in model '{name}' ({sorted(BUILTIN_MODELS)})")
        return BUILTIN_MODELS[name]
    return Path(text).expanduser()


def model_files(path: Path) -> list[Path]:
    """The files a model consists of: an OpenVINO IR is its .xml and the .bin beside it; an ONNX
    file, itself and the external data files its tensors name (`model.onnx.data`), so that new
    weights there change the model's hash (the journal's manifest, the Dask workers' cache)."""
    path = Path(path)
    if path.suffix == ".xml":
        return [path, path.with_suffix(".bin")]
    if path.suffix == ".onnx" and path.is_file():
        return [path, *onnx_external_data(path)]
    return [path]


# How ONNX names a tensor's external file: a StringStringEntryProto {key: "location", value: ...}
# (field 1 "location" as 0x0A 0x08 ..., then field 2 with a varint length).
_LOCATION = b"\n\x08location\x12"


def onnx_external_data(path: Path) -> list[Path]:
    """The external data files an ONNX model's tensors point at that exist beside it, in order
    of first mention. Read from the protobuf bytes, so that this needs no `onnx` package."""
    data = path.read_bytes()
    found: list[Path] = []
    start = data.find(_LOCATION)
    while start >= 0:
        cursor, length, shift = start + len(_LOCATION), 0, 0
        while cursor < len(data) and shift < 35:  # the value's varint length
            byte = data[cursor]
            length |= (byte & 0x7F) << shift
            cursor, shift = cursor + 1, shift + 7
            if not byte & 0x80:
                break
        candidate = _inside(path.parent, data[cursor : cursor + min(length, 4096)])
        if candidate is not None and candidate not in found:
            found.append(candidate)
        start = data.find(_LOCATION, cursor)
    return found


def _inside(folder: Path, name: bytes) -> Path | None:
    """`folder / name` when it is a file inside `folder` (as ONNX Runtime requires), else None."""
    try:
        candidate = folder / os.fsdecode(name)
        real = Path(os.path.realpath(candidate))
        inside = real.is_relative_to(os.path.realpath(folder))
        return candidate if inside and candidate.is_file() else None
    except (OSError, ValueError):  # bytes that only looked like a location (a NUL, say)
        return None


def files_sha256(*paths: Path) -> str:
    """sha256 over the bytes of `paths` in order (a model's files: see `model_files`)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def check_input_shape(path: Path, card: ModelCard, dims: list[object]) -> None:
    """The file's declared input (batch, c, h, w) must fit the card; a dynamic dim fits anything."""
    expected = (None, *card.input_shape)
    if len(dims) != len(expected):
        raise ModelError(f"{path}: model input has {len(dims)} dims, expected 4 (batch, c, h, w)")
    for axis, (dim, want) in enumerate(zip(dims, expected, strict=True)):
        if want is not None and isinstance(dim, int) and dim != want:
            raise ModelError(
                f"{path}: model input axis {axis} is {dim}, but its card says {want} "
                f"(input shape {card.input_shape})"
            )


def check_output(path: Path, card: ModelCard, scores: np.ndarray, batch: int) -> np.ndarray:
    if scores.shape != (batch, card.num_classes):
        raise ModelError(
            f"{path}: output shape {scores.shape}, expected ({batch}, {card.num_classes}) "
            f"for {card.num_classes} classes"
        )
    return scores
