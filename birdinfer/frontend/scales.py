"""Mel scales and the triangular mel filterbank, as librosa.filters.mel and torchaudio's
melscale_fbanks compute them.

Both libraries place n_mels + 2 points evenly on the mel scale between fmin and fmax, draw
triangles between neighbours and, with Slaney normalisation, scale each to unit area. They
differ in their defaults only: librosa uses Slaney's scale and normalisation, torchaudio HTK's
scale and none. Points above the Nyquist frequency are kept as both libraries keep them: the
filters there see no spectrum and come out partly or wholly empty.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray, scale: str = "slaney") -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = hz / _F_SP
    log_part = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log_part, linear)


def mel_to_hz(mel: np.ndarray, scale: str = "slaney") -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = _F_SP * mel
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log_part, linear)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float,
    scale: str = "slaney",
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular filters, shape (n_mels, 1 + n_fft // 2), float32 (computed in float64)."""
    if fmax > sample_rate / 2:
        log.warning(
            "mel.fmax %s is above the Nyquist frequency %s: the top filters reach past the "
            "spectrum and come out partly or wholly empty, as torchaudio and librosa compute them",
            fmax,
            sample_rate / 2,
        )
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_freqs = mel_to_hz(
        np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n_mels + 2), scale
    )
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return weights.astype(np.float32)
