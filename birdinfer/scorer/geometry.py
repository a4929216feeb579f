"""Window geometry: the audio a member hears for each row, and how its outputs become rows.

Rows are the run's windows (audio.window_seconds: 5 s in BirdCLEF). A member hears its card's
window (`input_seconds`) per model input, placed one of two ways:

- **centred**: the row in the middle of the input, (input - row) / 2 seconds each side (the
  old global `audio.context_seconds`, now per member), once per TTA shift. A clip-wise output
  is the row's score; a frame-wise one is pooled over the frames centred within the row. The
  views' scores are averaged.
- **sliding**: one input per row, centred on it, so consecutive inputs step by the row length
  (2025's 1st place: 20 s windows stepped 5 s, 12 per 60 s file). Beyond the file's edges the
  audio is zeros ((input - row) / 2 seconds before the first row, as much after the last, whose
  own tail is zero-padded as every row's is). The frame-wise outputs of every window are
  averaged frame by frame over the windows that hold that frame, and each row then pools (max
  or mean) the frames centred within it. The frames must step evenly with the rows (a whole
  number of frames per row); TTA shifts do not apply (the windows already overlap).

Both place the same windows (one centred on each row); they differ in which outputs a row reads.

- **tiled**: inputs shorter than the row (BirdNET's 3 s in a 5 s row) laid from the row's start,
  stepped by input - overlap seconds, with a last one ending at the row's end when the steps
  leave the row's tail unheard (3 s windows, overlap 1 s: 0-3 and 2-5; overlap 2 s: 0-3, 1-4,
  2-5). The row pools its tiles' scores (max or mean). A waveform model at another sample rate
  than the run's (BirdNET's 48 kHz beside 32 kHz CNNs) hears each tile with a margin either side
  and resampled to its rate (`birdinfer.audio.kaiser`), so every tile equals the same span of
  the whole file resampled (zeros beyond the file, as resampy gives).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from birdinfer.audio import Cut, kaiser
from birdinfer.config import AudioConfig
from birdinfer.scorer.postprocess import average_views, pool_frames, row_frames


@dataclass(frozen=True)
class Geometry:
    kind: str  # "centred", "sliding" or "tiled"
    row_seconds: float
    input_seconds: float
    sample_rate: int
    shifts: tuple[float, ...] = (0.0,)  # tiled: each tile's start within the row, in seconds
    model_rate: int = 0  # tiled: the model's sample rate when it differs from the run's (else 0)

    @classmethod
    def for_member(
        cls,
        geometry: str | None,
        audio: AudioConfig,
        card_seconds: float,
        card_rate: int | None = None,
        overlap: float = 1.0,
    ) -> Geometry:
        """A member's geometry: its own (centred, sliding or tiled, over the card's window), or
        the run's audio settings (the row plus audio.context_seconds each side) when it has
        none."""
        if geometry is None:
            return cls("centred", audio.window_seconds, audio.input_seconds, audio.sample_rate,
                       tuple(audio.tta_shifts))  # fmt: skip
        if geometry == "tiled":
            rate = card_rate if card_rate and card_rate != audio.sample_rate else 0
            starts = tile_starts(audio.window_seconds, card_seconds, overlap)
            return cls(
                geometry, audio.window_seconds, card_seconds, audio.sample_rate, starts, rate
            )
        shifts = tuple(audio.tta_shifts) if geometry == "centred" else (0.0,)
        return cls(geometry, audio.window_seconds, card_seconds, audio.sample_rate, shifts)

    @property
    def context_seconds(self) -> float:
        return (self.input_seconds - self.row_seconds) / 2

    @property
    def views(self) -> int:
        return len(self.shifts)

    @property
    def margin(self) -> int:
        """Run-rate samples heard beyond each side of a resampled tile (the filter's reach)."""
        if not self.model_rate:
            return 0
        return kaiser.phase_weights(self.sample_rate, self.model_rate)[3]

    @property
    def cut(self) -> Cut:
        """The inputs' placement, in samples, as `Cut.of` places the run's own inputs."""
        rate = self.sample_rate
        length = round(rate * self.input_seconds)
        if self.kind == "tiled":
            margin = self.margin
            return Cut(length + 2 * margin, tuple(round(s * rate) - margin for s in self.shifts))
        if self.kind == "centred":
            context = round(self.context_seconds * rate)
            return Cut(length, tuple(round(s * rate) - context for s in self.shifts))
        # Floor: an odd difference in samples puts the extra sample after the row.
        return Cut(length, ((round(rate * self.row_seconds) - length) // 2,))

    def describe(self) -> dict:
        described = {
            "geometry": self.kind,
            "input_seconds": self.input_seconds,
            "context_seconds": self.context_seconds,
            "views": self.views,
        }
        if self.kind == "tiled":
            described["tile_starts"] = list(self.shifts)
            if self.model_rate:
                described["resampled_to"] = self.model_rate
        return described

    def model_inputs(self, windows: np.ndarray, audible: np.ndarray | None = None) -> np.ndarray:
        """The windows a tiled member's model hears: resampled to its rate (the margins
        dropped) when it differs from the run's, else as cut. `audible`: per window, its
        samples before the file's end; the resampled samples from there on are zeros, as
        librosa pads a resampled file (not the filter's ringing into the padding)."""
        if not self.model_rate:
            return windows
        count = round(self.model_rate * self.input_seconds)
        out = kaiser.resample(windows, self.sample_rate, self.model_rate, self.margin, count)
        if audible is not None:
            kept = ((audible - self.margin) * self.model_rate) // self.sample_rate
            for row, stop in enumerate(np.asarray(kept).reshape(-1)):
                out[row, ..., max(0, int(stop)) :] = 0.0
        return out

    # --- outputs -> rows -------------------------------------------------------------------

    def frame_step(self, frames: int) -> int | None:
        """Frames of a frame-wise output per row (sliding windows step by one row); None when
        the row is not a whole number of frames."""
        step = frames * self.row_seconds / self.input_seconds
        return round(step) if abs(step - round(step)) < 1e-6 and round(step) >= 1 else None

    def input_rows(self, scores: np.ndarray, pooling: str) -> np.ndarray:
        """A centred member's scores per input: a frame-wise (n, frames, classes) output pooled
        over the frames centred within the row; a clip-wise one as it is."""
        if scores.ndim != 3:
            return scores
        span = row_frames(scores.shape[1], self.input_seconds, self.context_seconds)
        return pool_frames(scores, pooling, span)

    def file_rows(self, per_input: np.ndarray, n_rows: int, pooling: str) -> np.ndarray:
        """One file's row scores from its inputs' outputs, in row order: centred, the mean over
        each row's views; sliding, the frame-averaged windows pooled per row."""
        if self.kind == "centred":
            return average_views(per_input, self.views)
        if self.kind == "tiled":
            tiles = per_input.reshape(-1, self.views, *per_input.shape[1:])
            return tiles.max(axis=1) if pooling == "max" else tiles.mean(axis=1)
        return overlap_rows(per_input, n_rows, self, pooling)


def tile_starts(row: float, window: float, overlap: float) -> tuple[float, ...]:
    """Where tiles of `window` seconds start within a `row`, stepped by window - overlap; a
    last one ends at the row's end when the steps leave its tail unheard."""
    step = window - overlap
    if step <= 0:
        raise ValueError(f"tile overlap {overlap} s must be shorter than the {window} s window")
    starts = []
    start = 0.0
    while start + window <= row + 1e-9:
        starts.append(round(start, 9))
        start += step
    if not starts or starts[-1] + window < row - 1e-9:
        starts.append(round(max(0.0, row - window), 9))
    return tuple(starts)


def overlap_rows(frames: np.ndarray, n_rows: int, geometry: Geometry, pooling: str) -> np.ndarray:
    """(rows, frames, classes) outputs of sliding windows, one centred on each row ->
    (rows, classes).

    Window j's frame i lands on slot j * step + i of the file's frame timeline (step: frames
    per row). Each slot is the mean over the windows that hold it; row k pools the slots whose
    centres fall within it: those of window 0's row (`row_frames`, exact edges kept as for a
    centred member), moved k steps on.
    """
    windows, n_frames, classes = frames.shape
    if windows != n_rows:
        raise ValueError(f"{windows} sliding windows for {n_rows} rows")
    step = geometry.frame_step(n_frames)
    if step is None:
        raise ValueError(f"{n_frames} frames over {geometry.input_seconds} s do not step by rows")
    slots = (windows - 1) * step + n_frames
    total = np.zeros((slots, classes), np.float64)
    held = np.zeros(slots, np.int64)
    for j in range(windows):
        total[j * step : j * step + n_frames] += frames[j]
        held[j * step : j * step + n_frames] += 1
    timeline = (total / held[:, None]).astype(np.float32)
    span = row_frames(n_frames, geometry.input_seconds, geometry.context_seconds)
    width = span.stop - span.start
    # Row k reads slots [span.start + k * step, span.stop + k * step): within the timeline,
    # since window k holds them all.
    view = np.lib.stride_tricks.sliding_window_view(timeline, width, axis=0)
    rows = view[span.start : span.start + (n_rows - 1) * step + 1 : step]  # (rows, classes, width)
    return pool_frames(rows.transpose(0, 2, 1), pooling, slice(0, width))
