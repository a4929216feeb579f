"""`birdinfer card show|set` and `birdinfer frontend check`: a model file's card, read, written
onto a file exported elsewhere, and checked against the front end it was trained with.

A notebook's own `torch.onnx.export` or `ov.convert_model` writes no card; `set` attaches one
(class names, audio and front-end settings) so that birdinfer can run the file. Writes are
whole or not at all, and keep the file's mode (birdinfer.models.files); `set` changes
only what it is told to change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from birdinfer.config import AudioConfig, ImageConfig, MelConfig, from_dict, to_plain
from birdinfer.errors import ConfigError, ModelError
from birdinfer.models.card import (
    CARD_KEY,
    CARD_VERSION,
    WAVEFORM_VERSION,
    ModelCard,
    OutputSpec,
    card_from_metadata,
    class_problem,
    expected_input_shape,
)
from birdinfer.models.files.card_io import (
    read_card,
    read_metadata,
    write_onnx_card,
    write_openvino_card,
    write_tflite_card,
)
from birdinfer.models.files.locate import resolve_model_path
from birdinfer.models.files.sessions import (
    compile_openvino,
    litert_interpreter,
    onnxruntime_session,
    read_openvino,
)
from birdinfer.models.files.write import check_writable_target
from birdinfer.models.probe import PROBE_FIELD


def show(path: str | Path) -> str:
    """The card as indented JSON, its probe summarised (its windows are data, not settings)."""
    data = json.loads(read_card(path).to_json())
    probe = data.get("extra", {}).get(PROBE_FIELD)
    if isinstance(probe, dict):
        data["extra"][PROBE_FIELD] = {
            "windows": (probe.get("inputs") or {}).get("shape"),
            "outputs": sorted(probe.get("outputs") or {}),
            **{k: probe.get(k) for k in ("tolerance", "reference", "made_on")},
        }
    return json.dumps(data, indent=2, sort_keys=True)


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
    """A card for the model file: its old card (if any) with only what is asked changed.

    The front end starts from the old card's settings (none: the defaults). `config` (a YAML or
    a bundled name) replaces each of its audio, mel and image sections that it sets; `overrides`
    (`--set` keys) change one key each, and mel.preset the whole mel section (and image, unless
    it is set too). Everything else on the old card (outputs, input constants, extra keys, and
    any field a later birdinfer adds) is kept as it was.

    `waveform`: the model takes raw audio (a foundation model such as Perch v2, or a graph with
    its own mel): (batch, samples) or (batch, 1, samples), as the file declares, of
    audio.window_seconds at audio.sample_rate; a waveform card stays one. `outputs`: the outputs
    to describe, as `NAME[:logits|probabilities|embedding]`, their layouts read off a forward
    pass."""
    path = resolve_model_path(path)
    metadata, dims = read_metadata(path)
    old = card_from_metadata(metadata, str(path)) if CARD_KEY in metadata else None
    names = tuple(str(c) for c in classes) if classes else (old.class_names if old else ())
    if not names:
        raise ModelError(f"{path}: give --classes (the file has no card to take them from)")
    problem = class_problem(names)
    if problem is not None:
        raise ModelError(f"{path}: the new card {problem}")
    settings = _settings(old, config, overrides or {})
    waveform = waveform or (old is not None and old.waveform)
    window = settings.audio.input_seconds
    base = old or ModelCard(
        arch=path.stem,
        class_names=names,
        sample_rate=settings.audio.sample_rate,
        window_seconds=window,
        mel=MelConfig(),
        input_shape=(),
        extra={"card": "attached by birdinfer card set"},
    )
    rate = settings.audio.sample_rate
    if waveform:
        samples = round(rate * window)
        card = dataclasses.replace(
            base,
            mel=MelConfig(sample_rate=rate),
            image=ImageConfig(),
            input_shape=(1, samples) if len(dims) == 3 else (samples,),
            version=max(base.version, WAVEFORM_VERSION),
            input_kind="waveform",
        )
    else:
        mel = settings.mel or MelConfig(sample_rate=rate)
        image = settings.image or ImageConfig()
        card = dataclasses.replace(
            base,
            mel=mel,
            image=image,
            input_shape=expected_input_shape(mel, image, rate, window),
        )
    card = dataclasses.replace(
        card,
        arch=arch or card.arch,
        class_names=names,
        sample_rate=rate,
        window_seconds=float(window),
    )
    if "mel.preset" in (overrides or {}) and not waveform:
        card = dataclasses.replace(
            card, extra={**card.extra, "mel_preset": str(overrides["mel.preset"])}
        )
    _check_dims(path, card, dims)
    if outputs:  # each says what it holds (NAME:probabilities)
        return _with_outputs(path, card, outputs)
    return _with_holds(card, output) if output else card


def _settings(old: ModelCard | None, config: str | None, overrides: Mapping[str, Any]):
    """The front end's settings: the old card's, then `config`'s sections, then `overrides`."""
    data = _card_settings(old) if old else {}
    if "mel.preset" in overrides:  # a preset is a whole front end: nothing of the old mel stays
        data.pop("mel", None)
        if not any(key.startswith("image.") for key in overrides):
            data.pop("image", None)
    told: set[str] = {key for key in overrides if key.endswith(".sample_rate")}
    preset = "mel.preset" in overrides
    if config is not None:
        given = _config_data(config)
        for section in ("audio", "mel", "image"):
            if preset and section != "audio":
                continue  # nor of the config's: the preset replaces them, --set keys win
            if isinstance(given.get(section), dict):
                data[section] = given[section]
                told |= {f"{section}.sample_rate"} if "sample_rate" in given[section] else set()
    for key, value in overrides.items():
        _set(data, key, value)
    _one_sample_rate(data, told)
    return from_dict(data)


def _card_settings(card: ModelCard) -> dict[str, Any]:
    """A card's front end as config data: its window as audio.window_seconds (no context)."""
    data: dict[str, Any] = {
        "audio": {"sample_rate": card.sample_rate, "window_seconds": card.window_seconds}
    }
    if not card.waveform:
        data["mel"] = to_plain(card.mel)
        data["image"] = to_plain(card.image)
    return data


def _one_sample_rate(data: dict[str, Any], told: set[str]) -> None:
    """A card has one sample rate, audio.sample_rate (the loader gives it to the mel section).
    One told as mel.sample_rate, its old key, wins over the old card's (with the loader's
    warning); a mel rate not told is the old card's, and goes."""
    audio, mel = data.setdefault("audio", {}), data.get("mel")
    if not isinstance(audio, dict) or not isinstance(mel, dict):
        return
    if "mel.sample_rate" in told and "audio.sample_rate" not in told:
        audio.pop("sample_rate", None)
    elif "mel.sample_rate" not in told:
        mel.pop("sample_rate", None)


def _with_holds(card: ModelCard, holds: str) -> ModelCard:
    """`--emits logits|probabilities`: what the scored output holds, on each card field that
    says it (the first scoring output's, and the version-1 field)."""
    described = list(card.outputs)
    first = next((i for i, o in enumerate(described) if o.scores), None)
    if first is not None:
        described[first] = dataclasses.replace(described[first], holds=holds)
    return dataclasses.replace(card, output=holds, outputs=tuple(described))


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
    batch = [np.zeros((2, *card.input_shape), np.float32)]
    for value in card.input_constants.values():
        array = np.asarray(value)
        array = array.astype(np.float32 if array.dtype.kind == "f" else array.dtype)
        batch.append(np.ascontiguousarray(np.broadcast_to(array, (2, *array.shape))))
    if path.suffix == ".tflite":  # one input (LiteRT members take no constants)
        from birdinfer.models.backends.litert import tensor_names

        runner = litert_interpreter(path, 1, keep_tensors=True)
        runner.resize_tensor_input(runner.get_input_details()[0]["index"], list(batch[0].shape))
        runner.allocate_tensors()
        runner.set_tensor(runner.get_input_details()[0]["index"], batch[0])
        runner.invoke()
        index = {d["name"]: d["index"] for d in runner.get_tensor_details()}
        shapes = {}
        for name in tensor_names(runner):
            # a tensor without data (a constant folded away): not an output
            with contextlib.suppress(ValueError):
                shapes[name] = tuple(runner.get_tensor(index[name]).shape)
        return shapes
    if path.suffix == ".xml":
        compiled = compile_openvino(path)
        result = compiled(dict(enumerate(batch)))
        return {
            sorted(port.get_names())[0] if port.get_names() else f"port_{i}": tuple(
                result[port].shape
            )
            for i, port in enumerate(compiled.outputs)
        }
    session = onnxruntime_session(path)
    names = [o.name for o in session.get_outputs()]
    feeds = dict(zip((i.name for i in session.get_inputs()), batch, strict=False))
    values = session.run(names, feeds)
    return {name: tuple(v.shape) for name, v in zip(names, values, strict=True)}


def _config_data(config: str) -> dict[str, Any]:
    from birdinfer.config import read_yaml, resolve_config_path

    return read_yaml(resolve_config_path(config))


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    from birdinfer.config import set_dotted

    set_dotted(data, dotted, value)


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
    """Write `card` into the model file (or a copy at `out`): whole or not at all, keeping the
    file's mode, through a symlink to its target (birdinfer.models.files)."""
    path = resolve_model_path(path)
    target = Path(out) if out else path
    if target.suffix != path.suffix:
        raise ModelError(
            f"{target}: --out must end in {path.suffix}, as {path.name} does (converting between "
            "runtimes is `birdinfer export` or OpenVINO's own tools)"
        )
    check_writable_target(target)
    if path.suffix == ".tflite":  # the card beside the file
        from birdinfer.models.tflite_graph import add_outputs

        runner = litert_interpreter(path, 1)
        graph_outputs = [d["name"] for d in runner.get_output_details()]
        missing = [o.name for o in card.outputs if o.name not in graph_outputs]
        if missing or target != path:  # inner tensors become outputs, in the file or a copy
            add_outputs(path, missing, target)
        write_tflite_card(card, target)
        return target
    if path.suffix == ".xml":
        return write_openvino_card(read_openvino(path), card, target)
    try:
        import onnx
    except ImportError as exc:
        raise ModelError("writing an ONNX card needs onnx (pip install onnx)") from exc
    return write_onnx_card(onnx.load(str(path)), card, target)


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
    from birdinfer.audio import decode_windows
    from birdinfer.frontend import compare_with_array, compare_with_library

    if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
        raise ConfigError(f"--window-count {windows}: the windows to compare must be 1 or more")
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
        features = _saved_features(Path(reference))
        features = features[: len(clips)] if features.ndim == 4 else features
        return compare_with_array(clips, mel, image, features, str(reference))
    return compare_with_library(clips, mel, image, reference)


def _saved_features(path: Path) -> np.ndarray:
    """A .npy of features saved by training code: numbers only, never unpickled."""
    try:
        features = np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays, or not a .npy: numpy would unpickle either
        raise ConfigError(
            f"{path} (--reference): holds pickled objects (or is not a .npy array), and "
            "birdinfer does not unpickle files: save the features with "
            "np.save(path, features.astype('float32'))"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path} (--reference): cannot be read as a .npy ({exc})") from exc
    if not isinstance(features, np.ndarray) or features.dtype.kind not in "fiu":
        raise ConfigError(f"{path} (--reference): holds {features.dtype}, not numbers")
    return features
