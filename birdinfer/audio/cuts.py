"""One decode of a recording, cut into every member's model inputs, row by row.

A row is the run's window (audio.window_seconds, 5 s). A `Cut` says what one model hears for a
row: `length` samples starting `offset` samples after the row's start, once per offset (one
offset per TTA shift; a negative offset reaches back into the previous rows). Members of one
ensemble may have different cuts (a 5 s CNN, a 20 s SED model, a waveform model): the file is
decoded once, and `RowReader` yields `Span`s, the decoded audio that a run of rows needs for
every cut, from which each cut's windows are sliced. Audio outside the file is zeros.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from birdinfer.audio.decode import WindowReader
from birdinfer.config import AudioConfig


@dataclass(frozen=True)
class Cut:
    length: int  # samples per model input
    offsets: tuple[int, ...]  # per view: its first sample, relative to the row's start

    @property
    def views(self) -> int:
        return len(self.offsets)

    @classmethod
    def of(cls, config: AudioConfig) -> Cut:
        """The cut an AudioConfig alone describes: the row with its context, per TTA shift
        (the inputs `WindowReader` yields)."""
        context = round(config.context_seconds * config.sample_rate)
        offsets = tuple(round(s * config.sample_rate) - context for s in config.tta_shifts)
        return cls(config.input_samples, offsets)


@dataclass(frozen=True)
class Span:
    """Decoded audio for `rows`: `samples[0]` is the file's sample number `origin`."""

    samples: np.ndarray
    origin: int
    rows: range
    row_samples: int
    # The file's length in samples, on the span decoded after its end (else None): the zeros
    # from there on are padding, not audio.
    end: int | None = None

    def starts(self, cut: Cut) -> np.ndarray:
        """Where each input of `cut` starts in `samples`: rows x views, row-major."""
        rows = np.arange(self.rows.start, self.rows.stop, dtype=np.int64)
        offsets = np.asarray(cut.offsets, dtype=np.int64)
        return (rows[:, None] * self.row_samples + offsets[None, :] - self.origin).reshape(-1)

    def windows(self, cut: Cut) -> np.ndarray:
        """(rows x views, cut.length) float32: the inputs of `cut` for these rows."""
        view = np.lib.stride_tricks.sliding_window_view(self.samples, cut.length)
        return view[self.starts(cut)]

    def sub(self, rows: range) -> Span:
        """The same audio, for some of its rows."""
        return Span(self.samples, self.origin, rows, self.row_samples, self.end)

    def audible(self, cut: Cut) -> np.ndarray | None:
        """Per input of `cut`, how many of its samples lie before the file's end (None when
        this span does not reach it)."""
        if self.end is None:
            return None
        return self.end - (self.starts(cut) + self.origin)


def peak_normalize(windows: np.ndarray) -> np.ndarray:
    """Each window scaled to a peak of 1 (audio.normalize "peak"), as librosa.util.normalize
    does per call: x / max|x|, and a window whose peak is below float32's smallest normal
    number left as it is."""
    windows = np.asarray(windows, dtype=np.float32)
    peak = np.abs(windows).max(axis=-1, keepdims=True)
    tiny = peak < np.finfo(np.float32).tiny
    return (windows / np.where(tiny, np.float32(1), peak)).astype(np.float32, copy=False)


class RowReader(WindowReader):
    """Iterate (once) over `Span`s of one recording: each covers the rows that became ready
    with a decode block, with the audio every cut in `cuts` needs for them.

    After iteration `n_windows` holds the count of rows and `warnings` what was repaired, as
    for WindowReader (whose decode, checks and row count this reuses).
    """

    def __init__(
        self, path: Path, config: AudioConfig, cuts: Sequence[Cut], whole_last_block: bool = False
    ) -> None:
        super().__init__(path, config)
        if not cuts:
            raise ValueError("RowReader needs at least one cut")
        self.cuts = tuple(cuts)
        self.whole_last_block = whole_last_block

    def spans(self) -> Iterator[Span]:
        first = min(min(c.offsets) for c in self.cuts)  # a row's span, relative to its start
        last = max(max(c.offsets) + c.length for c in self.cuts)
        for samples, origin, rows in self._row_spans(first, last):
            yield Span(samples, origin, rows, self.config.window_samples, self.decoded_samples)
