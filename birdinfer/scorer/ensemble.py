"""The ensemble of a run: its members (loaded models, weights, geometry, column maps) and front
ends.

Built once per config (models loaded, checked against the config and by a tiny forward pass
before any audio is read) and reused across files and runs. From a span of decoded audio it
makes every member's model inputs: raw windows for waveform members, and each distinct front
end once, over all the window lengths its members hear (birdinfer.frontend.shared). It turns one
member's inputs into scores in submission column order, one file's inputs into rows (the
member's geometry), and several members' rows into their weighted mean, per column over the
members that cover it. It drives nothing: the streaming engine (birdinfer.scorer.streaming) is
the one driver of a file through it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from birdinfer.audio import Cut, Span, peak_normalize
from birdinfer.config import Config
from birdinfer.errors import ModelError, first_line
from birdinfer.frontend import LogMel, SharedFrontEnd
from birdinfer.models.backends import Backend, open_backend
from birdinfer.models.card import contradictions
from birdinfer.output import read_class_columns
from birdinfer.scorer.members import (
    FeatureKey,
    FrontendKey,
    build_member,
    describe_member,
    embedding_column,
    member_names,
    taxon_column_weights,
)
from birdinfer.scorer.postprocess import (
    activate,
    average_views,
    covered_mean,
    file_scale,
    weighted_mean,
)
from birdinfer.scorer.probes import check_members
from birdinfer.scorer.stage_timer import StageTimer
from birdinfer.scorer.threads import EngineThreads

log = logging.getLogger(__name__)


class Ensemble:
    """Loaded models and front ends for one config; reusable across folders and files."""

    def __init__(self, config: Config, threads: EngineThreads | None = None) -> None:
        self.config = config
        # The engine's threads, as the run's plan gives them; alone, every core this process
        # may use (inference.workers and .threads when set).
        self.threads = threads or EngineThreads.for_cores(
            None, config.inference.workers, config.inference.threads
        )
        self.timer = StageTimer()
        backends = [self._open(i, spec.path) for i, spec in enumerate(config.models)]
        probes = self._check_models(backends)
        names = member_names(backends)
        # Before any audio: each member's own probe on this CPU (a failed one may be replaced).
        backends, self.probe_checks = check_members(
            backends, names, config.inference.probe, self._open
        )
        self.columns = self._columns(backends)
        self.members = [
            build_member(name, spec, b, probe, config, self.columns)
            for name, spec, b, probe in zip(names, config.models, backends, probes, strict=True)
        ]
        self._check_coverage()
        self.column_weights = taxon_column_weights(config, self.columns)
        # One front end per distinct setting: members that agree share one computation, over
        # every window length they hear.
        self.frontends = {
            m.frontend: SharedFrontEnd(LogMel(*m.frontend)) for m in self.members if m.frontend
        }
        self._frontend_names = {key: f"frontend {i}" for i, key in enumerate(self.frontends)}

    def _open(self, index: int, path: str | Path) -> Backend:
        """Member `index`'s model file (or its stand-in) as the run loads it."""
        spec = self.config.models[index]
        embeddings = (spec.embedding,) if spec.embedding else ()
        return open_backend(path, self.threads.threads, spec.output, embeddings)

    def _check_models(self, backends: list[Backend]) -> list[np.ndarray]:
        problems = []
        for spec, backend in zip(self.config.models, backends, strict=True):
            problems += [
                f"{backend.path}: {p}" for p in contradictions(backend.card, self.config, spec)
            ]
        if problems:
            raise ModelError("model and config disagree:\n  " + "\n  ".join(problems))
        if not self.config.inference.allow_rejected_models:
            for backend in backends:
                _refuse_rejected(backend)
        # A tiny forward pass: a broken model fails here, before any audio is read.
        probes = []
        for backend in backends:
            try:
                probes.append(backend(np.zeros((1, *backend.card.input_shape), dtype=np.float32)))
            except ModelError:
                raise
            except Exception as exc:  # runtimes raise their own types, with long texts
                raise ModelError(
                    f"{backend.path}: a test forward pass on its card's input shape "
                    f"{backend.card.input_shape} failed ({first_line(exc)})"
                ) from exc
        return probes

    def _columns(self, backends: list[Backend]) -> list[str]:
        sample = self.config.output.sample_submission
        if sample:
            return read_class_columns(sample)
        mapped = [spec.mapping is not None for spec in self.config.models]
        first = next((b for b, m in zip(backends, mapped, strict=True) if not m), None)
        if first is None:
            raise ModelError(
                "every member maps its labels through a mapping file: give the submission's "
                "columns with output.sample_submission"
            )
        return list(first.card.class_names)

    def _check_coverage(self) -> None:
        covered = np.any([m.covers for m in self.members], axis=0)
        if not covered.all():
            missing = [c for c, ok in zip(self.columns, covered, strict=True) if not ok]
            raise ModelError(
                f"{len(missing)} submission columns are covered by no member (each member's "
                f"mapping leaves them out): {', '.join(missing[:10])}"
                + (" ..." if len(missing) > 10 else "")
            )
        for member in self.members:
            if not member.columns.complete:
                log.info(
                    "%s covers %d of %d columns; the others come from the other members",
                    member.name,
                    int(member.covers.sum()),
                    len(self.columns),
                )

    def frontend_name(self, index: int) -> str | None:
        """The stage timer's name for the front end member `index` uses (None: waveform)."""
        frontend = self.members[index].frontend
        return None if frontend is None else self._frontend_names[frontend]

    def covers_all(self, members: Iterable[int]) -> bool:
        """Whether these members together score every submission column."""
        masks = [self.members[i].covers for i in members]
        return bool(masks) and bool(np.any(masks, axis=0).all())

    def uncovered(self, members: Iterable[int]) -> list[str]:
        """The submission columns none of these members scores."""
        masks = [self.members[i].covers for i in members]
        covered = np.any(masks, axis=0) if masks else np.zeros(len(self.columns), bool)
        return [c for c, ok in zip(self.columns, covered, strict=True) if not ok]

    def describe(self) -> dict[str, Any]:
        """The run report's "threads" and "models" sections."""
        return {
            "threads": self.threads.report(),
            "models": [
                {**describe_member(m, self.columns), "probe": check}
                for m, check in zip(self.members, self.probe_checks, strict=True)
            ],
        }

    # --- per span of rows -------------------------------------------------------------------

    @property
    def cuts(self) -> tuple[Cut, ...]:
        """Every distinct window placement the members hear."""
        return tuple(dict.fromkeys(m.geometry.cut for m in self.members))

    @property
    def rows_per_chunk(self) -> int:
        """Rows per batch of model inputs: batch_size inputs for the member with most views."""
        views = max(m.geometry.views for m in self.members)
        return max(1, self.config.inference.batch_size // views)

    @property
    def file_scoped(self) -> bool:
        """A front end takes its dB floor or normalisation over the file's windows (scope: file):
        a file's rows are read in one span (up to audio.block_seconds) and featured together."""
        return any(
            key[0].top_db_scope == "file" or key[0].normalization_scope == "file"
            for key in self.frontends
        )

    def feature_rows(self, default: int) -> int:
        """Rows whose front end runs as one batch: `default`, or a whole span (file_scoped)."""
        return 1 << 30 if self.file_scoped else default

    def span_features(
        self, span: Span, members: Iterable[int] | None = None
    ) -> dict[FeatureKey, np.ndarray]:
        """Model inputs of `members` (default: all) for the rows of `span`: raw windows for
        waveform members, and each distinct front end computed once over all its cuts."""
        chosen = range(len(self.members)) if members is None else members
        keys = list(dict.fromkeys(self.members[i].key for i in chosen))
        self.timer.count(len(span.rows))
        if self.config.audio.normalize == "peak":
            return self._normalized_features(span, keys)
        out: dict[FeatureKey, np.ndarray] = {}
        for cut, frontend in keys:
            if frontend is None:
                out[(cut, None)] = self._waveforms(span, cut)
        by_frontend: dict[FrontendKey, list[Cut]] = {}
        for cut, frontend in keys:
            if frontend is not None:
                by_frontend.setdefault(frontend, []).append(cut)
        with self.timer("mel"):
            for frontend, cuts in by_frontend.items():
                with self.timer.part(self._frontend_names[frontend], len(span.rows)):
                    inputs = [(span.starts(c), c.length) for c in cuts]
                    made = self.frontends[frontend].features(span.samples, inputs)
                out.update({(c, frontend): x for c, x in zip(cuts, made, strict=True)})
        return out

    def _normalized_features(self, span: Span, keys: list[FeatureKey]) -> dict:
        """Each input peak-normalised on its own before its front end (audio.normalize): the
        windows' frames can no longer be shared, so every front end runs per window."""
        out: dict[FeatureKey, np.ndarray] = {}
        for cut, frontend in keys:
            if frontend is None:
                out[(cut, None)] = peak_normalize(self._waveforms(span, cut))
                continue
            with self.timer("mel"):
                windows = peak_normalize(span.windows(cut))
                out[(cut, frontend)] = self.frontends[frontend].logmel(windows)
        return out

    def _waveforms(self, span: Span, cut: Cut) -> np.ndarray:
        """A waveform cut's inputs; a tiled member's resampled to its model's rate (timed as
        that member's own: the time guard costs it by its own time)."""
        member = next((m for m in self.members if m.key == (cut, None)), None)
        if member is None or not member.geometry.model_rate:
            return span.windows(cut)
        with self.timer(f"model {member.name}"):
            return member.geometry.model_inputs(span.windows(cut), span.audible(cut))

    def features(self, windows: np.ndarray) -> dict[FeatureKey, np.ndarray]:
        """Model inputs for (n, samples) windows already cut, for every member (one array per
        distinct key): for ensembles whose members all hear windows of that length."""
        lengths = {m.geometry.cut.length for m in self.members}
        if lengths != {windows.shape[1]}:
            raise ModelError(
                f"windows of {windows.shape[1]} samples; the members hear {sorted(lengths)}: "
                "score files (score_file, run) for members of several window lengths"
            )
        self.timer.count(len(windows))
        if self.config.audio.normalize == "peak":
            windows = peak_normalize(windows)
        with self.timer("mel"):
            return {
                m.key: windows if m.frontend is None else self.frontends[m.frontend].logmel(windows)
                for m in self.members
            }

    def member_outputs(
        self, index: int, features: dict[FeatureKey, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One member's scores per input, in submission column order ((inputs, columns); a
        sliding member's frame-wise (inputs, frames, columns)), and its embeddings by name."""
        member = self.members[index]
        batch = features[member.key]
        self.timer.count(len(batch), member=index, rows=len(batch) // member.geometry.views)
        if member.waveform and len(member.backend.card.input_shape) == 2:
            batch = batch[:, None, :]  # (batch, 1, samples)
        with self.timer(f"model {member.name}"):
            if member.embeddings:
                found = member.backend.run(batch)
                raw = found[member.output.name]
            else:
                found, raw = {}, member.backend(batch)
        with self.timer("postprocess"):
            scores = activate(raw, member.activation)
            if member.geometry.kind == "centred":
                scores = member.geometry.input_rows(scores, member.frame_pooling)
            embeddings = {name: found[name] for name in member.embeddings}
            scores = member.columns.apply(scores)
            # An Inf logit is a broken output though the sigmoid maps it to 0 or 1: its input
            # reads NaN here, so that the engine counts it (inference.non_finite).
            broken = ~np.isfinite(np.asarray(raw).reshape(len(raw), -1)).all(axis=1)
            if broken.any():
                scores = np.array(scores, dtype=np.float32, copy=True)
                scores[broken] = np.nan
            return scores, embeddings

    def member_scores(self, index: int, features: dict[FeatureKey, np.ndarray]) -> np.ndarray:
        """One member's scores per input, in submission column order (see member_outputs)."""
        return self.member_outputs(index, features)[0]

    def file_rows(self, index: int, per_input: np.ndarray, n_rows: int) -> np.ndarray:
        """One file's row scores (rows, columns) from a member's scores of all its inputs."""
        member = self.members[index]
        with self.timer("postprocess"):
            rows = member.geometry.file_rows(per_input, n_rows, member.frame_pooling)
            return file_scale(rows, self.config.postprocess.file_scale_top_k)

    def file_embeddings(self, index: int, per_input: np.ndarray) -> np.ndarray:
        """One row's embedding per row: the mean over its views (sliding: its own window's)."""
        return average_views(per_input, self.members[index].geometry.views)

    def combine(self, per_member: dict[int, np.ndarray]) -> np.ndarray:
        """Weighted mean of the members that scored these rows (weights renormalised), per
        column over the members that cover it."""
        indices = sorted(per_member)
        if len(indices) == 1 and self.members[indices[0]].columns.complete:
            return per_member[indices[0]]
        with self.timer("postprocess"):
            scores = [per_member[i] for i in indices]
            if self.column_weights is not None:  # per taxon: a weight per member and column
                weights = [self.column_weights[i] for i in indices]
                return covered_mean(scores, weights, [self.members[i].covers for i in indices])
            weights = [self.members[i].weight for i in indices]
            if all(self.members[i].columns.complete for i in indices):
                return weighted_mean(scores, weights)
            return covered_mean(scores, weights, [self.members[i].covers for i in indices])

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities (n, columns) for a batch of (n, samples) audio windows, each scored
        as one input (members that all hear that length; no sliding member)."""
        if any(m.geometry.kind == "sliding" for m in self.members):
            raise ModelError("a sliding member scores whole files: use score_file")
        features = self.features(windows)
        return self.combine({i: self.member_scores(i, features) for i in range(len(self.members))})

    def assemble_embeddings(self, parts: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
        """Per-row embeddings from each embedding column's per-input parts (in input order)."""
        owner = {embedding_column(self.members, i, n): i for i, m in enumerate(self.members)
                 for n in m.embeddings}  # fmt: skip
        return {
            column: self.file_embeddings(owner[column], np.concatenate(values))
            for column, values in parts.items()
        }

    def timed(self, iterator, stage: str) -> Iterator[Any]:
        iterator = iter(iterator)
        while True:
            with self.timer(stage):
                item = next(iterator, None)
            if item is None:
                return
            yield item


def chunks(rows: range, size: int) -> Iterator[range]:
    for start in range(rows.start, rows.stop, size):
        yield range(start, min(start + size, rows.stop))


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
