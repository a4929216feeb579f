"""Mel power -> the scale a model reads: dB, natural log with an offset, or PCEN.

dB follows librosa.power_to_db / amplitude_to_db and torchaudio's AmplitudeToDB:
    10 * log10(max(x, amin)) - 10 * log10(max(ref, amin))      (20 * for magnitudes)
then, with top_db, a floor at (maximum - top_db). The maximum is taken over each window on its
own. librosa does the same per call. torchaudio's AmplitudeToDB takes it over its whole input
when that input is 3-D: a (batch, n_mels, frames) batch shares one floor, set by its loudest
window. A model trained that way saw floors that depended on its batch-mates; one window at a
time is the only reproducible choice at inference, and what docs/frontends.md advises. A
notebook that batches a file's windows (the 2026 2nd place's) gets `mel.top_db_scope: file`.
"""

from __future__ import annotations

import numpy as np

from birdinfer.config import MelConfig, PcenConfig


def default_amin(config: MelConfig) -> float:
    """librosa's floors: 1e-10 for power, 1e-5 for magnitude (torchaudio uses 1e-10 for both)."""
    if config.amin is not None:
        return config.amin
    return 1e-10 if config.power == 2.0 else 1e-5


def power_to_db(mel: np.ndarray, config: MelConfig) -> np.ndarray:
    """(n, n_mels, frames) -> dB per window (ref "max" and top_db taken over each window)."""
    factor = 10.0 if config.power == 2.0 else 20.0
    amin = default_amin(config)
    db = factor * np.log10(np.maximum(mel, amin))
    if config.ref == "max":
        ref = np.maximum(mel.max(axis=(1, 2), keepdims=True), amin)
    else:
        ref = np.float32(max(float(config.ref), amin))
    db -= factor * np.log10(ref)
    if config.top_db is not None:
        # mel.top_db_scope "file": one floor for every window given (a file's, by the caller).
        axes = (1, 2) if config.top_db_scope == "window" else None
        db = np.maximum(db, db.max(axis=axes, keepdims=True) - config.top_db)
    return db.astype(np.float32, copy=False)


def log_offset(mel: np.ndarray, config: MelConfig) -> np.ndarray:
    """log(x + offset), the natural log some solutions use instead of dB."""
    return np.log(mel + np.float32(config.log_offset)).astype(np.float32, copy=False)


def pcen(mel: np.ndarray, config: MelConfig) -> np.ndarray:
    """librosa.pcen over each window's frames (its defaults: gain 0.98, bias 2, power 0.5,
    time_constant 0.4 s, eps 1e-6), with librosa's initial filter state."""
    # Imported here: scipy.signal and scipy.ndimage are slow to import (they pull in
    # scipy.stats), paid by every process that imports the front end (the CLI, each worker
    # process), where only PCEN and librosa-style deltas use them.
    import scipy.ndimage
    import scipy.signal

    p: PcenConfig = config.pcen
    s = mel * np.float32(p.input_scale) if p.input_scale != 1.0 else mel
    b = p.b
    if b is None:
        t_frames = p.time_constant * config.sample_rate / float(config.hop_length)
        b = (np.sqrt(1 + 4 * t_frames**2) - 1) / (2 * t_frames**2)
    ref = s if p.max_size == 1 else scipy.ndimage.maximum_filter1d(s, p.max_size, axis=-2)
    zi = np.empty((1,) * ref.ndim)
    zi[:] = scipy.signal.lfilter_zi([b], [1, b - 1])[:]
    smooth, _ = scipy.signal.lfilter([b], [1, b - 1], ref, zi=zi, axis=-1)
    smooth = np.exp(-p.gain * (np.log(p.eps) + np.log1p(smooth / p.eps)))
    if p.power == 0:
        out = np.log1p(s * smooth)
    elif p.bias == 0:
        out = np.exp(p.power * (np.log(s) + np.log(smooth)))
    else:
        out = (p.bias**p.power) * np.expm1(p.power * np.log1p(s * smooth / p.bias))
    return out.astype(np.float32)


def scale_amplitude(mel: np.ndarray, config: MelConfig) -> np.ndarray:
    if config.amplitude == "log":
        return log_offset(mel, config)
    if config.amplitude == "pcen":
        return pcen(mel, config)
    return power_to_db(mel, config)
