"""Soundscapes to submission: decode -> windows -> log-mel -> model(s) -> activation -> CSV.

Files are spread over a ThreadPoolExecutor; the heavy stages (libsndfile, soxr, numpy FFT,
ONNX Runtime, OpenVINO) release the GIL, so threads scale without copying models into processes.
One bad file is reported and skipped; it never costs the other files' rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from birdinfer.audio.decode import WindowReader, list_audio_files, row_ids
from birdinfer.config import Config, MelConfig
from birdinfer.frontend.logmel import LogMel
from birdinfer.inference.postprocess import activate, average_views, weighted_mean
from birdinfer.inference.threads import ThreadPlan, plan_threads
from birdinfer.models.backends import Backend, open_backend
from birdinfer.models.card import ModelFileError, contradictions
from birdinfer.output.submission import build_submission, column_order, read_class_columns

log = logging.getLogger(__name__)


@dataclass
class FileResult:
    path: Path
    row_ids: list[str]
    scores: np.ndarray  # (windows, columns): probabilities in submission column order
    warnings: list[str] = field(default_factory=list)
    # Each member's own probabilities (the members that scored this file), for rank blending.
    member_scores: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class FileFailure:
    path: str
    reason: str


class StageTimer:
    """Seconds spent per stage, summed over worker threads (so shares add up to 100%)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = defaultdict(float)
        self.windows = 0  # windows through the front end
        self.member_windows: dict[int, int] = defaultdict(int)  # windows scored, per member

    def count(self, windows: int, member: int | None = None) -> None:
        with self._lock:
            if member is None:
                self.windows += windows
            else:
                self.member_windows[member] += windows

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[stage] += elapsed


@dataclass
class Member:
    """One ensemble member: a loaded model, its weight and where its classes go."""

    name: str
    backend: Backend
    weight: float
    mel: MelConfig
    columns: np.ndarray  # model class index for each submission column


class Pipeline:
    """Loaded models and front ends for one config; reusable across folders and files."""

    def __init__(self, config: Config, plan: ThreadPlan | None = None) -> None:
        self.config = config
        self.plan = plan or plan_threads(config.inference.workers, config.inference.threads)
        self.timer = StageTimer()
        backends = [open_backend(spec.path, self.plan.threads) for spec in config.models]
        self._check_models(backends)
        self.columns = self._columns(backends)
        self.members = [
            Member(
                name=f"{b.card.arch}:{b.path.name}",
                backend=b,
                weight=spec.weight,
                mel=config.mel or b.card.mel,
                columns=column_order(b.card.class_names, self.columns, str(b.path)),
            )
            for spec, b in zip(config.models, backends, strict=True)
        ]
        # One front end per distinct mel setting: members that agree share one mel computation.
        self.frontends = {m.mel: LogMel(m.mel) for m in self.members}

    def _check_models(self, backends: list[Backend]) -> None:
        problems = []
        for backend in backends:
            problems += [f"{backend.path}: {p}" for p in contradictions(backend.card, self.config)]
        if problems:
            raise ModelFileError("model and config disagree:\n  " + "\n  ".join(problems))
        if not self.config.inference.allow_rejected_models:
            for backend in backends:
                _refuse_rejected(backend)
        # A tiny forward pass: a broken model fails here, before any audio is read.
        for backend in backends:
            try:
                backend(np.zeros((1, *backend.card.input_shape), dtype=np.float32))
            except ModelFileError:
                raise
            except Exception as exc:  # runtimes raise their own types, with long texts
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ModelFileError(
                    f"{backend.path}: a test forward pass on its card's input shape "
                    f"{backend.card.input_shape} failed ({first})"
                ) from exc

    def _columns(self, backends: list[Backend]) -> list[str]:
        sample = self.config.output.sample_submission
        if sample:
            return read_class_columns(sample)
        return list(backends[0].card.class_names)

    # --- per file -----------------------------------------------------------------------------

    def features(self, windows: np.ndarray) -> dict[MelConfig, np.ndarray]:
        """Model inputs for (n, samples) audio windows, one array per distinct front end."""
        self.timer.count(len(windows))
        with self.timer("mel"):
            return {mel: frontend(windows) for mel, frontend in self.frontends.items()}

    def member_scores(self, index: int, features: dict[MelConfig, np.ndarray]) -> np.ndarray:
        """One member's probabilities (n, columns), in submission column order."""
        member = self.members[index]
        self.timer.count(len(next(iter(features.values()))), member=index)
        with self.timer(f"model {member.name}"):
            raw = member.backend(features[member.mel])
        with self.timer("postprocess"):
            return activate(raw, self.config.inference.activation)[:, member.columns]

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
    raise ModelFileError(
        f"{backend.path}: the quantization guard rejected this {extra.get('variant', 'variant')} "
        f"({reason}); set inference.allow_rejected_models: true (--set "
        "inference.allow_rejected_models=true) to run it anyway"
    )


def find_input_files(config: Config, input_dir: Path) -> tuple[list[Path], list[Path], Path]:
    """Audio files to score, ignored non-audio files, and the folder they came from.

    An empty input folder (Kaggle while a notebook is being saved) falls back to the configured
    folder, if any, so that the run still exercises and times the whole pipeline.
    """
    files, ignored = list_audio_files(input_dir, config.audio.extensions)
    fallback = config.output.empty_input_fallback
    if not files and fallback:
        log.warning("no audio in %s; using the fallback folder %s", input_dir, fallback)
        files, ignored = list_audio_files(Path(fallback), config.audio.extensions)
        files = files[: config.output.empty_input_fallback_files]
        input_dir = Path(fallback)
    return files, ignored, input_dir


def row_stems(
    files: list[Path], input_dir: Path, mode: str
) -> tuple[list[Path], list[str], list[FileFailure]]:
    """Files to score, the stem each one's row ids start with, and the files skipped for it.

    Row ids are `<stem>_<end second>`, so two recordings with one stem in different folders
    would share row ids. "skip" reports and skips every such file; "path" uses each file's path
    relative to the input folder (without the suffix, `/`-separated) as its stem.
    """
    if mode == "path":
        stems = [path.relative_to(input_dir).with_suffix("").as_posix() for path in files]
        return files, stems, []
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_stem[path.stem].append(path)
    kept, failures = [], []
    for path in files:
        clash = by_stem[path.stem]
        if len(clash) == 1:
            kept.append(path)
            continue
        others = ", ".join(str(p) for p in clash if p != path)
        failures.append(
            FileFailure(
                str(path),
                f"its stem '{path.stem}' is also the stem of {others}: their row ids would "
                "collide; rename one, or set output.duplicate_stems: path",
            )
        )
    return kept, [path.stem for path in kept], failures
