"""A model file's card read from it and written into it, for every format.

The card is one JSON string under `birdinfer.card` (birdinfer.models.card): in an ONNX file's
`metadata_props`, in an OpenVINO IR's `rt_info`, and beside a `.tflite` file as
`<file>.tflite.card.json` (a TFLite file has no free-form metadata that tools write easily, and
BirdNET's file carries a licence of its own that birdinfer should not alter). Writing a card
changes only the card: an ONNX file's other metadata entries are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from birdinfer.errors import ModelError
from birdinfer.models.card import CARD_KEY, ModelCard, card_from_metadata
from birdinfer.models.files.locate import CARD_SUFFIX, resolve_model_path
from birdinfer.models.files.sessions import litert_interpreter, onnxruntime_session, read_openvino
from birdinfer.models.files.write import write_model_file, write_onnx, write_openvino

FORMATS = (".onnx", ".xml", ".tflite")


def card_path(path: Path) -> Path:
    """Where a `.tflite` file's card lives: beside it, `<name>.tflite.card.json`."""
    return path.with_name(path.name + CARD_SUFFIX)


def read_card_metadata(path: Path) -> dict[str, str]:
    """A `.tflite` file's card as the other runtimes' metadata maps give it: {CARD_KEY: json},
    or {}."""
    sidecar = card_path(path)
    if not sidecar.is_file():
        return {}
    try:
        return {CARD_KEY: sidecar.read_text(encoding="utf-8")}
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{sidecar}: cannot read the card ({exc})") from exc


def openvino_metadata(model) -> dict[str, str]:
    """An `openvino.Model`'s card as a metadata map: {CARD_KEY: json}, or {}."""
    if model.has_rt_info([CARD_KEY]):
        return {CARD_KEY: model.get_rt_info([CARD_KEY]).astype(str)}
    return {}


def read_metadata(path: Path) -> tuple[dict[str, str], list[Any]]:
    """The file's key/value metadata and its declared input dims (None where dynamic)."""
    if path.suffix not in FORMATS:
        raise ModelError(f"{path}: not a model file (.onnx, an OpenVINO IR's .xml, or .tflite)")
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    if path.suffix == ".tflite":
        detail = litert_interpreter(path, 1).get_input_details()[0]
        signature = detail.get("shape_signature", detail["shape"])
        return read_card_metadata(path), [None, *(int(d) for d in signature[1:])]
    if path.suffix == ".xml":
        if not path.with_suffix(".bin").is_file():
            raise ModelError(
                f"{path}: its weights {path.with_suffix('.bin').name} are missing (an OpenVINO "
                "IR is the .xml and the .bin beside it)"
            )
        model = read_openvino(path)
        dims = [d.get_length() if d.is_static else None for d in model.inputs[0].partial_shape]
        return openvino_metadata(model), dims
    session = onnxruntime_session(path)
    dims = [d if isinstance(d, int) else None for d in session.get_inputs()[0].shape]
    return dict(session.get_modelmeta().custom_metadata_map), dims


def read_card(path: str | Path) -> ModelCard:
    """The card of a model file (or a `builtin:` name)."""
    path = resolve_model_path(path)
    metadata, _ = read_metadata(path)
    return card_from_metadata(metadata, str(path))


def onnx_with_card(proto, card: ModelCard):
    """`proto` with `card` under CARD_KEY in its metadata, every other entry kept (in order)."""
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != CARD_KEY]
    del proto.metadata_props[:]
    for key, value in [*kept, (CARD_KEY, card.to_json())]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto


def write_onnx_card(proto, card: ModelCard, path: str | Path) -> Path:
    """An ONNX ModelProto written to `path` whole, with `card` (other metadata kept)."""
    return write_onnx(onnx_with_card(proto, card), path)


def write_openvino_card(
    model, card: ModelCard, xml_path: str | Path, compress_to_fp16: bool = False
) -> Path:
    """An `openvino.Model` written as an IR at `xml_path`, with `card` in its rt_info."""
    model.set_rt_info(card.to_json(), [CARD_KEY])
    return write_openvino(model, xml_path, compress_to_fp16, keep_same_bin=True)


def write_tflite_card(card: ModelCard, path: Path) -> Path:
    """A `.tflite` file's card written beside it."""
    return write_model_file(card_path(path), lambda handle: handle.write(card.to_json().encode()))
