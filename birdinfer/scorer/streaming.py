"""The streaming engine: decode and mel of upcoming files overlap model work on current ones.

    feature workers (threads)              bounded queue            model lane (calling thread)
    decode -> rows -> each member's  ---->  [chunk chunk ...]  ---->  batches across files -> members
              inputs (front ends once)

A file is decoded once; each chunk of its rows carries every scheduled member's inputs (raw
windows for waveform members, each distinct front end computed once over the window lengths
its members hear). Producers block when the queue is full, so memory stays flat however many
files there are, and the model lane batches rows of several files together. When a file is
complete, each member's outputs become rows by its geometry (birdinfer.scorer.geometry).
Which members score a file is asked of a `FileSchedule` when its decoding starts: the time guard is one, and may drop members for the
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
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from birdinfer.audio import RowReader, row_ids
from birdinfer.errors import AudioError
from birdinfer.output import windows_frame
from birdinfer.results import FileFailure, FileIdentity, FileResult
from birdinfer.scorer.ensemble import Ensemble, chunks
from birdinfer.scorer.members import FeatureKey, embedding_column

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

    def past_deadline(self) -> bool:
        """True once nothing more may be scored: rows still queued are dropped, and the files
        not finished are left unscored."""
        ...


class EveryMember:
    """The schedule without a time guard: every member scores every file."""

    def __init__(self, members: int) -> None:
        self.members = tuple(range(members))

    def members_for(self, index: int) -> tuple[int, ...]:
        return self.members

    def on_file_done(self, index: int, result: FileResult | None) -> None:
        pass

    def past_deadline(self) -> bool:
        return False


class EngineOutcome(NamedTuple):
    results: list[FileResult]  # scored files, in file order
    failures: list[FileFailure]  # files that could not be scored, with the reason
    unscored: list[Path]  # files the schedule left unscored


class Outcomes:
    """What became of each of `expected` files submitted together, by position; `done` is set
    once every one has an outcome (the model lane adds them)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.found: dict[int, FileResult | FileFailure | Path] = {}  # Path: left unscored
        self.done = threading.Event()
        if expected == 0:
            self.done.set()

    def add(self, position: int, outcome: FileResult | FileFailure | Path) -> None:
        self.found[position] = outcome
        if len(self.found) >= self.expected:
            self.done.set()

    def complete(self) -> bool:
        return self.done.is_set()

    def outcome(self) -> EngineOutcome:
        ordered = [self.found[i] for i in sorted(self.found)]
        return EngineOutcome(
            [o for o in ordered if isinstance(o, FileResult)],
            [o for o in ordered if isinstance(o, FileFailure)],
            [o for o in ordered if isinstance(o, Path)],
        )


@dataclass
class Chunk:
    file: int
    start: int  # index of the chunk's first row within its file
    size: int  # rows
    # Model inputs per distinct key (cut, front end): rows x the cut's views each.
    features: dict[FeatureKey, np.ndarray]
    members: tuple[int, ...]

    def split(self, n: int) -> tuple[Chunk, Chunk]:
        """The first `n` rows, and the rest."""
        head = {k: v[: n * k[0].views] for k, v in self.features.items()}
        tail = {k: v[n * k[0].views :] for k, v in self.features.items()}
        return (
            Chunk(self.file, self.start, n, head, self.members),
            Chunk(self.file, self.start + n, self.size - n, tail, self.members),
        )


@dataclass
class FileEnd:
    file: int
    n_windows: int = 0  # rows
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    members: tuple[int, ...] = ()
    identity: FileIdentity | None = None  # of the handle that was decoded
    seconds: float = 0.0  # of audio decoded (what the rows follow)


@dataclass
class _FileScores:
    """Per-member scores of one file, filled batch by batch."""

    members: tuple[int, ...]
    # (first row, outputs per input) per member, and per embedding column
    scores: dict[int, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    embeddings: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    scored: int = 0  # rows
    end: FileEnd | None = None
    error: str | None = None  # a model call failed on some of this file's rows
    non_finite: dict[int, int] = field(default_factory=dict)  # member -> inputs with NaN/Inf

    def complete(self) -> bool:
        if self.end is None:
            return False
        unscored = not self.end.members  # the schedule left it unscored: nothing to wait for
        return self.end.error is not None or unscored or self.scored >= self.end.n_windows


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
        # Rows per model call: batch_size inputs for the member with most views per row.
        self.batch_size = ensemble.rows_per_chunk
        # The queue holds about queue_windows model inputs, in chunks of batch_size inputs.
        self.queue_chunks = max(2, queue_windows // ensemble.config.inference.batch_size)
        # Features are computed in fixed pieces of rows, then cut to the model's batch.
        self.chunk_rows = min(self.batch_size, FEATURE_WINDOWS)
        self.schedule = schedule or EveryMember(len(ensemble.members))
        self._on_file_done = on_file_done
        self._stop = threading.Event()
        self._abandon = threading.Event()  # a long-lived engine's lane stops with work in flight

    # --- producers --------------------------------------------------------------------------

    def _produce(self, index: int, path: Path, out: queue.Queue) -> None:
        members = self.schedule.members_for(index)
        try:
            if not members:  # left unscored: the caller decides what such a file gets
                self._put(out, FileEnd(index))
                return
            cuts = dict.fromkeys(self.ensemble.members[m].geometry.cut for m in members)
            reader = RowReader(
                path, self.ensemble.config.audio, tuple(cuts), self.ensemble.file_scoped
            )
            for span in self.ensemble.timed(reader.spans(), "decode"):
                for rows in chunks(span.rows, self.ensemble.feature_rows(FEATURE_WINDOWS)):
                    if self._stop.is_set():  # the run is over (a fatal error): stop decoding
                        return
                    if self.schedule.past_deadline():  # the rest of this file is not scored
                        self._put(out, FileEnd(index))
                        return
                    features = self.ensemble.span_features(span.sub(rows), members)
                    chunk = Chunk(index, rows.start, len(rows), features, members)
                    while chunk.size > self.chunk_rows:
                        head, chunk = chunk.split(self.chunk_rows)
                        self._put(out, head)
                    self._put(out, chunk)
            end = FileEnd(
                index,
                reader.n_windows,
                list(reader.warnings),
                members=members,
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
        """Score `files`; row ids start with `stems` (default: each file's own stem). The
        calling thread is the model lane."""
        collected = Outcomes(len(files))
        self.open()
        try:
            self.submit(files, stems, collected)
            self._consume(until=collected.complete)
        finally:
            self.close()
        return collected.outcome()

    # --- a long-lived engine (one per process, fed by several tasks: see shared_engine) ------

    def submit(self, files: list[Path], stems: list[str] | None, sink: Outcomes) -> None:
        """Queue `files` for the feature workers; each one's outcome goes to `sink`."""
        stems = stems if stems is not None else [path.stem for path in files]
        with self._lock:
            start = self._next_index
            self._next_index += len(files)
            for offset, (path, stem) in enumerate(zip(files, stems, strict=True)):
                self._files[start + offset] = (path, stem, sink, offset)
        for offset, path in enumerate(files):
            self._pool.submit(self._produce, start + offset, path, self._out)

    def serve(self, until: Callable[[], bool]) -> None:
        """Run the model lane in this thread until `until()` holds and nothing is in flight,
        or at once after `abandon`."""
        self._consume(until=lambda: self._abandon.is_set() or (until() and not self._files))

    def abandon(self) -> None:
        """Make `serve` return after the batch in hand, whatever is in flight (Ctrl-C)."""
        self._abandon.set()

    def open(self) -> None:
        """Start the feature workers (and the queue they fill)."""
        self._stop.clear()
        self._out: queue.Queue = queue.Queue(maxsize=self.queue_chunks)
        self._state: dict[int, _FileScores] = {}
        self._files: dict[int, tuple[Path, str, Outcomes, int]] = {}
        self._next_index = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            self.feature_workers, thread_name_prefix="birdinfer-features"
        )

    def close(self) -> None:
        """Stop the feature workers; what they were decoding is dropped."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _consume(self, until: Callable[[], bool]) -> None:
        out, state = self._out, self._state
        pending: list[Chunk] = []
        cut = False
        while not until():
            if not cut and self.schedule.past_deadline():
                cut, pending = True, []  # rows still queued are not scored after the deadline
                self._finish(self._cut_unfinished(state), state)
            try:
                item = out.get(timeout=0.05) if not pending else out.get_nowait()
            except queue.Empty:
                if pending:  # the producers are behind: score what is here rather than wait
                    pending, touched = self._score(pending, state)
                    self._finish(touched, state)
                continue
            touched: set[int] = set()
            if isinstance(item, FileEnd):
                entry = state.setdefault(item.file, _FileScores(item.members))
                entry.end = item
                if cut and not entry.complete():  # its rows came too late: unscored
                    entry.end = FileEnd(item.file)
                touched.add(item.file)
            elif cut:
                continue  # a chunk decoded before the deadline, queued after it: dropped
            else:
                pending.append(item)
                if sum(c.size for c in pending) >= self.batch_size:
                    pending, touched = self._score(pending, state)
            self._finish(touched, state)

    def _cut_unfinished(self, state: dict) -> set[int]:
        """At the deadline: every file whose rows are not all scored is left unscored."""
        cut = set()
        for index, entry in state.items():
            if entry.end is not None and not entry.complete():
                entry.end = FileEnd(index)
                cut.add(index)
        return cut

    def _score(self, pending: list[Chunk], state: dict) -> tuple[list[Chunk], set[int]]:
        """Score up to one batch of rows from the front of `pending`; return what is left."""
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
        # Members fed the same inputs for the same chunks share one stacked copy.
        stacked: dict[tuple, np.ndarray] = {}
        for member in sorted({m for c in batch for m in c.members}):
            rows = [c for c in batch if member in c.members]
            key = self.ensemble.members[member].key
            which = (key, tuple(i for i, c in enumerate(batch) if member in c.members))
            if which not in stacked:
                stacked[which] = np.concatenate([c.features[key] for c in rows])
            try:
                scores, embeddings = self.ensemble.member_outputs(member, {key: stacked[which]})
            except Exception as exc:  # the runtime failed on these rows: fail their files only
                reason = f"model {self.ensemble.members[member].name} failed: {exc}"
                log.error("%s (files %s)", reason, sorted({c.file for c in rows}))
                for c in rows:
                    state.setdefault(c.file, _FileScores(c.members)).error = reason
                scores, embeddings = None, {}
            self._keep(member, rows, scores, embeddings, state)
        for c in batch:
            state[c.file].scored += c.size
        return rest, {c.file for c in batch}

    def _keep(self, member: int, rows: list[Chunk], scores, embeddings, state: dict) -> None:
        """Each chunk's share of a member's outputs (None: the call failed), by first row."""
        views = self.ensemble.members[member].geometry.views
        offset = 0
        for c in rows:
            entry = state.setdefault(c.file, _FileScores(c.members))
            part = slice(offset, offset + c.size * views)
            if scores is not None:
                entry.scores.setdefault(member, []).append((c.start, scores[part]))
                broken = int(
                    (~np.isfinite(scores[part])).reshape(c.size * views, -1).any(axis=1).sum()
                )
                if broken:
                    entry.non_finite[member] = entry.non_finite.get(member, 0) + broken
            for name, values in embeddings.items():
                column = embedding_column(self.ensemble.members, member, name)
                entry.embeddings.setdefault(column, []).append((c.start, values[part]))
            offset += c.size * views

    def _finish(self, touched: set[int], state: dict) -> None:
        """Hand the touched files that are complete to their sinks: a result, a failure, or
        unscored."""
        for index in sorted(touched):
            entry = state.get(index)
            if entry is None or not entry.complete() or index not in self._files:
                continue
            path, stem, sink, position = self._files[index]
            end = entry.end
            error = end.error or entry.error or self._non_finite(entry)
            if error is not None:
                log.warning("skipped %s: %s", path, error)
                sink.add(position, FileFailure(str(path), error))
                self._done(index, None)
            elif not end.members:
                sink.add(position, path)
                self._done(index, None)
            else:
                result = self._result(path, stem, entry)
                sink.add(position, result)
                self._done(index, result)
            # Chunks of a failed file may still be queued: they get scored into a fresh entry
            # that never completes, and are dropped with it.
            del state[index]
            with self._lock:
                del self._files[index]

    def _non_finite(self, entry: _FileScores) -> str | None:
        """The reason a file with NaN/Inf model outputs fails: always under "fail", and under
        "drop_member" when no member is left or the members left do not cover every column."""
        if not entry.non_finite:
            return None
        policy = self.ensemble.config.inference.non_finite
        left = sorted(set(entry.scores) - set(entry.non_finite))
        broken = "; ".join(self._broken(entry))
        if policy != "drop_member":
            return broken
        if not left:
            return f"{broken} (no member left)"
        uncovered = self.ensemble.uncovered(left)
        if not uncovered:
            return None
        # As at load: a column no member covers is refused, never written as 0.0.
        shown = ", ".join(uncovered[:10]) + (" ..." if len(uncovered) > 10 else "")
        return f"{broken} (the members left cover no score for columns {shown})"

    def _broken(self, entry: _FileScores) -> list[str]:
        def inputs(m: int) -> int:
            views = self.ensemble.members[m].geometry.views
            return entry.end.n_windows * views if entry.end else 0

        return [
            f"model {self.ensemble.members[m].name} gave NaN/Inf for {n} of {inputs(m)} windows"
            for m, n in sorted(entry.non_finite.items())
        ]

    def _dropped(self, entry: _FileScores, path: Path) -> list[str]:
        notes = [f"{note}: dropped for this file" for note in self._broken(entry)]
        for note in notes:
            log.warning("%s: %s", path, note)
        return notes

    def _result(self, path: Path, stem: str, entry: _FileScores) -> FileResult:
        """A complete file's rows: each member's by its geometry, then the ensemble's."""
        ensemble, n = self.ensemble, entry.end.n_windows
        per_member = {}
        for m, parts in entry.scores.items():
            if m in entry.non_finite:  # dropped for this file (inference.non_finite: drop_member)
                continue
            views = ensemble.members[m].geometry.views
            per_member[m] = ensemble.file_rows(m, _assemble(parts, n * views), n)
        embeddings = ensemble.assemble_embeddings(
            {
                column: [values for _, values in sorted(parts, key=lambda p: p[0])]
                for column, parts in entry.embeddings.items()
            }  # fmt: skip
        )
        return FileResult(
            path=path,
            row_ids=row_ids(stem, n, ensemble.config.audio.window_seconds),
            scores=ensemble.combine(per_member),
            warnings=entry.end.warnings + self._dropped(entry, path),
            member_scores=per_member,
            embeddings=embeddings,
            identity=entry.end.identity,
            audio_seconds=entry.end.seconds,
        )

    def _done(self, index: int, result: FileResult | None) -> None:
        self.schedule.on_file_done(index, result)
        if self._on_file_done is not None:
            self._on_file_done(index, result)


def _assemble(parts: list[tuple[int, np.ndarray]], n_inputs: int) -> np.ndarray:
    parts = sorted(parts, key=lambda p: p[0])
    scores = np.concatenate([p[1] for p in parts])
    if scores.shape[0] != n_inputs:
        raise RuntimeError(f"assembled {scores.shape[0]} inputs, expected {n_inputs}")
    return scores


def score_files(
    ensemble: Ensemble,
    files: list[Path],
    schedule: FileSchedule | None = None,
    stems: list[str] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    progress: bool | None = None,
) -> EngineOutcome:
    """Run the files through the streaming engine, with a progress bar (files/s and ETA) unless
    `progress` (default: output.progress) is off.

    `on_result` sees each finished file as soon as it is complete (the journal stores it).
    """
    shown = ensemble.config.output.progress if progress is None else progress
    bar = tqdm(total=len(files), unit="file", disable=not shown, leave=False)

    def file_done(index: int, result: FileResult | None) -> None:
        bar.update()
        if result is not None and on_result is not None:
            on_result(result)

    engine = StreamingEngine(
        ensemble,
        feature_workers=ensemble.threads.workers,
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
        bar.close()


def score_file(ensemble: Ensemble, path: str | Path) -> FileResult:
    """Scores for every row of one recording, by the streaming engine as a run scores it;
    raises AudioError naming the file when it cannot be scored."""
    path = Path(path)
    outcome = score_files(ensemble, [path], progress=False)
    if outcome.failures:
        raise AudioError(f"{path}: {outcome.failures[0].reason}")
    return outcome.results[0]


def predict_frame(ensemble: Ensemble, path: str | Path) -> pd.DataFrame:
    """`score_file(ensemble, path)` as a table (see `windows_frame`); raises AudioError."""
    result = score_file(ensemble, path)
    return windows_frame([result], ensemble.columns, ensemble.config.audio.window_seconds)
