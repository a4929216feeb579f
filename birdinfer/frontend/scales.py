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


def torchaudio_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float,
    scale: str = "htk",
    norm: str | None = None,
) -> np.ndarray:
    """torchaudio.functional.melscale_fbanks, step for step in float32 as torch computes it.

    torchaudio's mel points are float32: up to ~1e-5 of a bin off the exact ones, which moves a
    filter narrower than an FFT bin by up to ~0.01 dB. Here they are computed the same way:
    torch.linspace (float32 ends and step, each point rounded once, from the nearer end) and the
    triangle arithmetic in float32. The one step not reproduced bit for bit is torch's float32
    pow (SLEEF, within 1 ulp; here correctly rounded): about 1 point in 60 differs by an ulp.
    """
    if fmax > sample_rate / 2:
        log.warning(
            "mel.fmax %s is above the Nyquist frequency %s: the top filters reach past the "
            "spectrum and come out partly or wholly empty, as torchaudio computes them",
            fmax,
            sample_rate / 2,
        )
    f32 = np.float32
    all_freqs = _torch_linspace(0.0, float(sample_rate // 2), 1 + n_fft // 2)
    m_pts = _torch_linspace(
        _hz_to_mel_scalar(fmin, scale), _hz_to_mel_scalar(fmax, scale), n_mels + 2
    )
    if scale == "htk":
        power = (10.0 ** (m_pts / f32(2595.0)).astype(np.float64)).astype(f32)
        f_pts = f32(700.0) * (power - f32(1.0))
    else:
        f_pts = (f32(200.0 / 3) * m_pts).astype(f32)
        log_t = m_pts >= f32(_MIN_LOG_MEL)
        exponent = (f32(_LOGSTEP) * (m_pts[log_t] - f32(_MIN_LOG_MEL))).astype(np.float64)
        f_pts[log_t] = f32(1000.0) * np.exp(exponent).astype(f32)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = (f32(-1.0) * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    weights = np.maximum(f32(0.0), np.minimum(down, up))
    if norm == "slaney":
        weights *= (f32(2.0) / (f_pts[2 : n_mels + 2] - f_pts[:n_mels]))[None, :]
    return np.ascontiguousarray(weights.T, dtype=f32)


def _hz_to_mel_scalar(hz: float, scale: str) -> float:
    """torchaudio's _hz_to_mel on a Python float (double precision)."""
    import math

    if scale == "htk":
        return 2595.0 * math.log10(1.0 + hz / 700.0)
    if hz >= _MIN_LOG_HZ:
        return _MIN_LOG_MEL + math.log(hz / _MIN_LOG_HZ) / (math.log(6.4) / 27.0)
    return hz / _F_SP


def _torch_linspace(start: float, end: float, steps: int) -> np.ndarray:
    """torch.linspace in float32: float32 ends and step; the first half counted from the start,
    the rest from the end, each point rounded once (the float64 product of a float32 step and an
    index below 2**29 is exact)."""
    start32, end32 = np.float32(start), np.float32(end)
    step = np.float64((end32 - start32) / np.float32(max(steps - 1, 1)))
    idx = np.arange(steps)
    from_start = np.float64(start32) + step * idx
    from_end = np.float64(end32) - step * (steps - 1 - idx)
    return np.where(idx < steps // 2, from_start, from_end).astype(np.float32)
