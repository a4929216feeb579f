"""The interface every runtime implements, and what they share."""

from __future__ import annotations

import hashlib
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
    """The files a model consists of: an OpenVINO IR is its .xml and the .bin beside it."""
    path = Path(path)
    return [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]


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
