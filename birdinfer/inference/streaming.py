"""The streaming engine: decode and mel of upcoming files overlap model work on current ones.

    feature workers (threads)            bounded queue            model lane (calling thread)
    decode -> windows -> log-mel  ---->  [chunk chunk ...]  ---->  batches across files -> members

Producers block when the queue is full, so memory stays flat however many files there are, and
the model lane batches windows of several files together. Which members score a file is asked of
a `FileSchedule` when its decoding starts: the time guard is one, and may drop members for the
files that remain, or leave a file unscored (the engine then reports it, and the run gives it
placeholder rows).

A window's score never depends on its batch neighbours: features are computed per file in
pieces of FEATURE_WINDOWS consecutive windows, whatever the model batch size (the front end's
float sums depend on how many windows it is given at once), and the runtimes give a window the
same outputs in any batch (docs/reliability.md). A member's windows with NaN or Inf outputs are
counted per file; the file is then failed, or scored without that member
(`inference.non_finite`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from birdinfer.audio.decode import WindowReader
from birdinfer.audio.rows import row_ids
from birdinfer.errors import AudioError
from birdinfer.inference.ensemble import Ensemble, FrontendKey
from birdinfer.inference.postprocess import average_views
from birdinfer.results import FileFailure, FileIdentity, FileResult

log = logging.getLogger(__name__)

# Windows whose features are computed in one front-end call, counted from a decoded group's
# first window: fixed, so the model batch size never changes which windows share a call. (It is
# the default batch size: the default run computes exactly what it always did.)
FEATURE_WINDOWS = 16


class FileSchedule(Protocol):
    """Decides, as each file starts, which members score it; hears when each file is done."""

    def members_for(self, index: int) -> tuple[int, ...]:
        """Members (ensemble indices) for file `index`; () leaves the file unscored."""
        ...

    def on_file_done(self, index: int, result: FileResult | None) -> None: ...


class EveryMember:
    """The schedule without a time guard: every member scores every file."""

    def __init__(self, members: int) -> None:
        self.members = tuple(range(members))

    def members_for(self, index: int) -> tuple[int, ...]:
        return self.members

    def on_file_done(self, index: int, result: FileResult | None) -> None:
        pass


class EngineOutcome(NamedTuple):
    results: list[FileResult]  # scored files, in file order
    failures: list[FileFailure]  # files that could not be scored, with the reason
    unscored: list[Path]  # files the schedule left unscored


@dataclass
class Chunk:
    file: int
    start: int  # index of the chunk's first window within its file
    features: dict[FrontendKey, np.ndarray]  # one array per distinct front end
    members: tuple[int, ...]

    @property
    def size(self) -> int:
        return next(iter(self.features.values())).shape[0]

    def split(self, n: int) -> tuple[Chunk, Chunk]:
        head = {k: v[:n] for k, v in self.features.items()}
        tail = {k: v[n:] for k, v in self.features.items()}
        return (
            Chunk(self.file, self.start, head, self.members),
            Chunk(self.file, self.start + n, tail, self.members),
        )


@dataclass
class FileEnd:
    file: int
    n_windows: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    members: tuple[int, ...] = ()
    views: int = 1  # model inputs per window (TTA shifts)
    identity: FileIdentity | None = None  # of the handle that was decoded
    seconds: float = 0.0  # of audio decoded (what the rows follow)


@dataclass
class _FileScores:
    """Per-member scores of one file, filled batch by batch."""

    members: tuple[int, ...]
    scores: dict[int, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    scored: int = 0
    end: FileEnd | None = None
    error: str | None = None  # a model call failed on some of this file's windows
    non_finite: dict[int, int] = field(default_factory=dict)  # member -> inputs with NaN/Inf

    def complete(self) -> bool:
        if self.end is None:
            return False
        unscored = not self.end.members  # the schedule left it unscored: nothing to wait for
        inputs = self.end.n_windows * self.end.views
        return self.end.error is not None or unscored or self.scored >= inputs


class StreamingEngine:
    """Runs files through an Ensemble with overlapped stages; results in file order.

    `schedule` picks each file's members (default: all); `on_file_done` hears each file as it
    finishes (None for a failed or unscored one).
    """

    def __init__(
        self,
        ensemble: Ensemble,
        feature_workers: int,
        queue_windows: int = 256,
        schedule: FileSchedule | None = None,
        on_file_done: Callable[[int, FileResult | None], None] | None = None,
    ) -> None:
        self.ensemble = ensemble
        self.feature_workers = feature_workers
        self.batch_size = ensemble.config.inference.batch_size
        # The queue is counted in chunks of at most this many windows.
        self.chunk_windows = min(self.batch_size, FEATURE_WINDOWS)
        self.queue_chunks = max(2, queue_windows // self.chunk_windows)
        self.schedule = schedule or EveryMember(len(ensemble.members))
        self._on_file_done = on_file_done
        self._stop = threading.Event()

    # --- producers --------------------------------------------------------------------------

    def _produce(self, index: int, path: Path, out: queue.Queue) -> None:
        members = self.schedule.members_for(index)
        try:
            if not members:  # left unscored: the caller decides what such a file gets
                self._put(out, FileEnd(index))
                return
            reader = WindowReader(path, self.ensemble.config.audio)
            start = 0
            for group in self.ensemble.timed(reader, "decode"):
                for offset in range(0, group.shape[0], FEATURE_WINDOWS):
                    if self._stop.is_set():  # the run is over (a fatal error): stop decoding
                        return
                    piece = self.ensemble.features(group[offset : offset + FEATURE_WINDOWS])
                    chunk = Chunk(index, start, piece, members)
                    start += chunk.size
                    while chunk.size > self.chunk_windows:
                        head, chunk = chunk.split(self.chunk_windows)
                        self._put(out, head)
                    self._put(out, chunk)
            end = FileEnd(
                index,
                reader.n_windows,
                list(reader.warnings),
                members=members,
                views=self.ensemble.config.audio.views,
                identity=reader.identity,
                seconds=reader.seconds,
            )
            self._put(out, end)
        except AudioError as exc:
            self._put(out, FileEnd(index, error=exc.reason, members=members))
        except Exception as exc:  # one file's surprise must not cost the others
            self._put(out, FileEnd(index, error=f"{type(exc).__name__}: {exc}", members=members))

    def _put(self, out: queue.Queue, item) -> None:
        while not self._stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # --- the model lane -----------------------------------------------------------------------

    def run(self, files: list[Path], stems: list[str] | None = None) -> EngineOutcome:
        """Score `files`; row ids start with `stems` (default: each file's own stem)."""
        self._stems = stems if stems is not None else [path.stem for path in files]
        out: queue.Queue = queue.Queue(maxsize=self.queue_chunks)
        state: dict[int, _FileScores] = {}
        results: dict[int, FileResult] = {}
        failures: dict[int, FileFailure] = {}
        self._unscored: dict[int, Path] = {}
        pool = ThreadPoolExecutor(self.feature_workers, thread_name_prefix="birdinfer-features")
        try:
            for i, path in enumerate(files):
                pool.submit(self._produce, i, path, out)
            self._consume(files, out, state, results, failures)
        finally:
            self._stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
        return EngineOutcome(
            [results[i] for i in sorted(results)],
            [failures[i] for i in sorted(failures)],
            [self._unscored[i] for i in sorted(self._unscored)],
        )

    def _consume(self, files, out, state, results, failures) -> None:
        pending: list[Chunk] = []
        finished = 0
        while finished < len(files):
            try:
                item = out.get(timeout=0.05) if not pending else out.get_nowait()
            except queue.Empty:
                if pending:  # the producers are behind: score what is here rather than wait
                    pending, touched = self._score(pending, state)
                    finished += self._finish(touched, files, state, results, failures)
                continue
            touched: set[int] = set()
            if isinstance(item, FileEnd):
                state.setdefault(item.file, _FileScores(item.members)).end = item
                touched.add(item.file)
            else:
                pending.append(item)
                if sum(c.size for c in pending) >= self.batch_size:
                    pending, touched = self._score(pending, state)
            finished += self._finish(touched, files, state, results, failures)

    def _score(self, pending: list[Chunk], state: dict) -> tuple[list[Chunk], set[int]]:
        """Score up to one batch of windows from the front of `pending`; return what is left."""
        batch, rest, taken = [], [], 0
        for chunk in pending:
            if taken >= self.batch_size:
                rest.append(chunk)
            elif taken + chunk.size > self.batch_size:
                head, tail = chunk.split(self.batch_size - taken)
                batch += [head]
                rest += [tail]
                taken = self.batch_size
            else:
                batch.append(chunk)
                taken += chunk.size
        stacked: dict[tuple[int, ...], dict] = {}  # members scoring the same rows share one copy
        for member in sorted({m for c in batch for m in c.members}):
            rows = [c for c in batch if member in c.members]
            key = tuple(i for i, c in enumerate(batch) if member in c.members)
            if key not in stacked:
                stacked[key] = {
                    mel: np.concatenate([c.features[mel] for c in rows]) for mel in rows[0].features
                }
            try:
                scores = self.ensemble.member_scores(member, stacked[key])
            except Exception as exc:  # the runtime failed on these windows: fail their files only
                reason = f"model {self.ensemble.members[member].name} failed: {exc}"
                log.error("%s (files %s)", reason, sorted({c.file for c in rows}))
                for c in rows:
                    state.setdefault(c.file, _FileScores(c.members)).error = reason
                scores = np.zeros((sum(c.size for c in rows), len(self.ensemble.columns)))
            offset = 0
            for c in rows:
                entry = state.setdefault(c.file, _FileScores(c.members))
                part = scores[offset : offset + c.size]
                entry.scores.setdefault(member, []).append((c.start, part))
                broken = int((~np.isfinite(part)).any(axis=1).sum())
                if broken:
                    entry.non_finite[member] = entry.non_finite.get(member, 0) + broken
                offset += c.size
        for c in batch:
            state[c.file].scored += c.size
        return rest, {c.file for c in batch}

    def _finish(self, touched: set[int], files, state, results, failures) -> int:
        """Turn the touched files that are complete into results, failures or unscored files."""
        done = 0
        for index in sorted(touched):
            entry = state.get(index)
            if entry is None or not entry.complete():
                continue
            end = entry.end
            error = end.error or entry.error or self._non_finite(entry)
            if error is not None:
                failures[index] = FileFailure(str(files[index]), error)
                log.warning("skipped %s: %s", files[index], error)
                self._done(index, None)
            elif not end.members:
                self._unscored[index] = files[index]
                self._done(index, None)
            else:
                views = self.ensemble.config.audio.views
                per_member = {
                    m: average_views(_assemble(p, end.n_windows * views), views)
                    for m, p in entry.scores.items()
                    if m not in entry.non_finite  # dropped for this file (drop_member)
                }
                window_seconds = self.ensemble.config.audio.window_seconds
                results[index] = FileResult(
                    path=files[index],
                    row_ids=row_ids(self._stems[index], end.n_windows, window_seconds),
                    scores=self.ensemble.combine(per_member),
                    warnings=end.warnings + self._dropped(entry, files[index]),
                    member_scores=per_member,
                    identity=end.identity,
                    audio_seconds=end.seconds,
                )
                self._done(index, results[index])
            # Chunks of a failed file may still be queued: they get scored into a fresh entry
            # that never completes, and are dropped with it.
            del state[index]
            done += 1
        return done

    def _non_finite(self, entry: _FileScores) -> str | None:
        """The reason a file with NaN/Inf model outputs fails: always under "fail", and under
        "drop_member" when no member is left."""
        if not entry.non_finite:
            return None
        policy = self.ensemble.config.inference.non_finite
        if policy == "drop_member" and set(entry.scores) - set(entry.non_finite):
            return None
        return "; ".join(self._broken(entry)) + (
            " (no member left)" if policy == "drop_member" else ""
        )

    def _broken(self, entry: _FileScores) -> list[str]:
        inputs = entry.end.n_windows * entry.end.views if entry.end else 0
        return [
            f"model {self.ensemble.members[m].name} gave NaN/Inf for {n} of {inputs} windows"
            for m, n in sorted(entry.non_finite.items())
        ]

    def _dropped(self, entry: _FileScores, path: Path) -> list[str]:
        notes = [f"{note}: dropped for this file" for note in self._broken(entry)]
        for note in notes:
            log.warning("%s: %s", path, note)
        return notes

    def _done(self, index: int, result: FileResult | None) -> None:
        self.schedule.on_file_done(index, result)
        if self._on_file_done is not None:
            self._on_file_done(index, result)


def _assemble(parts: list[tuple[int, np.ndarray]], n_windows: int) -> np.ndarray:
    parts = sorted(parts, key=lambda p: p[0])
    scores = np.concatenate([p[1] for p in parts])
    if scores.shape[0] != n_windows:
        raise RuntimeError(f"assembled {scores.shape[0]} windows, expected {n_windows}")
    return scores


def score_files(
    ensemble: Ensemble,
    files: list[Path],
    schedule: FileSchedule | None = None,
    stems: list[str] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> EngineOutcome:
    """Run the files through the streaming engine, with a progress bar (files/s and ETA).

    `on_result` sees each finished file as soon as it is complete (the journal stores it).
    """
    progress = tqdm(
        total=len(files), unit="file", disable=not ensemble.config.output.progress, leave=False
    )

    def file_done(index: int, result: FileResult | None) -> None:
        progress.update()
        if result is not None and on_result is not None:
            on_result(result)

    engine = StreamingEngine(
        ensemble,
        feature_workers=ensemble.plan.workers,
        queue_windows=ensemble.config.inference.queue_windows,
        schedule=schedule,
        on_file_done=file_done,
    )
    # The engine owns the parallelism: BLAS's own pool (the mel filterbank's small products)
    # would spin beside the workers and the model runtime, so it gets one thread for the run.
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return engine.run(files, stems)
    finally:
        progress.close()
