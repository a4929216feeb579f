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

from birdinfer.config import Config, MelConfig, from_dict
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
    # The model's input without the batch axis: (channels, n_mels, frames).
    input_shape: tuple[int, int, int]
    # What the model's output holds before the pipeline's activation.
    output: str = "logits"
    version: int = CARD_VERSION
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
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
        )


def card_from_metadata(metadata: dict[str, str], path: str) -> ModelCard:
    """Parse the card out of a model file's key/value metadata."""
    text = metadata.get(CARD_KEY)
    if text is None:
        raise ModelError(
            f"{path}: no '{CARD_KEY}' metadata; export the model with `birdinfer export` so the "
            "file carries its class names, sample rate and mel settings"
        )
    try:
        card = ModelCard.from_json(text)
    except (ValueError, KeyError, TypeError, ConfigError) as exc:
        raise ModelError(f"{path}: unreadable '{CARD_KEY}' metadata ({exc})") from exc
    problem = class_problem(card.class_names)
    if problem is not None:
        raise ModelError(f"{path}: its card {problem}")
    return card


def class_problem(class_names: tuple[str, ...]) -> str | None:
    """Why a class list cannot name submission columns: none at all, or a name twice (the
    submission would get two columns of that name, one of them another class's scores)."""
    if not class_names:
        return "lists no classes"
    seen, twice = set(), []
    for name in class_names:
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    if twice:
        shown = ", ".join(repr(n) for n in twice[:5]) + (" ..." if len(twice) > 5 else "")
        return f"lists class names more than once: {shown}"
    return None


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
    if config.mel is not None:
        for f in dataclasses.fields(MelConfig):
            ours, theirs = getattr(config.mel, f.name), getattr(card.mel, f.name)
            if ours != theirs:
                found.append(f"mel.{f.name}: config {ours!r}, model {theirs!r}")
    frames = card.mel.frames_for(round(card.sample_rate * card.window_seconds))
    if card.input_shape[1:] != (card.mel.n_mels, frames):
        found.append(
            f"input shape {card.input_shape} does not fit the card's own mel settings "
            f"({card.mel.n_mels} mels x {frames} frames)"
        )
    return found
