"""Decode a recording into fixed-length mono windows at the model's sample rate.

Files are read in blocks and resampled with a streaming resampler, so memory stays flat however
long a recording is; windows come out in groups as soon as they are complete.

A recording is opened without blocking and used only when it is a regular file (a FIFO would
block forever, a device would never end), and libsndfile reads from that same handle, whose
fstat is the identity of what was decoded. A header's length is a claim: an unknown or
implausible one is set aside, and the rows always follow the decoded audio.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from soundfile import _ffi, _snd

import birdinfer.audio.flac as flac
from birdinfer.audio.mpeg import mpeg_seconds
from birdinfer.audio.rows import count_windows
from birdinfer.config import AudioConfig
from birdinfer.errors import AudioError
from birdinfer.results import FileIdentity

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
# libsndfile's count for a stream whose header gives no length (SF_COUNT_MAX, 2^63 - 1).
UNKNOWN_FRAMES = 1 << 62
DEFAULT_MAX_HEADER_SECONDS = AudioConfig().max_header_seconds
# What a file that is not a regular file is, by its mode.
NOT_REGULAR = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int  # the header's length; 0 when it is unknown or implausible (see length_known)
    length_known: bool = True
    note: str = ""  # why the header's length was set aside

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def not_regular(mode: int) -> str:
    """What a file of this mode is, for one that is not a regular file ("a FIFO (named pipe)")."""
    return next((kind for test, kind in NOT_REGULAR if test(mode)), "not a regular file")


@contextmanager
def open_recording(path: Path) -> Iterator[tuple[object, os.stat_result]]:
    """The open recording (unbuffered) and fstat of that handle; an AudioError if it cannot be
    opened, is empty, or is not a regular file. Opening never blocks, even on a FIFO."""
    try:
        handle = open(path, "rb", buffering=0, opener=_open_nonblocking)  # noqa: SIM115
    except IsADirectoryError as exc:
        raise AudioError(path, "is a folder, not an audio file") from exc
    except OSError as exc:  # missing, no permission, a symlink loop, ...
        raise AudioError(path, f"cannot be opened ({exc.strerror or exc})") from exc
    with handle:
        status = os.fstat(handle.fileno())
        if stat.S_ISDIR(status.st_mode):
            raise AudioError(path, "is a folder, not an audio file")
        if not stat.S_ISREG(status.st_mode):
            raise AudioError(path, f"is {not_regular(status.st_mode)}, not an audio file")
        if status.st_size == 0:
            raise AudioError(path, "is an empty file (0 bytes)")
        os.set_blocking(handle.fileno(), True)
        yield handle, status


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


def probe(path: Path, max_header_seconds: float = DEFAULT_MAX_HEADER_SECONDS) -> AudioInfo:
    """Header facts of a recording, or an AudioError that says what is wrong with it.

    A length the header does not give, or one above `max_header_seconds`, is set aside
    (`frames` 0, `length_known` False): nothing is sized by it, and decoding learns the truth.
    """
    path = Path(path)
    with open_recording(path) as (handle, status):
        try:
            with _libsndfile(path, handle, status, hide_length=False) as sound:
                rate, channels = int(sound.samplerate), int(sound.channels)
                frames, kind = int(sound.frames), sound.format
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(path, f"cannot be decoded as audio ({_reason(exc)})") from exc
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            path, f"sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz (corrupt header?)"
        )
    if frames >= UNKNOWN_FRAMES:
        note = "its header gives no length (as a stream written to a pipe)"
        return AudioInfo(path, rate, channels, 0, False, note)
    if frames > max_header_seconds * rate:
        note = (
            f"its header declares {frames / rate:.0f} s, more than "
            f"audio.max_header_hours ({max_header_seconds / 3600:g} h)"
        )
        return AudioInfo(path, rate, channels, 0, False, note)
    if kind == "MP3" and frames > 0:
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
        self.info = probe(self.path, config.max_header_seconds)
        if self.info.frames <= 0 and self.info.length_known:
            raise AudioError(self.path, "holds no audio frames (empty or header-only file)")
        self.n_windows = 0
        # The last decode block's rows handed on with the file's tail in one span (a front end
        # whose dB floor or normalisation is taken over the file's windows needs them together).
        self.whole_last_block = False
        self.warnings: list[str] = []
        self.identity: FileIdentity | None = None  # of the handle decoded, once decoding starts
        self._source_frames = 0  # counted while decoding; decides the final window count
        self.decoded_samples: int | None = None  # at the target rate, once decoding ended

    @property
    def seconds(self) -> float:
        """Seconds of audio the rows follow (after iteration)."""
        return self._source_frames / self.info.sample_rate

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
        total = self._total_windows()
        missing = total - self.n_windows
        if missing > 0:  # the zero-padded tail (rounding of the resampler can add or drop a sample)
            pending = self._pad_start(pending, self.n_windows * win, total)
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
        for buffer, origin, rows in self._row_spans(min(offsets), max(offsets) + length):
            yield _cut(buffer, origin, rows, win, offsets, length)

    def _row_spans(self, first: int, last: int) -> Iterator[tuple[np.ndarray, int, range]]:
        """(audio, the file's sample number of audio[0], rows) as rows become ready: a row
        needs the file's samples [row start + first, row start + last), zeros outside the
        file. Each block's rows are handed on as soon as it is decoded, and audio no later row
        needs is dropped, so memory stays at about one block."""
        win = self.config.window_samples
        buffer = np.zeros(max(0, -first), dtype=np.float32)
        origin = -buffer.shape[0]  # position in the file of buffer[0]
        for block, final in _with_final(self._mono_blocks()):
            buffer = np.concatenate([buffer, block])
            if final and self.whole_last_block:
                break  # its rows go with the file's tail, in one span
            ready = max(0, (origin + buffer.shape[0] - last) // win + 1)
            if ready > self.n_windows:
                yield buffer, origin, range(self.n_windows, ready)
                self.n_windows = ready
                drop = ready * win + first - origin  # audio no later row needs
                if drop > 0:
                    buffer, origin = buffer[drop:], origin + drop
        total = self._total_windows()
        if total > self.n_windows:
            buffer = self._pad_start(buffer, origin, total)
            need = (total - 1) * win + last - origin
            buffer = np.concatenate([buffer, np.zeros(max(0, need - buffer.shape[0]), np.float32)])
            yield buffer, origin, range(self.n_windows, total)
            self.n_windows = total

    def _pad_start(self, buffer: np.ndarray, origin: int, total: int) -> np.ndarray:
        """audio.last_window "pad_start": zeros inserted before the last row's audio, so that a
        partial last window holds the file's last seconds (as a left zero-pad does). A tail
        within one sample of a full window is the resampler's rounding, not a partial window."""
        win = self.config.window_samples
        start = (total - 1) * win - origin  # the last row's first sample in `buffer`
        short = win - (buffer.shape[0] - start)
        if self.config.last_window != "pad_start" or short <= 1 or start < 0 or short >= win:
            return buffer
        return np.concatenate([buffer[:start], np.zeros(short, np.float32), buffer[start:]])

    def _total_windows(self) -> int:
        total = count_windows(
            self._source_frames,
            self.info.sample_rate,
            self.config.window_seconds,
            self.config.last_window,
        )
        if total == 0:
            raise AudioError(self.path, "decoded to zero samples")
        return total

    def _mono_blocks(self) -> Iterator[np.ndarray]:
        """Blocks of mono float32 samples at the target rate; the last flushes the resampler."""
        self._source_frames = 0
        self.decoded_samples = None
        decoded = 0
        source_rate, target_rate = self.info.sample_rate, self.config.sample_rate
        block_frames = round(self.config.block_seconds * source_rate)
        block_frames = max(1, min(block_frames, MAX_BLOCK_SAMPLES // max(1, self.info.channels)))
        kind = self.config.resampler
        stream = _resampler(source_rate, target_rate, kind) if self.resampled else None
        try:
            with (
                open_recording(self.path) as (handle, status),
                _libsndfile(self.path, handle, status, hide_length=True) as sound,
            ):
                self.identity = FileIdentity(status.st_size, status.st_mtime_ns)
                if (sound.samplerate, sound.channels) != (source_rate, self.info.channels):
                    raise AudioError(self.path, "changed between probing and decoding")
                while True:
                    block = _read(sound, block_frames)
                    last = block.shape[0] < block_frames
                    self._source_frames += block.shape[0]
                    mono = self._repair(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0])
                    if stream is not None:
                        mono = stream.resample_chunk(mono, last=last)
                    if mono.size:
                        decoded += mono.size
                        yield np.ascontiguousarray(mono, dtype=np.float32)
                    if last:
                        break
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(self.path, f"decoding failed ({_reason(exc)})") from exc
        self.decoded_samples = decoded
        self._check_length()

    def _check_length(self) -> None:
        """A decode that stops well short of the header's length is a damaged file; one that
        goes past it (or a header with no plausible length) gives rows for what was decoded."""
        rate, decoded = self.info.sample_rate, self._source_frames
        if not self.info.length_known:
            self._warn(f"{self.info.note}: rows follow the {decoded / rate:.1f} s decoded")
            return
        if decoded > self.info.frames:
            self._warn(
                f"its header declares {self.info.seconds:.1f} s but the stream holds "
                f"{decoded / rate:.1f} s: rows follow the decoded audio"
            )
            return
        missing = self.info.frames - decoded
        if missing > MAX_SHORTFALL_SECONDS * rate:
            raise AudioError(
                self.path,
                f"decoding stopped at {self._source_frames / rate:.1f} s of the "
                f"{self.info.seconds:.1f} s its header declares (truncated or corrupt file)",
            )
        if missing > 0:
            self._warn(f"decoded {missing} frames fewer than the header declares (zero-padded)")
            self._source_frames = self.info.frames  # rows follow the declared length

    def _warn(self, note: str) -> None:
        self.warnings.append(note)
        log.warning("%s: %s", self.path, note)

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


def _with_final(blocks: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
    """Each block, and whether it is the last one (one block of look-ahead)."""
    previous = None
    for block in blocks:
        if previous is not None:
            yield previous, False
        previous = block
    if previous is not None:
        yield previous, True


def _cut(
    buffer: np.ndarray, origin: int, rows: range, win: int, offsets: list[int], length: int
) -> np.ndarray:
    starts = [row * win + offset - origin for row in rows for offset in offsets]
    return np.lib.stride_tricks.sliding_window_view(buffer, length)[starts]


# libsndfile recognises an MP3 whose first frame is damaged by its file name's extension only,
# so these are opened by name (checked to be the file whose handle is open).
OPENED_BY_NAME = (".mp3",)


@contextmanager
def _libsndfile(
    path: Path, handle, status: os.stat_result, hide_length: bool
) -> Iterator[sf.SoundFile]:
    """libsndfile reading the open handle; with `hide_length`, a FLAC through a view whose
    header gives no total, so that the stream is decoded to its real end (audio/flac.py)."""
    if hide_length and flac.is_flac(handle):
        source = flac.LengthHidden(handle)
    elif path.suffix.lower() in OPENED_BY_NAME:
        source = str(path)
    else:
        source = handle.fileno()
    with sf.SoundFile(source, closefd=False) as sound:
        if isinstance(source, str):
            now = os.stat(path)
            if (now.st_dev, now.st_ino) != (status.st_dev, status.st_ino):
                raise AudioError(path, "was replaced while it was being opened")
        yield sound


def _read(sound: sf.SoundFile, frames: int) -> np.ndarray:
    """Up to `frames` frames as float32 (frames, channels): fewer only at the stream's end.

    libsndfile's own read, as soundfile's `read` calls it: soundfile then seeks to the new
    position, which fails once libsndfile reads past a length its header did not give.
    """
    out = np.empty((frames, sound.channels), dtype=np.float32)
    read = _snd.sf_readf_float(sound._file, _ffi.cast("float *", out.ctypes.data), frames)
    error = _snd.sf_error(sound._file)
    if error:
        raise sf.LibsndfileError(error)
    return out[:read]


def _resampler(source_rate: int, target_rate: int, kind: str = "soxr"):
    if kind == "kaiser_fast":  # BirdNET's own resampling (birdinfer.audio.kaiser)
        from birdinfer.audio.kaiser import KaiserStream

        return KaiserStream(source_rate, target_rate)
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
