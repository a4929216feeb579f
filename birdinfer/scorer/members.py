"""An ensemble member: a loaded model with its weight, geometry, front end and column map.

`build_member` turns a `models:` entry and its loaded backend into a Member (its geometry from
the entry and the card, its columns by name or through a mapping file) and refuses a geometry
the model cannot serve. Members with equal `key`s are fed the same inputs, and members with
equal `frontend`s share one front-end computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from birdinfer.audio import Cut
from birdinfer.config import Config, ImageConfig, MelConfig, ModelSpec
from birdinfer.errors import ConfigError, ModelError, first_line
from birdinfer.models.backends import Backend
from birdinfer.models.card import OutputSpec
from birdinfer.scorer.geometry import Geometry
from birdinfer.scorer.label_map import ColumnMap

# A whole front end: the mel settings (with scaling and normalisation) and the image steps.
FrontendKey = tuple[MelConfig, ImageConfig]
# A member's model inputs: its windows (Cut), through a front end, or raw (None: waveform).
FeatureKey = tuple[Cut, "FrontendKey | None"]


@dataclass
class Member:
    """One ensemble member: a loaded model, its weight, geometry and where its classes go."""

    name: str
    backend: Backend
    weight: float
    mel: MelConfig | None  # None: a waveform member (its front end, if any, is in its graph)
    columns: ColumnMap
    output: OutputSpec  # the output it scores, from the card
    activation: str  # for that output: see member_activation
    geometry: Geometry
    frame_pooling: str = "max"  # a frame-wise output's row score
    image: ImageConfig = ImageConfig()
    embeddings: tuple[str, ...] = ()  # outputs written per row to the per-window table
    mapping: str | None = None  # the mapping file its columns come from, if any
    frames: int | None = None  # a frame-wise output's frames per input (from the probe)
    covers: np.ndarray = field(default=None, repr=False)  # (columns,) bool

    def __post_init__(self) -> None:
        if self.covers is None:
            self.covers = self.columns.covers

    @property
    def waveform(self) -> bool:
        return self.mel is None

    @property
    def frontend(self) -> FrontendKey | None:
        """Members with equal keys share one front-end computation (mel, scaling, image)."""
        return None if self.mel is None else (self.mel, self.image)

    @property
    def key(self) -> FeatureKey:
        """Members with equal keys are fed the same inputs."""
        return (self.geometry.cut, self.frontend)


def member_activation(spec: ModelSpec, output: OutputSpec, default: str) -> str:
    """The member's own setting, else none for an output that holds probabilities, else the
    run's inference.activation (a version-1 card's output holds logits: as before)."""
    if spec.activation is not None:
        return spec.activation
    return "none" if output.holds == "probabilities" else default


def build_member(
    name: str, spec: ModelSpec, backend: Backend, probe: np.ndarray, config: Config, columns
) -> Member:
    """The member for `spec`, whose model answered the load-time probe with `probe`."""
    card = backend.card
    geometry = Geometry.for_member(
        spec.geometry,
        config.audio,
        card.window_seconds,
        card.sample_rate if card.waveform else None,
        spec.tile_overlap,
    )
    if spec.mapping:
        column_map = ColumnMap.from_file(spec.mapping, card.class_names, columns, name)
    else:
        column_map = ColumnMap.by_name(card.class_names, columns, str(backend.path))
    frames = probe.shape[1] if probe.ndim == 3 else None
    check_geometry(backend, geometry, frames)
    return Member(
        name=name,
        backend=backend,
        weight=spec.weight,
        mel=None if card.waveform else (config.mel or card.mel),
        columns=column_map,
        image=config.image or card.image,
        output=backend.output,
        activation=member_activation(spec, backend.output, config.inference.activation),
        geometry=geometry,
        frame_pooling=spec.frame_pooling,
        embeddings=tuple(o.name for o in backend.extra_outputs),
        mapping=spec.mapping,
        frames=frames,
    )


def check_geometry(backend: Backend, geometry: Geometry, frames: int | None) -> None:
    """A sliding member needs a frame-wise output whose frames step evenly with the rows."""
    if geometry.kind != "sliding":
        return
    output = backend.output
    if output.layout != "framewise":
        raise ModelError(
            f"{backend.path}: geometry sliding averages frame-wise outputs, and output "
            f"'{output.name}' is clip-wise: score a frame-wise output (models.output), or use "
            "geometry: centred"
        )
    if frames is None or geometry.frame_step(frames) is None:
        raise ModelError(
            f"{backend.path}: geometry sliding needs a whole number of output frames per "
            f"{geometry.row_seconds} s row; its {geometry.input_seconds} s input gives {frames} "
            "frames: use geometry: centred"
        )


def member_names(backends: list[Backend]) -> list[str]:
    """`<arch>:<file name>`, with `#<index>` where two members share it (the time guard and
    the stage table tell members apart by name)."""
    names = [f"{b.card.arch}:{b.path.name}" for b in backends]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def describe_member(member: Member, columns: list[str]) -> dict[str, Any]:
    """A member's entry in the run report's "models" section."""
    described = {
        "path": str(member.backend.path),
        "arch": member.backend.card.arch,
        "classes": member.backend.card.num_classes,
        "weight": member.weight,
        "output": member.output.name,
        "layout": member.output.layout,
        "activation": member.activation,
        "input": member.backend.card.input_kind,
        **member.geometry.describe(),
    }
    if member.embeddings:
        described["embeddings"] = list(member.embeddings)
    if member.mapping is not None:
        described["mapping"] = member.mapping
        # The columns this member leaves to the others (the ensemble mean over the rest).
        described["columns_not_covered"] = [
            c for c, ok in zip(columns, member.covers, strict=True) if not ok
        ]
    return described


def embedding_column(members: list[Member], index: int, output: str) -> str:
    """The per-window table's column for a member's embedding: `<output>:<model file stem>`,
    with the member's index when two members would share it."""
    name = f"{output}:{members[index].backend.path.stem}"
    clashes = sum(1 for m in members for o in m.embeddings if f"{o}:{m.backend.path.stem}" == name)
    return name if clashes == 1 else f"{name}#{index}"


def taxon_column_weights(config: Config, columns: list[str]) -> list[np.ndarray] | None:
    """Each member's weight per submission column when inference.taxonomy is set: its
    taxon_weights for the column's taxon (the taxonomy's class_name), else its weight, as the
    2026 2nd place's per-taxon blend. None without a taxonomy: one weight per member."""
    path = config.inference.taxonomy
    if not path:
        return None
    taxa = read_taxa(path)
    out = []
    for spec in config.models:
        by_taxon = dict(spec.taxon_weights or ())
        out.append(
            np.array([by_taxon.get(taxa.get(c, ""), spec.weight) for c in columns], np.float64)
        )
    return out


def read_taxa(path: str) -> dict[str, str]:
    """primary_label -> class_name from a BirdCLEF taxonomy.csv."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"inference.taxonomy: cannot read {path}: {first_line(exc)}") from None
    missing = {"primary_label", "class_name"} - set(frame.columns)
    if missing:
        raise ConfigError(
            f"inference.taxonomy: {path} lacks the column(s) {sorted(missing)} "
            "(a BirdCLEF taxonomy.csv has primary_label and class_name)"
        )
    return dict(zip(frame["primary_label"], frame["class_name"], strict=True))
