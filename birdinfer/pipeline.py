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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from birdinfer.audio import AudioError, WindowReader, list_audio_files, row_ids
from birdinfer.backends import Backend, open_backend
from birdinfer.config import Config, MelConfig
from birdinfer.features import LogMel
from birdinfer.modelcard import ModelFileError, contradictions
from birdinfer.postprocess import activate, weighted_mean
from birdinfer.submission import build_submission, column_order, read_class_columns
from birdinfer.threads import ThreadPlan, plan_threads

log = logging.getLogger(__name__)


@dataclass
class FileResult:
    path: Path
    row_ids: list[str]
    scores: np.ndarray  # (windows, columns): probabilities in submission column order
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FileFailure:
    path: str
    reason: str


class StageTimer:
    """Seconds spent per stage, summed over worker threads (so shares add up to 100%)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = defaultdict(float)

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
        for (
            backend
        ) in backends:  # a tiny forward pass: a broken model fails before any audio is read
            backend(np.zeros((1, *backend.card.input_shape), dtype=np.float32))

    def _columns(self, backends: list[Backend]) -> list[str]:
        sample = self.config.output.sample_submission
        if sample:
            return read_class_columns(sample)
        return list(backends[0].card.class_names)

    # --- per file -----------------------------------------------------------------------------

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities (n, columns) for a batch of (n, samples) audio windows."""
        features = {}
        with self.timer("mel"):
            for mel, frontend in self.frontends.items():
                features[mel] = frontend(windows)
        members = []
        for member in self.members:
            with self.timer(f"model {member.name}"):
                raw = member.backend(features[member.mel])
            with self.timer("postprocess"):
                probs = activate(raw, self.config.inference.activation)
                members.append(probs[:, member.columns])
        if len(members) == 1:
            return members[0]
        with self.timer("postprocess"):
            return weighted_mean(members, [m.weight for m in self.members])

    def predict_file(self, path: str | Path) -> FileResult:
        """Scores for every window of one recording; raises AudioError for a bad file."""
        path = Path(path)
        batch_size = self.config.inference.batch_size
        reader = WindowReader(path, self.config.audio)
        parts = []
        for group in self._timed(reader, "decode"):
            for start in range(0, group.shape[0], batch_size):
                parts.append(self.predict_windows(group[start : start + batch_size]))
        scores = np.concatenate(parts) if parts else np.zeros((0, len(self.columns)), np.float32)
        ids = row_ids(path.stem, reader.n_windows, self.config.audio.window_seconds)
        return FileResult(path, ids, scores, list(reader.warnings))

    def _timed(self, iterator, stage: str) -> Iterator[np.ndarray]:
        iterator = iter(iterator)
        while True:
            with self.timer(stage):
                item = next(iterator, None)
            if item is None:
                return
            yield item

    # --- a whole folder -----------------------------------------------------------------------

    def run_files(self, files: list[Path]) -> tuple[list[FileResult], list[FileFailure]]:
        """Score files on the worker pool; results come back in the order of `files`."""
        results: list[FileResult | None] = [None] * len(files)
        failures: list[FileFailure] = []
        progress = tqdm(
            total=len(files), unit="file", disable=not self.config.output.progress, leave=False
        )
        with ThreadPoolExecutor(
            max_workers=self.plan.workers, thread_name_prefix="birdinfer"
        ) as pool:
            futures = {pool.submit(self.predict_file, f): i for i, f in enumerate(files)}
            for future, index in futures.items():
                try:
                    results[index] = future.result()
                except AudioError as exc:
                    failures.append(FileFailure(str(files[index]), exc.reason))
                    log.warning("skipped %s", exc)
                except Exception as exc:  # one file's surprise must not cost the others
                    reason = f"{type(exc).__name__}: {exc}"
                    failures.append(FileFailure(str(files[index]), reason))
                    log.warning("skipped %s: %s", files[index], reason)
                progress.update()
        progress.close()
        return [r for r in results if r is not None], failures

    def submission(self, results: list[FileResult]) -> pd.DataFrame:
        ids = [row for r in results for row in r.row_ids]
        if results:
            scores = np.concatenate([r.scores for r in results])
        else:
            scores = np.zeros((0, len(self.columns)), np.float32)
        return build_submission(ids, scores, self.columns)


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
        input_dir = Path(fallback)
    return files, ignored, input_dir
