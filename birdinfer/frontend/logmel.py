"""The front end: windows of audio -> model input, for a batch of windows at once.

    spectrogram.Framer      pad, frame, window, FFT, |.|**power        (n * frames, n_bins)
    filterbank.Projection   onto the mel filterbank (scales.py)        (n, n_mels, frames)
    amplitude               dB, log or PCEN
    normalize               the named steps of mel.normalization
    image.ImageSteps        channels, resize, layout                   (n, c, h, w)
    normalize               the steps of image.normalization

With the default settings it computes librosa's numbers (melspectrogram, power_to_db); with
torchaudio's settings, torchaudio's (docs/frontends.md has the measured differences). librosa
transforms in float64; here the FFT runs in float32, and a frame holding a band far enough below
its power for float32 rounding to show in the dB (`QUIET`) is computed again in float64. librosa
computes one window at a time and spends most of its time on per-call overhead; here a few
windows are framed with a strided view, transformed with one batched real FFT and projected
with ~10 BLAS products (blocks of neighbouring filters), in buffers each thread reuses.
"""

from __future__ import annotations

import threading

import numpy as np

from birdinfer.config import ImageConfig, MelConfig, NormStep, as_steps
from birdinfer.frontend.amplitude import default_amin, power_to_db, scale_amplitude
from birdinfer.frontend.filterbank import SparseFilterbank
from birdinfer.frontend.image import ImageSteps
from birdinfer.frontend.normalize import apply_steps
from birdinfer.frontend.scales import hz_to_mel, mel_filterbank, mel_to_hz, torchaudio_filterbank
from birdinfer.frontend.spectrogram import Framer, periodic_hann

__all__ = [
    "LogMel",
    "SparseFilterbank",
    "hz_to_mel",
    "mel_filterbank",
    "mel_to_hz",
    "normalize",
    "periodic_hann",
    "power_to_db",
]

SUB_BATCH = 2  # windows framed and transformed together (cache-sized)

# A float32 FFT rounds each bin by a share of its frame's magnitude, so a band far enough below
# its frame's power moves visibly in the dB, and a standardised input carries that into the
# model. A band below this share of (its filter's weight sum x its frame's spectrum power), and
# above the dB floor, sends its frame through librosa's float64 arithmetic again. Recordings
# with a noise floor have no such band; noiseless synthetic audio has many (docs/frontends.md
# has the thresholds measured and the cost).
QUIET = 10 ** (-80 / 10)


class LogMel:
    """Windows of audio (n, samples) -> model input (n, channels, height, width), float32.

    Stateless after construction apart from per-thread scratch buffers, so one instance
    serves every worker thread.
    """

    def __init__(self, config: MelConfig, image: ImageConfig | None = None) -> None:
        self.config = config
        self.image = image or ImageConfig()
        build = torchaudio_filterbank if config.filterbank == "torchaudio" else mel_filterbank
        fb = build(
            config.sample_rate,
            config.n_fft,
            config.n_mels,
            config.fmin,
            config.fmax,
            config.mel_scale,
            config.norm,
        )
        # Bins above the highest filter's edge carry no weight: never compute their power.
        used = np.flatnonzero(fb.any(axis=0))
        self.n_bins = int(used.max()) + 1 if used.size else 1
        self.filterbank = SparseFilterbank(fb[:, : self.n_bins])
        # librosa's arithmetic: per filter, the power below which a frame is redone in float64.
        self._quiet = None
        if config.window != "torchaudio":
            share = QUIET if config.power == 2.0 else np.sqrt(QUIET)
            self._quiet = (fb[:, : self.n_bins].sum(axis=1) * share).astype(np.float32)
            self._ones = np.ones(self.n_bins, np.float32)
        self._local = threading.local()
        self._image_steps: dict[int, ImageSteps] = {}

    def output_shape(self, n_samples: int) -> tuple[int, int, int]:
        return self.image.output_shape(self.config.n_mels, self.config.frames_for(n_samples))

    def power_mel(self, windows: np.ndarray, frame_floors: bool = False) -> np.ndarray:
        """Mel power (or magnitude) spectrogram, shape (n, n_mels, frames).

        `frame_floors`: `windows` are not the windows a model hears (the shared front end's
        pieces), so the dB floor that spares a quiet frame its float64 pass is each frame's own
        (below the window's), not the piece's."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2:
            raise ValueError(f"expected windows of shape (n, samples), got {windows.shape}")
        frames = self.config.frames_for(windows.shape[1])
        out = np.empty((windows.shape[0], self.config.n_mels, frames), dtype=np.float32)
        # A few windows at a time: the framed copy and its spectrum then stay in cache
        # (16 windows at once are ~80 MB of intermediates: docs/throughput.md has the cost).
        for start in range(0, windows.shape[0], SUB_BATCH):
            part = windows[start : start + SUB_BATCH]
            framer, projection = self._buffers(len(part), windows.shape[1])
            framer.power(part, projection.spectrum)
            mel = projection.run()
            if self._quiet is not None:
                self._redo_quiet_frames(framer, projection.spectrum, mel, len(part), frame_floors)
            mel = mel.reshape(len(part), frames, self.config.n_mels)
            out[start : start + len(part)] = mel.transpose(0, 2, 1)
        return out

    def _redo_quiet_frames(
        self, framer: Framer, spectrum: np.ndarray, mel: np.ndarray, n: int, frame_floors: bool
    ) -> None:
        """Recompute in float64 the frames (rows of `mel`, n windows' worth) holding a band below
        `QUIET` of their power and above the dB floor (below it, the band is clamped anyway)."""
        quiet = mel < np.dot(spectrum, self._ones)[:, None] * self._quiet
        if not quiet.any():
            return
        floor = self._floor(mel.reshape(n, -1, mel.shape[1]), frame_floors).reshape(-1, 1)
        rows = np.flatnonzero((quiet & (mel > floor)).any(axis=1))
        if rows.size:
            mel[rows] = self.filterbank(framer.exact_power(rows))

    def _floor(self, mel: np.ndarray, frame_floors: bool) -> np.ndarray:
        """(n, frames, n_mels) -> each frame's floor (n, frames): top_db below the window's (or
        the frame's) loudest band, or amin without a per-window top_db."""
        config = self.config
        shape = mel.shape[:2]
        if config.amplitude != "db":
            return np.zeros(shape, np.float32)
        if config.top_db is None or config.top_db_scope != "window":
            return np.full(shape, default_amin(config), np.float32)
        factor = 10.0 if config.power == 2.0 else 20.0
        loudest = mel.max(axis=2) if frame_floors else mel.max(axis=(1, 2))[:, None]
        return np.broadcast_to(loudest * np.float32(10 ** (-config.top_db / factor)), shape)

    def _buffers(self, n: int, samples: int):
        """This thread's framer and projection for `n` windows of `samples` (made once)."""
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        key = (n, samples)
        if key not in cache:
            framer = cache.get(("framer", samples))
            if framer is None:
                framer = Framer(self.config, SUB_BATCH, samples, self.n_bins)
                cache[("framer", samples)] = framer
            cache[key] = (framer, self.filterbank.projection(n * framer.frames))
        return cache[key]

    def scaled(self, windows: np.ndarray) -> np.ndarray:
        """After the amplitude scaling (dB, log or PCEN), before any normalisation."""
        return scale_amplitude(self.power_mel(windows), self.config)

    def normalized(self, scaled: np.ndarray) -> np.ndarray:
        return apply_steps(scaled, self.config.normalization, self.config.normalization_scope)

    def imaged(self, normalized: np.ndarray) -> np.ndarray:
        """The image steps and their normalisation: (n, n_mels, frames) -> (n, c, h, w)."""
        frames = normalized.shape[-1]
        steps = self._image_steps.get(frames)
        if steps is None:
            steps = self._image_steps[frames] = ImageSteps(self.image, self.config.n_mels, frames)
        return apply_steps(steps(normalized), self.image.normalization)

    def from_power(self, power: np.ndarray) -> np.ndarray:
        """The model input from a mel power (n, n_mels, frames): every step after power_mel,
        each over its own window (birdinfer.frontend.shared computes the power once for
        overlapping windows)."""
        normalized = self.normalized(scale_amplitude(power, self.config))
        if self.image == ImageConfig():
            return normalized[:, None]
        return self.imaged(normalized)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        return self.from_power(self.power_mel(windows))


def normalize(db: np.ndarray, method: str | NormStep | tuple[NormStep, ...]) -> np.ndarray:
    """Per-window normalisation of a dB batch (n, n_mels, frames): a step name, or steps."""
    return apply_steps(db, as_steps(method))
