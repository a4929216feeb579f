"""What a model file says about itself: classes, audio and mel settings, architecture.

The card is stored as one JSON string under the key `birdinfer.card`: in an ONNX file's
`metadata_props`, in an OpenVINO IR's `rt_info`. The pipeline reads it back and refuses a model
whose settings contradict the run's config, naming each difference.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from birdinfer.config import Config, ImageConfig, MelConfig, from_dict, to_plain
from birdinfer.errors import ConfigError, ModelError

CARD_KEY = "birdinfer.card"
CARD_VERSION = 1


@dataclass(frozen=True)
class ModelCard:
    arch: str
    class_names: tuple[str, ...]
    sample_rate: int
    window_seconds: float
    mel: MelConfig
    # The model's input without the batch axis: (channels, height, width); (1, n_mels, frames)
    # unless the image steps change it.
    input_shape: tuple[int, int, int]
    # What the model's output holds before the pipeline's activation.
    output: str = "logits"
    version: int = CARD_VERSION
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Channels, resize and layout after the mel (cards written before these existed: none).
    image: ImageConfig = dataclasses.field(default_factory=ImageConfig)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["mel"] = to_plain(self.mel)
        data["image"] = to_plain(self.image)
        data["class_names"] = list(self.class_names)
        data["input_shape"] = list(self.input_shape)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        data = json.loads(text)
        version = data.get("version")
        if version != CARD_VERSION:
            raise ValueError(f"card version {version!r}, this birdinfer reads {CARD_VERSION}")
        mel = from_dict({"mel": data.pop("mel"), "audio": {"sample_rate": data["sample_rate"]}})
        image = from_dict({"image": data.pop("image", None) or {}}).image
        return cls(
            arch=str(data["arch"]),
            class_names=tuple(str(c) for c in data["class_names"]),
            sample_rate=int(data["sample_rate"]),
            window_seconds=float(data["window_seconds"]),
            mel=mel.mel,
            input_shape=tuple(int(x) for x in data["input_shape"]),
            output=str(data.get("output", "logits")),
            version=version,
            extra=dict(data.get("extra", {})),
            image=image,
        )


def card_from_metadata(metadata: dict[str, str], path: str) -> ModelCard:
    """Parse the card out of a model file's key/value metadata."""
    text = metadata.get(CARD_KEY)
    if text is None:
        raise ModelError(
            f"{path}: no '{CARD_KEY}' metadata; export the model with `birdinfer export`, or "
            f"attach a card to this file with `birdinfer card set {path} --config ... --classes "
            "...`, so that it carries its class names, sample rate and front-end settings"
        )
    try:
        return ModelCard.from_json(text)
    except (ValueError, KeyError, TypeError, ConfigError) as exc:
        raise ModelError(f"{path}: unreadable '{CARD_KEY}' metadata ({exc})") from exc


def contradictions(card: ModelCard, config: Config) -> list[str]:
    """Every setting where the model file and the run's config disagree, as readable lines."""
    found = []
    if card.sample_rate != config.audio.sample_rate:
        found.append(
            f"audio.sample_rate: config {config.audio.sample_rate}, model {card.sample_rate}"
        )
    if abs(card.window_seconds - config.audio.input_seconds) > 1e-9:
        context = config.audio.context_seconds
        found.append(
            f"audio.window_seconds: config {config.audio.window_seconds}"
            + (f" + 2 x audio.context_seconds {context}" if context else "")
            + f" = {config.audio.input_seconds} s of input, model {card.window_seconds} s"
        )
    for section, cls in (("mel", MelConfig), ("image", ImageConfig)):
        ours_all, theirs_all = getattr(config, section), getattr(card, section)
        if ours_all is None:
            continue
        for f in dataclasses.fields(cls):
            ours, theirs = getattr(ours_all, f.name), getattr(theirs_all, f.name)
            if ours != theirs:
                found.append(f"{section}.{f.name}: config {_show(ours)}, model {_show(theirs)}")
    expected = expected_input_shape(card.mel, card.image, card.sample_rate, card.window_seconds)
    if tuple(card.input_shape) != expected:
        found.append(
            f"input shape {card.input_shape} does not fit the card's own front-end settings "
            f"({expected})"
        )
    return found


def expected_input_shape(
    mel: MelConfig, image: ImageConfig, sample_rate: int, window_seconds: float
) -> tuple[int, int, int]:
    """(channels, height, width) that `mel` and `image` make of one window."""
    frames = mel.frames_for(round(sample_rate * window_seconds))
    return image.output_shape(mel.n_mels, frames)


def _show(value: Any) -> str:
    if isinstance(value, tuple) and value and hasattr(value[0], "to_plain"):
        return repr([step.to_plain() for step in value])
    return repr(value)
