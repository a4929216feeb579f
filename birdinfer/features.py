"""Log-mel front end in numpy: the same numbers as librosa, for a batch of windows at once.

librosa computes one window at a time and spends most of its time on per-call overhead; here a
whole batch of windows is framed with a strided view, transformed with one batched real FFT and
projected onto the mel filterbank with one matrix product (docs/frontend.md has the figures).
"""

from __future__ import annotations

import numpy as np

from birdinfer.config import MelConfig

AMIN = 1e-10  # librosa.power_to_db's floor

# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = _F_SP * mel
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """Slaney-normalised triangular filters, shape (n_mels, 1 + n_fft // 2), as librosa.filters.mel."""
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return weights.astype(np.float32)


def periodic_hann(n: int) -> np.ndarray:
    """scipy.signal.get_window("hann", n), the window librosa uses."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


class LogMel:
    """Windows of audio (n, samples) -> model input (n, 1, n_mels, frames), float32.

    Stateless after construction, so one instance serves every worker thread.
    """

    def __init__(self, config: MelConfig) -> None:
        self.config = config
        self.window = periodic_hann(config.n_fft)
        fb = mel_filterbank(
            config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax
        )
        # Bins above the highest filter's edge carry no weight: never compute their power.
        self.n_bins = int(np.flatnonzero(fb.any(axis=0)).max()) + 1
        self.filterbank = SparseFilterbank(fb[:, : self.n_bins])

    def output_shape(self, n_samples: int) -> tuple[int, int, int]:
        return (1, self.config.n_mels, self.config.frames_for(n_samples))

    def power_mel(self, windows: np.ndarray) -> np.ndarray:
        """Mel power (or magnitude) spectrogram, shape (n, n_mels, frames)."""
        cfg = self.config
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2:
            raise ValueError(f"expected windows of shape (n, samples), got {windows.shape}")
        if cfg.center:
            pad = cfg.n_fft // 2
            windows = np.pad(windows, ((0, 0), (pad, pad)))
        frames = np.lib.stride_tricks.sliding_window_view(windows, cfg.n_fft, axis=1)
        frames = frames[:, :: cfg.hop_length]  # (n, frames, n_fft), still a view
        spectrum = np.fft.rfft(frames * self.window, axis=-1)[..., : self.n_bins]
        magnitude = np.abs(spectrum) if cfg.power == 1.0 else _power(spectrum)
        mel = self.filterbank(magnitude)  # (n, frames, n_mels)
        return np.ascontiguousarray(mel.transpose(0, 2, 1))

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        db = power_to_db(self.power_mel(windows), self.config)
        return normalize(db, self.config.normalization)[:, None]


class SparseFilterbank:
    """`spectrum @ filterbank.T` using only the filterbank's non-zero weights.

    A triangular filter touches a few bins, so the dense product (128 x 1025 weights for the
    2048-point preset) is ~98% multiplications by zero; worse, it goes through BLAS, whose own
    thread pool fights the file workers. Here: one gather of each filter's bins, one multiply,
    one `np.add.reduceat` over the filters' runs. Filters without any bin give 0, as librosa's.
    """

    def __init__(self, filterbank: np.ndarray) -> None:
        self.n_mels = filterbank.shape[0]
        bins, weights, starts, filled = [], [], [], []
        for mel, row in enumerate(filterbank):
            nonzero = np.flatnonzero(row)
            if nonzero.size == 0:
                continue
            starts.append(len(bins))
            bins.extend(nonzero.tolist())
            weights.extend(row[nonzero].tolist())
            filled.append(mel)
        self.bins = np.asarray(bins, dtype=np.intp)
        self.weights = np.asarray(weights, dtype=np.float32)
        self.starts = np.asarray(starts, dtype=np.intp)
        self.filled = np.asarray(filled, dtype=np.intp)
        self.dense = len(filled) == self.n_mels and np.array_equal(
            self.filled, np.arange(self.n_mels)
        )

    def __call__(self, spectrum: np.ndarray) -> np.ndarray:
        weighted = spectrum[..., self.bins] * self.weights
        sums = np.add.reduceat(weighted, self.starts, axis=-1)
        if self.dense:
            return sums
        out = np.zeros((*spectrum.shape[:-1], self.n_mels), dtype=sums.dtype)
        out[..., self.filled] = sums
        return out


def _power(spectrum: np.ndarray) -> np.ndarray:
    return spectrum.real**2 + spectrum.imag**2


def power_to_db(mel: np.ndarray, config: MelConfig) -> np.ndarray:
    """librosa.power_to_db per window (ref and top_db are taken over each window on its own).

    For power 1.0 (magnitudes) the factor is 20, as librosa.amplitude_to_db.
    """
    factor = 10.0 if config.power == 2.0 else 20.0
    amin = AMIN if config.power == 2.0 else 1e-5
    db = factor * np.log10(np.maximum(mel, amin))
    if config.ref == "max":
        ref = np.maximum(mel.max(axis=(1, 2), keepdims=True), amin)
    else:
        ref = np.float32(max(float(config.ref), amin))
    db -= factor * np.log10(ref)
    if config.top_db is not None:
        db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - config.top_db)
    return db.astype(np.float32, copy=False)


def normalize(db: np.ndarray, method: str) -> np.ndarray:
    """Per-window normalisation of a dB spectrogram batch (n, n_mels, frames)."""
    if method == "none":
        return db
    if method == "scale80":
        return (db + 80.0) / 80.0
    if method == "standardize":
        mean = db.mean(axis=(1, 2), keepdims=True)
        std = db.std(axis=(1, 2), keepdims=True)
        return (db - mean) / (std + 1e-6)
    if method == "minmax":
        low = db.min(axis=(1, 2), keepdims=True)
        high = db.max(axis=(1, 2), keepdims=True)
        return (db - low) / (high - low + 1e-6)
    raise ValueError(f"unknown normalisation '{method}'")
