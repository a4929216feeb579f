"""Where a model's files are: a path or a built-in name resolved, the files a model consists of
(an IR's .xml and .bin, an ONNX file's external data, a .tflite's card beside it), and their hash.

`builtin:<name>` names a model shipped with a tool around the core: the tool registers it
(`register_builtin`; the demo registers `builtin:demo`), so the core never knows where tools
keep their files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from birdinfer.errors import ModelError

BUILTIN_PREFIX = "builtin:"
# A .tflite file's card lives beside it: `<name>.tflite.card.json`.
CARD_SUFFIX = ".card.json"
_BUILTIN: dict[str, Path] = {}


def register_builtin(name: str, path: str | Path) -> None:
    """Let `builtin:<name>` name the model file at `path`."""
    _BUILTIN[name] = Path(path)


def builtin_models() -> dict[str, Path]:
    """The registered built-in models, by name."""
    return dict(_BUILTIN)


def resolve_model_path(path: str | Path) -> Path:
    """A model path, where `builtin:<name>` names a registered built-in model."""
    text = str(path)
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX) :]
        if name not in _BUILTIN:
            raise ModelError(f"{text}: no built-in model '{name}' ({sorted(_BUILTIN)})")
        return _BUILTIN[name]
    return Path(text).expanduser()


def model_files(path: Path) -> list[Path]:
    """The files a model consists of: an OpenVINO IR is its .xml and the .bin beside it; an ONNX
    file, itself and the external data files its tensors name (`model.onnx.data`), so that new
    weights there change the model's hash (the journal's manifest, the Dask workers' cache); a
    .tflite file, itself and its card beside it."""
    path = Path(path)
    if path.suffix == ".xml":
        return [path, path.with_suffix(".bin")]
    if path.suffix == ".tflite":
        card = path.with_name(path.name + CARD_SUFFIX)
        return [path, card] if card.is_file() else [path]
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
