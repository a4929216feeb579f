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

from birdinfer.audio import text_problem
from birdinfer.config import Config, ImageConfig, MelConfig, ModelSpec, from_dict, to_plain
from birdinfer.errors import ConfigError, ModelError, display_path

CARD_KEY = "birdinfer.card"
# 2 added `outputs` and `input_constants`; version-1 cards (one clip-wise output) still read.
CARD_VERSION = 2
# 3 added `input_kind: waveform`. Only waveform cards are written as version 3, so a birdinfer
# that cannot feed raw audio refuses them by version, while it still reads every other card.
WAVEFORM_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
# An embedding output holds (batch, dims) features, not class scores: it is written to the
# per-window table, never scored.
HOLDS = ("logits", "probabilities", "embedding")
LAYOUTS = ("clipwise", "framewise")
# What the model's first input takes: the front end's features (a mel image), or raw audio.
INPUT_KINDS = ("features", "waveform")


@dataclass(frozen=True)
class OutputSpec:
    """One graph output the pipeline can score.

    `holds`: logits (the run's activation applies), probabilities (used as they are), or an
    embedding (batch, dims), for the per-window table.
    `layout`: clipwise, (batch, classes), or framewise, (batch, frames, classes); None only on a
    card not yet exported (the exporter reads it off the output's shape).
    """

    name: str
    holds: str = "logits"
    layout: str | None = None

    def __post_init__(self) -> None:
        if self.holds not in HOLDS:
            raise ValueError(f"output '{self.name}': holds {self.holds!r}, expected one of {HOLDS}")
        if self.layout is not None and self.layout not in LAYOUTS:
            raise ValueError(
                f"output '{self.name}': layout {self.layout!r}, expected one of {LAYOUTS}"
            )

    @classmethod
    def parse(cls, text: str) -> OutputSpec:
        """`NAME` or `NAME:logits|probabilities|embedding`; NAME may be an index into a tuple's
        outputs."""
        name, _, holds = str(text).partition(":")
        if not name:
            raise ValueError(
                f"output {text!r}: expected NAME or NAME:logits|probabilities|embedding"
            )
        return cls(name, holds or "logits")

    @property
    def scores(self) -> bool:
        """Whether it holds class scores (logits or probabilities), as a member scores."""
        return self.holds != "embedding"


@dataclass(frozen=True)
class ModelCard:
    arch: str
    class_names: tuple[str, ...]
    sample_rate: int
    window_seconds: float
    mel: MelConfig
    # The model's input without the batch axis: (channels, height, width); (1, n_mels, frames)
    # unless the image steps change it. A waveform model's: (samples,) or (1, samples).
    input_shape: tuple[int, ...]
    # What the model's output holds before the pipeline's activation (version 1; a version-2
    # card says it per output, and this repeats the first output's).
    output: str = "logits"
    version: int = CARD_VERSION
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Channels, resize and layout after the mel (cards written before these existed: none).
    image: ImageConfig = dataclasses.field(default_factory=ImageConfig)
    # The outputs the pipeline may score, the first by default; () on a version-1 card: the
    # file's first output, clip-wise, holding `output`.
    outputs: tuple[OutputSpec, ...] = ()
    # Inputs beyond the features, each fed this value for every window (e.g. a TTA shift).
    input_constants: dict[str, Any] = dataclasses.field(default_factory=dict)
    # "waveform": the model takes raw audio at `sample_rate` (its front end is inside the
    # graph, or it is a foundation model such as Perch); `mel` and `image` then mean nothing.
    input_kind: str = "features"

    def __post_init__(self) -> None:
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind {self.input_kind!r}, expected one of {INPUT_KINDS}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def waveform(self) -> bool:
        return self.input_kind == "waveform"

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        # A waveform card has no front end to describe: null says so, where defaults would lie.
        data["mel"] = None if self.waveform else to_plain(self.mel)
        data["image"] = None if self.waveform else to_plain(self.image)
        if not self.waveform:  # a features card stays byte for byte what version 2 wrote
            del data["input_kind"]
        data["class_names"] = list(self.class_names)
        data["input_shape"] = list(self.input_shape)
        data["outputs"] = [dataclasses.asdict(o) for o in self.outputs]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        data = json.loads(text)
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            raise ValueError(
                f"card version {version!r}, this birdinfer reads {list(READABLE_VERSIONS)}"
            )
        rate = int(data["sample_rate"])
        mel = data.pop("mel")
        if isinstance(mel, dict) and mel.get("sample_rate") == rate:  # the file's one rate
            mel = {k: v for k, v in mel.items() if k != "sample_rate"}
        mel = from_dict({"mel": mel, "audio": {"sample_rate": rate}}).mel
        image = from_dict({"image": data.pop("image", None) or {}}).image
        input_kind = str(data.get("input_kind", "features"))
        if input_kind == "waveform" and version < WAVEFORM_VERSION:
            raise ValueError(f"a waveform card must be version {WAVEFORM_VERSION}, not {version}")
        outputs = tuple(OutputSpec(**o) for o in data.get("outputs", []))
        if any(o.layout is None for o in outputs):
            raise ValueError("an output without a layout (clipwise or framewise)")
        return cls(
            arch=str(data["arch"]),
            class_names=tuple(str(c) for c in data["class_names"]),
            sample_rate=rate,
            window_seconds=float(data["window_seconds"]),
            mel=mel or MelConfig(sample_rate=rate),
            input_shape=tuple(int(x) for x in data["input_shape"]),
            output=str(data.get("output", "logits")),
            version=version,
            extra=dict(data.get("extra", {})),
            image=image,
            outputs=outputs,
            input_constants=dict(data.get("input_constants", {})),
            input_kind=input_kind,
        )

    def output_spec(self, name: str | None, graph_outputs: list[str]) -> OutputSpec:
        """The output to score: `name`, else the card's first (a version-1 card's: the file's
        first output, clip-wise). Raises ValueError naming the choices."""
        if not self.outputs:
            spec = OutputSpec(graph_outputs[0], self.output, "clipwise")
            if name is None or name == spec.name:
                return spec
            raise ValueError(
                f"output '{name}': this card (version 1) describes one output, '{spec.name}'"
            )
        if name is None:
            return self.outputs[0]
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise ValueError(f"output '{name}': the card describes {[o.name for o in self.outputs]}")


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
        card = ModelCard.from_json(text)
    except (ValueError, KeyError, TypeError, ConfigError) as exc:
        raise ModelError(f"{path}: unreadable '{CARD_KEY}' metadata ({exc})") from exc
    problem = class_problem(card.class_names)
    if problem is not None:
        raise ModelError(f"{path}: its card {problem}")
    return card


def class_problem(class_names: tuple[str, ...]) -> str | None:
    """Why a class list cannot name submission columns: none at all, a name twice (the
    submission would get two columns of that name, one of them another class's scores), an
    empty name, `row_id`, or one that does not read back from the CSV header as written (a
    carriage return or line break, any control character, text that is not UTF-8)."""
    if not class_names:
        return "lists no classes"
    seen, twice = set(), []
    for position, name in enumerate(class_names):
        if not name.strip():
            return f"lists an empty class name (at position {position})"
        if name == "row_id":
            return "lists a class called 'row_id', the submission's first column"
        problem = text_problem(name)
        if problem is not None:
            return f"lists the class name {_shown(name)}, which {problem}"
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    if twice:
        shown = ", ".join(_shown(n) for n in twice[:5]) + (" ..." if len(twice) > 5 else "")
        return f"lists class names more than once: {shown}"
    return None


def _shown(name: str) -> str:
    return f"'{display_path(name)}'"


def contradictions(card: ModelCard, config: Config, spec: ModelSpec | None = None) -> list[str]:
    """Every setting where the model file and the run's config (with the member's own entry,
    `spec`) disagree, as readable lines."""
    found = []
    # A tiled waveform member's windows are resampled to the model's own rate.
    resampled = card.waveform and spec is not None and spec.geometry == "tiled"
    if card.sample_rate != config.audio.sample_rate and not resampled:
        found.append(
            f"audio.sample_rate: config {config.audio.sample_rate}, model {card.sample_rate}"
        )
    found += _window_contradictions(card, config, spec)
    if card.waveform:  # its front end is inside the graph: the run's mel and image do not apply
        return found + _waveform_shape_contradictions(card)
    for section, cls in (("mel", MelConfig), ("image", ImageConfig)):
        ours_all, theirs_all = getattr(config, section), getattr(card, section)
        if ours_all is None:
            continue
        for f in dataclasses.fields(cls):
            ours, theirs = getattr(ours_all, f.name), getattr(theirs_all, f.name)
            if ours != theirs:
                found.append(f"{section}.{f.name}: config {_show(ours)}, model {_show(theirs)}")
    expected = expected_input_shape(card.mel, card.image, card.sample_rate, card.window_seconds)
    if len(card.input_shape) != 3:
        found.append(
            f"input shape {card.input_shape}: a features card takes (channels, height, width); "
            "a raw-audio model's card says input_kind: waveform"
        )
    elif card.input_shape[0] != expected[0]:
        found.append(
            f"the model takes {card.input_shape[0]} input channels and its front end makes "
            f"{expected[0]}: set image.channels (and image.channel_mode: repeat or delta) to what "
            "the model was trained on"
        )
    elif tuple(card.input_shape) != expected:
        found.append(
            f"input shape {card.input_shape} does not fit the card's own front-end settings "
            f"({expected})"
        )
    return found


def _window_contradictions(card: ModelCard, config: Config, spec: ModelSpec | None) -> list[str]:
    audio = config.audio
    if spec is not None and spec.geometry == "tiled":
        if card.window_seconds > audio.window_seconds + 1e-9:
            return [
                f"geometry tiled: the model hears {card.window_seconds} s, longer than the "
                f"{audio.window_seconds} s rows it tiles (use centred or sliding)"
            ]
        if spec.tile_overlap >= card.window_seconds:
            return [
                f"models.tile_overlap {spec.tile_overlap} s: must be shorter than the model's "
                f"{card.window_seconds} s window"
            ]
        return []
    if spec is not None and spec.geometry is not None:
        # The member's own window, placed around each row: it must hold the row whole.
        if card.window_seconds + 1e-9 < audio.window_seconds:
            return [
                f"geometry {spec.geometry}: the model hears {card.window_seconds} s, shorter "
                f"than the {audio.window_seconds} s rows (audio.window_seconds) it would score"
            ]
        return []
    if abs(card.window_seconds - audio.input_seconds) <= 1e-9:
        return []
    context = audio.context_seconds
    hint = ""
    if card.window_seconds > audio.window_seconds:
        hint = (
            " (a longer model window scores rows with this member's geometry: centred, the row "
            "in the middle of its window, or sliding)"
        )
    return [
        f"audio.window_seconds: config {audio.window_seconds}"
        + (f" + 2 x audio.context_seconds {context}" if context else "")
        + f" = {audio.input_seconds} s of input, model {card.window_seconds} s"
        + hint
    ]


def _waveform_shape_contradictions(card: ModelCard) -> list[str]:
    samples = round(card.sample_rate * card.window_seconds)
    if tuple(card.input_shape) in ((samples,), (1, samples)):
        return []
    return [
        f"input shape {card.input_shape} does not fit a waveform of {card.window_seconds} s at "
        f"{card.sample_rate} Hz: ({samples},) or (1, {samples})"
    ]


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
