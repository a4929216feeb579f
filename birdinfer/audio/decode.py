"""Decode a recording into fixed-length mono windows at the model's sample rate.

Files are read in blocks and resampled with a streaming resampler, so memory stays flat however
long a recording is; windows come out in groups as soon as they are complete.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from birdinfer.audio.mpeg import mpeg_seconds
from birdinfer.audio.rows import count_windows
from birdinfer.config import AudioConfig
from birdinfer.errors import AudioError

log = logging.getLogger(__name__)

# Sample rates a recording may have: anything outside is a corrupt header, not a recorder.
MIN_RATE, MAX_RATE = 1000, 1_000_000
# At most this many samples (all channels) per read, however high the rate or channel count.
MAX_BLOCK_SAMPLES = 1 << 24
# Float samples beyond this are corrupt data: squared in the mel power they would overflow
# float32 and turn a whole window's scores into NaN. They are clipped, with a warning.
MAX_ABS_SAMPLE = 1e6
# A decode that ends more than this short of the header's length is a truncated or corrupt file
# (reported); a smaller shortfall (a damaged OGG page or MP3 frame skipped) is a warning, and the
# rows still follow the header's length.
MAX_SHORTFALL_SECONDS = 1.0


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
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if not handle.read(1):
                raise AudioError(path, "is an empty file (0 bytes)")
    except IsADirectoryError as exc:
        raise AudioError(path, "is a folder, not an audio file") from exc
    except OSError as exc:  # missing, no permission, a symlink loop, ...
        raise AudioError(path, f"cannot be opened ({exc.strerror or exc})") from exc
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(path, f"cannot be decoded as audio ({_reason(exc)})") from exc
    rate, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            path, f"sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz (corrupt header?)"
        )
    if info.format == "MP3" and frames > 0:
        frames = _mpeg_frames(path, frames, rate)
    return AudioInfo(path, rate, channels, frames)


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
        total = count_windows(
            self._source_frames, self.info.sample_rate, self.config.window_seconds
        )
        if total == 0:
            raise AudioError(self.path, "decoded to zero samples")
        return total

    def _mono_blocks(self) -> Iterator[np.ndarray]:
        """Blocks of mono float32 samples at the target rate; the last flushes the resampler."""
        self._source_frames = 0
        source_rate, target_rate = self.info.sample_rate, self.config.sample_rate
        block_frames = round(self.config.block_seconds * source_rate)
        block_frames = max(1, min(block_frames, MAX_BLOCK_SAMPLES // max(1, self.info.channels)))
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
                        break
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(self.path, f"decoding failed ({_reason(exc)})") from exc
        self._check_length()

    def _check_length(self) -> None:
        """A decode that stops well short of the header's length is a damaged file."""
        rate = self.info.sample_rate
        missing = self.info.frames - self._source_frames
        if missing > MAX_SHORTFALL_SECONDS * rate:
            raise AudioError(
                self.path,
                f"decoding stopped at {self._source_frames / rate:.1f} s of the "
                f"{self.info.seconds:.1f} s its header declares (truncated or corrupt file)",
            )
        if missing > 0:
            note = f"decoded {missing} frames fewer than the header declares (zero-padded)"
            self.warnings.append(note)
            log.warning("%s: %s", self.path, note)
            self._source_frames = self.info.frames  # rows follow the declared length

    def _repair(self, mono: np.ndarray) -> np.ndarray:
        """Non-finite samples set to zero, absurdly large ones clipped; both with a warning."""
        if not mono.size or np.abs(mono).max() <= MAX_ABS_SAMPLE:  # False for NaN: repaired
            return mono
        finite = np.isfinite(mono)
        bad = int(mono.size - finite.sum())
        if bad:
            self.warnings.append(f"{bad} NaN/Inf samples set to zero")
            log.warning("%s: %d NaN/Inf samples set to zero", self.path, bad)
            mono = np.where(finite, mono, np.float32(0.0))
        huge = int((np.abs(mono) > MAX_ABS_SAMPLE).sum())
        if huge:
            self.warnings.append(f"{huge} samples beyond +/-{MAX_ABS_SAMPLE:g} clipped")
            log.warning("%s: %d samples beyond +/-%g clipped", self.path, huge, MAX_ABS_SAMPLE)
            mono = np.clip(mono, -MAX_ABS_SAMPLE, MAX_ABS_SAMPLE)
        return mono


def _cut(
    buffer: np.ndarray, origin: int, rows: range, win: int, offsets: list[int], length: int
) -> np.ndarray:
    starts = [row * win + offset - origin for row in rows for offset in offsets]
    return np.lib.stride_tricks.sliding_window_view(buffer, length)[starts]


def _resampler(source_rate: int, target_rate: int):
    import soxr  # imported here: files at the model's rate never need it

    return soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32", quality="HQ")


def _reason(exc: BaseException) -> str:
    """libsndfile's own words, without the "Error opening '<path>': " that repeats the path."""
    text = getattr(exc, "error_string", None) or str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip().removeprefix("Error : ").rstrip(".")


def _mpeg_frames(path: Path, frames: int, rate: int) -> int:
    """An MP3's length in frames: the header's, checked against what its MPEG frames hold."""
    declared, counted = frames / rate, mpeg_seconds(path)
    tolerance = max(MAX_SHORTFALL_SECONDS, 0.02 * counted)
    if counted - declared > tolerance:
        raise AudioError(
            path,
            f"its header declares {declared:.1f} s but its MPEG frames hold {counted:.1f} s: "
            "the decoder would stop early (damaged first frame or Xing/LAME tag)",
        )
    if declared - counted > tolerance:  # a guess from one frame's bitrate (VBR, no Xing tag)
        return round(counted * rate)
    return frames


def decode_windows(path: Path, config: AudioConfig) -> np.ndarray:
    """All model inputs of one recording at once: (windows x views, input_samples)."""
    return np.concatenate(list(WindowReader(path, config)))
