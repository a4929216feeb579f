"""`birdinfer card show|set` and `birdinfer frontend check`: a model file's card, read, written
onto a file exported elsewhere, and checked against the front end it was trained with.

A notebook's own `torch.onnx.export` or `ov.convert_model` writes no card; `set` attaches one
(class names, audio and front-end settings) so that birdinfer can run the file. Writes are
atomic: a temporary file beside the model, then a rename.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from birdinfer.config import AudioConfig, ImageConfig, MelConfig, from_dict
from birdinfer.errors import ModelError
from birdinfer.models.backends.base import resolve_model_path
from birdinfer.models.card import (
    CARD_KEY,
    CARD_VERSION,
    WAVEFORM_VERSION,
    ModelCard,
    OutputSpec,
    card_from_metadata,
    expected_input_shape,
)
from birdinfer.output.atomic import write_atomic


def read_metadata(path: Path) -> tuple[dict[str, str], list[Any]]:
    """The file's key/value metadata and its declared input dims (None where dynamic)."""
    if path.suffix == ".xml":
        import openvino as ov

        model = ov.Core().read_model(str(path))
        metadata = {}
        if model.has_rt_info([CARD_KEY]):
            metadata[CARD_KEY] = model.get_rt_info([CARD_KEY]).astype(str)
        dims = [d.get_length() if d.is_static else None for d in model.inputs[0].partial_shape]
        return metadata, dims
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{path}: ONNX Runtime cannot load it ({exc})") from exc
    dims = [d if isinstance(d, int) else None for d in session.get_inputs()[0].shape]
    return dict(session.get_modelmeta().custom_metadata_map), dims


def read_card(path: str | Path) -> ModelCard:
    path = resolve_model_path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    metadata, _ = read_metadata(path)
    return card_from_metadata(metadata, str(path))


def show(path: str | Path) -> str:
    """The card as indented JSON."""
    return json.dumps(json.loads(read_card(path).to_json()), indent=2, sort_keys=True)


def build_card(
    path: str | Path,
    config: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    classes: Sequence[str] | None = None,
    arch: str | None = None,
    output: str | None = None,
    waveform: bool = False,
    outputs: Sequence[str] = (),
) -> ModelCard:
    """A card for the model file: its old card (if any), then the config's audio, mel and image
    settings (a YAML, a bundled name, or just `--set` keys such as mel.preset=...), then flags.

    `waveform`: the model takes raw audio (a foundation model such as Perch v2, or a graph with
    its own mel): (batch, samples) or (batch, 1, samples), as the file declares, of
    audio.window_seconds at audio.sample_rate. `outputs`: the outputs to describe, as
    `NAME[:logits|probabilities|embedding]`, their layouts read off a forward pass."""
    path = resolve_model_path(path)
    metadata, dims = read_metadata(path)
    old = card_from_metadata(metadata, str(path)) if CARD_KEY in metadata else None
    data: dict[str, Any] = {}
    if config is not None:
        data = _config_data(config)
    for key, value in (overrides or {}).items():
        _set(data, key, value)
    settings = from_dict(data) if data else None
    mel = (settings.mel if settings and settings.mel else None) or (old.mel if old else None)
    if mel is None:
        mel = MelConfig(sample_rate=settings.audio.sample_rate if settings else 32000)
    image = (settings.image if settings else None) or (old.image if old else ImageConfig())
    audio = settings.audio if settings else AudioConfig(sample_rate=mel.sample_rate)
    window = audio.input_seconds if settings or old is None else old.window_seconds
    names = tuple(classes) if classes else (old.class_names if old else ())
    if not names:
        raise ModelError(f"{path}: give --classes (the file has no card to take them from)")
    card = ModelCard(
        arch=arch or (old.arch if old else path.stem),
        class_names=tuple(str(c) for c in names),
        sample_rate=mel.sample_rate,
        window_seconds=float(window),
        mel=mel,
        input_shape=expected_input_shape(mel, image, mel.sample_rate, window),
        output=output or (old.output if old else "logits"),
        extra=dict(old.extra) if old else {"card": "attached by birdinfer card set"},
        image=image,
    )
    if waveform:
        rate = settings.audio.sample_rate if settings else (old.sample_rate if old else 32000)
        samples = round(rate * window)
        card = dataclasses.replace(
            card,
            sample_rate=rate,
            mel=MelConfig(sample_rate=rate),
            image=ImageConfig(),
            input_shape=(1, samples) if len(dims) == 3 else (samples,),
            version=WAVEFORM_VERSION,
            input_kind="waveform",
        )
    _check_dims(path, card, dims)
    if outputs:
        card = _with_outputs(path, card, outputs)
    return card


def _with_outputs(path: Path, card: ModelCard, outputs: Sequence[str]) -> ModelCard:
    """The card with `outputs` described, each's layout read off one forward pass of zeros."""
    try:
        specs = [OutputSpec.parse(o) for o in outputs]
    except ValueError as exc:
        raise ModelError(str(exc)) from exc
    shapes = _output_shapes(path, card)
    described = []
    for spec in specs:
        if spec.name not in shapes:
            raise ModelError(f"{path}: no output '{spec.name}' (the file has {sorted(shapes)})")
        shape = shapes[spec.name]
        if (
            spec.holds == "embedding"
            and len(shape) == 2
            or spec.holds != "embedding"
            and shape[1:] == (card.num_classes,)
        ):
            layout = "clipwise"
        elif spec.holds != "embedding" and len(shape) == 3 and shape[2] == card.num_classes:
            layout = "framewise"
        else:
            raise ModelError(
                f"{path}: output '{spec.name}' has shape {shape}: neither (batch, "
                f"{card.num_classes}) nor (batch, frames, {card.num_classes}) for the "
                f"{card.num_classes} classes, nor an embedding (batch, dims)"
            )
        described.append(dataclasses.replace(spec, layout=layout))
    holds = next((o.holds for o in described if o.scores), "logits")
    return dataclasses.replace(
        card, outputs=tuple(described), output=holds, version=max(card.version, CARD_VERSION)
    )


def _output_shapes(path: Path, card: ModelCard) -> dict[str, tuple[int, ...]]:
    """Every output's shape for a batch of 2 inputs of zeros (the card's constants fed)."""
    batch = np.zeros((2, *card.input_shape), np.float32)
    if path.suffix == ".xml":
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU")
        result = compiled({0: batch})
        return {
            sorted(port.get_names())[0] if port.get_names() else f"port_{i}": tuple(
                result[port].shape
            )
            for i, port in enumerate(compiled.outputs)
        }
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {session.get_inputs()[0].name: batch})
    return {name: tuple(v.shape) for name, v in zip(names, values, strict=True)}


def _config_data(config: str) -> dict[str, Any]:
    from birdinfer.config import _read_yaml, resolve_config_path

    return _read_yaml(resolve_config_path(config))


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    from birdinfer.config import _set_dotted

    _set_dotted(data, dotted, value)


def _check_dims(path: Path, card: ModelCard, dims: list[Any]) -> None:
    expected = (None, *card.input_shape)
    fixed = [(d, w) for d, w in zip(dims, expected, strict=False) if isinstance(d, int) and w]
    if len(dims) != len(expected) or any(d != w for d, w in fixed):
        check = (
            "audio.sample_rate and audio.window_seconds"
            if card.waveform
            else "mel, image and window settings (--waveform for a model that takes raw audio)"
        )
        raise ModelError(
            f"{path}: the model's input is {dims}, but these settings make (batch, "
            f"{', '.join(map(str, card.input_shape))}): check {check}"
        )


def set_card(path: str | Path, card: ModelCard, out: str | Path | None = None) -> Path:
    """Write `card` into the model file (or a copy at `out`), atomically."""
    path = resolve_model_path(path)
    target = Path(out) if out else path
    if path.suffix == ".xml":
        import openvino as ov

        model = ov.Core().read_model(str(path))
        model.set_rt_info(card.to_json(), [CARD_KEY])
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.stem}.") as tmp:
            tmp_xml = Path(tmp) / "model.xml"
            ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
            os.replace(tmp_xml.with_suffix(".bin"), target.with_suffix(".bin"))
            os.replace(tmp_xml, target)
        return target
    try:
        import onnx
    except ImportError as exc:
        raise ModelError("writing an ONNX card needs onnx (pip install onnx)") from exc
    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != CARD_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in kept}, CARD_KEY: card.to_json()})
    return write_atomic(target, lambda handle: handle.write(proto.SerializeToString()), binary=True)


def check_frontend(
    recording: str | Path,
    model: str | Path | None = None,
    config: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    reference: str = "torchaudio",
    windows: int = 4,
):
    """birdinfer's model input for the first `windows` windows of `recording` against the
    reference (a library name or a .npy of saved features); returns a CheckResult."""
    from birdinfer.audio.decode import decode_windows
    from birdinfer.frontend.check import compare_with_array, compare_with_library

    if model is not None:
        card = read_card(model)
        if card.waveform:
            raise ModelError(
                f"{model}: takes raw audio (its front end, if any, is inside the graph): "
                "there is no birdinfer front end to check"
            )
        mel, image, seconds = card.mel, card.image, card.window_seconds
    else:
        data = _config_data(config) if config else {}
        for key, value in (overrides or {}).items():
            _set(data, key, value)
        settings = from_dict(data)
        mel = settings.mel or MelConfig(sample_rate=settings.audio.sample_rate)
        image = settings.image or ImageConfig()
        seconds = settings.audio.input_seconds
    audio = AudioConfig(sample_rate=mel.sample_rate, window_seconds=seconds)
    clips = decode_windows(Path(recording), audio)[:windows]
    if str(reference).endswith(".npy"):
        features = np.load(reference)
        features = features[: len(clips)] if features.ndim == 4 else features
        return compare_with_array(clips, mel, image, features, str(reference))
    return compare_with_library(clips, mel, image, reference)
