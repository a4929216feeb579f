"""Decode a recording into fixed-length mono windows at the model's sample rate.

Files are read in blocks and resampled with a streaming resampler, so memory stays flat however
long a recording is; windows come out in groups as soon as they are complete.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from birdinfer.config import AudioConfig

log = logging.getLogger(__name__)


class AudioError(Exception):
    """A recording that cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def probe(path: Path) -> AudioInfo:
    """Header facts of a recording, or an AudioError that says what is wrong with it."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(path, f"cannot be decoded as audio ({_reason(exc)})") from exc
    return AudioInfo(Path(path), int(info.samplerate), int(info.channels), int(info.frames))


def window_end_label(index: int, window_seconds: float) -> str:
    """End second of window `index` as it appears in a row id: 5, 10, ... (or 2.5, 5, ...)."""
    end = (index + 1) * window_seconds
    return str(int(round(end))) if abs(end - round(end)) < 1e-9 else f"{end:g}"


def row_ids(stem: str, n_windows: int, window_seconds: float) -> list[str]:
    """BirdCLEF row ids: `<file stem>_<end second>` for each window."""
    return [f"{stem}_{window_end_label(i, window_seconds)}" for i in range(n_windows)]


def n_windows_for(frames: int, sample_rate: int, window_seconds: float) -> int:
    """Windows for a recording: a partial final window counts; a non-empty file gives at least 1."""
    if frames <= 0:
        return 0
    return max(1, math.ceil(frames / (sample_rate * window_seconds) - 1e-9))


class WindowReader:
    """Iterate (once) over (n, input_samples) float32 arrays of one recording's model inputs.

    Without context or TTA an input is a window; otherwise each window gives `views` inputs
    (one per TTA shift, each with its context), consecutive in the output.

    After iteration, `n_windows` holds the count and `warnings` what was repaired on the way
    (non-finite samples set to zero), so a caller can report them against the file.
    """

    def __init__(self, path: Path, config: AudioConfig) -> None:
        self.path = Path(path)
        self.config = config
        self.info = probe(self.path)
        if self.info.frames <= 0:
            raise AudioError(self.path, "holds no audio frames (empty or header-only file)")
        self.n_windows = 0
        self.warnings: list[str] = []
        self._source_frames = 0  # counted while decoding; decides the final window count

    @property
    def resampled(self) -> bool:
        return self.info.sample_rate != self.config.sample_rate

    def __iter__(self) -> Iterator[np.ndarray]:
        cfg = self.config
        if cfg.context_seconds == 0 and tuple(cfg.tta_shifts) == (0.0,):
            yield from self._plain_windows()
        else:
            yield from self._views()

    def _plain_windows(self) -> Iterator[np.ndarray]:
        """Back-to-back windows: each block is reshaped, no copies beyond the decode."""
        win = self.config.window_samples
        pending = np.zeros(0, dtype=np.float32)
        for block in self._mono_blocks():
            pending = np.concatenate([pending, block]) if pending.size else block
            full = pending.shape[0] // win
            if full:
                yield pending[: full * win].reshape(full, win)
                self.n_windows += full
                pending = pending[full * win :]
        missing = self._total_windows() - self.n_windows
        if missing > 0:  # the zero-padded tail (rounding of the resampler can add or drop a sample)
            tail = np.zeros(missing * win, dtype=np.float32)
            tail[: min(pending.shape[0], tail.shape[0])] = pending[: tail.shape[0]]
            yield tail.reshape(missing, win)
            self.n_windows += missing

    def _views(self) -> Iterator[np.ndarray]:
        """Model inputs for context windows and TTA shifts: (rows x views, input_samples).

        View v of row i is the audio [i*W + shift_v - context, ... + input), zeros outside the
        file; row i is cut as soon as its last view's audio has been decoded.
        """
        cfg = self.config
        win, length = cfg.window_samples, cfg.input_samples
        context = round(cfg.context_seconds * cfg.sample_rate)
        offsets = [round(shift * cfg.sample_rate) - context for shift in cfg.tta_shifts]
        first, last = min(offsets), max(offsets) + length  # a row's span, relative to its start
        buffer = np.zeros(max(0, -first), dtype=np.float32)
        origin = -buffer.shape[0]  # position in the file of buffer[0]
        for block in self._mono_blocks():
            buffer = np.concatenate([buffer, block])
            ready = max(0, (origin + buffer.shape[0] - last) // win + 1)
            if ready > self.n_windows:
                yield _cut(buffer, origin, range(self.n_windows, ready), win, offsets, length)
                self.n_windows = ready
                drop = ready * win + first - origin  # audio no later row needs
                if drop > 0:
                    buffer, origin = buffer[drop:], origin + drop
        total = self._total_windows()
        if total > self.n_windows:
            need = (total - 1) * win + last - origin
            buffer = np.concatenate([buffer, np.zeros(max(0, need - buffer.shape[0]), np.float32)])
            yield _cut(buffer, origin, range(self.n_windows, total), win, offsets, length)
            self.n_windows = total

    def _total_windows(self) -> int:
        total = n_windows_for(
            self._source_frames, self.info.sample_rate, self.config.window_seconds
        )
        if total == 0:
            raise AudioError(self.path, "decoded to zero samples")
        return total

    def _mono_blocks(self) -> Iterator[np.ndarray]:
        """Blocks of mono float32 samples at the target rate; the last flushes the resampler."""
        self._source_frames = 0
        source_rate, target_rate = self.info.sample_rate, self.config.sample_rate
        block_frames = max(1, round(self.config.block_seconds * source_rate))
        stream = _resampler(source_rate, target_rate) if self.resampled else None
        try:
            with sf.SoundFile(str(self.path)) as handle:
                while True:
                    block = handle.read(block_frames, dtype="float32", always_2d=True)
                    last = block.shape[0] < block_frames
                    self._source_frames += block.shape[0]
                    mono = self._repair(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0])
                    if stream is not None:
                        mono = stream.resample_chunk(mono, last=last)
                    if mono.size:
                        yield np.ascontiguousarray(mono, dtype=np.float32)
                    if last:
                        return
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(self.path, f"decoding failed ({_reason(exc)})") from exc

    def _repair(self, mono: np.ndarray) -> np.ndarray:
        finite = np.isfinite(mono)
        if finite.all():
            return mono
        bad = int(mono.size - finite.sum())
        self.warnings.append(f"{bad} NaN/Inf samples set to zero")
        log.warning("%s: %d NaN/Inf samples set to zero", self.path, bad)
        return np.where(finite, mono, np.float32(0.0))


def _cut(
    buffer: np.ndarray, origin: int, rows: range, win: int, offsets: list[int], length: int
) -> np.ndarray:
    starts = [row * win + offset - origin for row in rows for offset in offsets]
    return np.lib.stride_tricks.sliding_window_view(buffer, length)[starts]


def _resampler(source_rate: int, target_rate: int):
    import soxr  # imported here: files at the model's rate never need it

    return soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32", quality="HQ")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def read_windows(path: Path, config: AudioConfig) -> np.ndarray:
    """All model inputs of one recording at once: (windows x views, input_samples)."""
    return np.concatenate(list(WindowReader(path, config)))


def list_audio_files(folder: Path, extensions: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """Audio files under `folder` (recursive, sorted) and the other files that were ignored."""
    folder = Path(folder)
    if not folder.exists():
        return [], []
    if not folder.is_dir():
        raise AudioError(folder, "is not a folder")
    wanted = {e.lower() for e in extensions}
    audio, ignored = [], []
    for path in sorted(folder.rglob("*")):
        if path.is_dir():
            continue
        (audio if path.suffix.lower() in wanted else ignored).append(path)
    return audio, ignored
