"""The ensemble of a run: its members (loaded models, weights, column maps) and front ends.

Built once per config (models loaded, checked against the config and by a tiny forward pass
before any audio is read) and reused across files and runs. It turns windows into model inputs
(one front end per distinct setting, shared by the members that agree), one member's inputs into
probabilities in submission column order, and several members' into their weighted mean. The
streaming engine and the executors call it; `predict_file` scores one recording directly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from birdinfer.audio.decode import WindowReader
from birdinfer.audio.rows import row_ids
from birdinfer.config import Config, ImageConfig, MelConfig, ModelSpec
from birdinfer.errors import ModelError, first_line
from birdinfer.frontend.logmel import LogMel
from birdinfer.inference.postprocess import (
    activate,
    average_views,
    pool_frames,
    row_frames,
    weighted_mean,
)
from birdinfer.inference.stage_timer import StageTimer
from birdinfer.inference.threads import ThreadPlan, plan_threads
from birdinfer.models.backends import Backend, open_backend
from birdinfer.models.card import OutputSpec, contradictions
from birdinfer.output.submission import build_submission, column_order, read_class_columns
from birdinfer.output.windows_table import windows_frame
from birdinfer.results import FileResult

log = logging.getLogger(__name__)


@dataclass
class Member:
    """One ensemble member: a loaded model, its weight and where its classes go."""

    name: str
    backend: Backend
    weight: float
    mel: MelConfig
    columns: np.ndarray  # model class index for each submission column
    output: OutputSpec  # the output it scores, from the card
    activation: str  # for that output: see member_activation
    frame_pooling: str = "max"  # a frame-wise output's row score
    image: ImageConfig = ImageConfig()

    @property
    def frontend(self) -> FrontendKey:
        """Members with equal keys share one front-end computation (mel, scaling, image)."""
        return (self.mel, self.image)


# A whole front end: the mel settings (with scaling and normalisation) and the image steps.
FrontendKey = tuple[MelConfig, ImageConfig]


def member_activation(spec: ModelSpec, output: OutputSpec, default: str) -> str:
    """The member's own setting, else none for an output that holds probabilities, else the
    run's inference.activation (a version-1 card's output holds logits: as before)."""
    if spec.activation is not None:
        return spec.activation
    return "none" if output.holds == "probabilities" else default


class Ensemble:
    """Loaded models and front ends for one config; reusable across folders and files."""

    def __init__(self, config: Config, plan: ThreadPlan | None = None) -> None:
        self.config = config
        self.plan = plan or plan_threads(config.inference.workers, config.inference.threads)
        self.timer = StageTimer()
        backends = [
            open_backend(spec.path, self.plan.threads, spec.output) for spec in config.models
        ]
        self._check_cards(backends)
        self.columns = self._columns(backends)
        self.members = [
            Member(
                name=f"{b.card.arch}:{b.path.name}",
                backend=b,
                weight=spec.weight,
                mel=config.mel or b.card.mel,
                columns=column_order(b.card.class_names, self.columns, str(b.path)),
                image=config.image or b.card.image,
                output=b.output,
                activation=member_activation(spec, b.output, config.inference.activation),
                frame_pooling=spec.frame_pooling,
            )
            for spec, b in zip(config.models, backends, strict=True)
        ]
        # One front end per distinct setting: members that agree share one computation.
        self.frontends = {m.frontend: LogMel(*m.frontend) for m in self.members}
        self._check_inputs()

    def _check_cards(self, backends: list[Backend]) -> None:
        problems = []
        for backend in backends:
            problems += [f"{backend.path}: {p}" for p in contradictions(backend.card, self.config)]
        if problems:
            raise ModelError("model and config disagree:\n  " + "\n  ".join(problems))
        if not self.config.inference.allow_rejected_models:
            for backend in backends:
                _refuse_rejected(backend)

    def _check_inputs(self) -> None:
        """Each model takes what its front end makes, before any audio is read: a card (and a
        graph) may declare 3 input channels where the log-mel gives 1, and every file would then
        be skipped. A tiny forward pass on the front end's own shape also catches a broken model.
        """
        samples = self.config.audio.input_samples
        for member in self.members:
            backend = member.backend
            shape = tuple(self.frontends[member.frontend].output_shape(samples))
            if tuple(backend.card.input_shape) != shape:
                raise ModelError(
                    f"{backend.path}: its input is {tuple(backend.card.input_shape)} "
                    f"(channels, mels, frames), but its front end makes {shape}"
                )
            try:
                backend(np.zeros((1, *shape), dtype=np.float32))
            except ModelError:
                raise
            except Exception as exc:  # runtimes raise their own types, with long texts
                raise ModelError(
                    f"{backend.path}: a test forward pass on its front end's shape {shape} "
                    f"failed ({first_line(exc)})"
                ) from exc

    def _columns(self, backends: list[Backend]) -> list[str]:
        sample = self.config.output.sample_submission
        if sample:
            return read_class_columns(sample)
        return list(backends[0].card.class_names)

    def describe(self) -> dict[str, Any]:
        """The run report's "threads" and "models" sections."""
        return {
            "threads": {
                "cores": self.plan.cores,
                "workers": self.plan.workers,
                "runtime_threads": self.plan.threads,
            },
            "models": [
                {
                    "path": str(m.backend.path),
                    "arch": m.backend.card.arch,
                    "classes": m.backend.card.num_classes,
                    "weight": m.weight,
                    "output": m.output.name,
                    "layout": m.output.layout,
                    "activation": m.activation,
                }
                for m in self.members
            ],
        }

    # --- per file -----------------------------------------------------------------------------

    def features(self, windows: np.ndarray) -> dict[FrontendKey, np.ndarray]:
        """Model inputs for (n, samples) audio windows, one array per distinct front end."""
        self.timer.count(len(windows))
        with self.timer("mel"):
            return {key: frontend(windows) for key, frontend in self.frontends.items()}

    def member_scores(self, index: int, features: dict[FrontendKey, np.ndarray]) -> np.ndarray:
        """One member's probabilities (n, columns), in submission column order."""
        member = self.members[index]
        self.timer.count(len(next(iter(features.values()))), member=index)
        with self.timer(f"model {member.name}"):
            raw = member.backend(features[member.frontend])
        with self.timer("postprocess"):
            scores = activate(raw, member.activation)
            if scores.ndim == 3:  # frame-wise: (n, frames, classes)
                audio = self.config.audio
                span = row_frames(scores.shape[1], audio.input_seconds, audio.context_seconds)
                scores = pool_frames(scores, member.frame_pooling, span)
            scores = scores[:, member.columns]
            # An Inf logit is a broken output though the sigmoid maps it to 0 or 1: its window
            # reads NaN here, so that the engine counts it (inference.non_finite).
            broken = ~np.isfinite(raw.reshape(len(raw), -1)).all(axis=1)
            if broken.any():
                scores[broken] = np.nan
            return scores

    def combine(self, per_member: dict[int, np.ndarray]) -> np.ndarray:
        """Weighted mean of the members that scored these rows (weights renormalised)."""
        if len(per_member) == 1:
            return next(iter(per_member.values()))
        with self.timer("postprocess"):
            indices = sorted(per_member)
            weights = [self.members[i].weight for i in indices]
            return weighted_mean([per_member[i] for i in indices], weights)

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities (n, columns) for a batch of (n, samples) audio windows."""
        features = self.features(windows)
        return self.combine({i: self.member_scores(i, features) for i in range(len(self.members))})

    def predict_file(self, path: str | Path) -> FileResult:
        """Scores for every window of one recording; raises AudioError for a bad file."""
        path = Path(path)
        batch_size = self.config.inference.batch_size
        reader = WindowReader(path, self.config.audio)
        parts = []
        for group in self.timed(reader, "decode"):
            for start in range(0, group.shape[0], batch_size):
                parts.append(self.predict_windows(group[start : start + batch_size]))
        scores = average_views(np.concatenate(parts), self.config.audio.views)
        ids = row_ids(path.stem, reader.n_windows, self.config.audio.window_seconds)
        return FileResult(path, ids, scores, list(reader.warnings))

    def timed(self, iterator, stage: str) -> Iterator[np.ndarray]:
        iterator = iter(iterator)
        while True:
            with self.timer(stage):
                item = next(iterator, None)
            if item is None:
                return
            yield item

    # --- a whole folder -----------------------------------------------------------------------

    def submission(self, results: list[FileResult]) -> pd.DataFrame:
        ids = [row for r in results for row in r.row_ids]
        if results:
            scores = np.concatenate([r.scores for r in results])
        else:
            scores = np.zeros((0, len(self.columns)), np.float32)
        return build_submission(ids, scores, self.columns)


def _refuse_rejected(backend: Backend) -> None:
    """A quantized variant the accuracy guard rejected (its card says so) does not run."""
    extra = backend.card.extra
    if extra.get("accepted") is not False:
        return
    guard = extra.get("guard") or {}
    reason = guard.get("reason") or "no reason recorded"
    raise ModelError(
        f"{backend.path}: the quantization guard rejected this {extra.get('variant', 'variant')} "
        f"({reason}); set inference.allow_rejected_models: true (--set "
        "inference.allow_rejected_models=true) to run it anyway"
    )


def predict_frame(ensemble: Ensemble, path: str | Path) -> pd.DataFrame:
    """`ensemble.predict_file(path)` as a table (see `windows_frame`); raises AudioError."""
    result = ensemble.predict_file(path)
    return windows_frame([result], ensemble.columns, ensemble.config.audio.window_seconds)
