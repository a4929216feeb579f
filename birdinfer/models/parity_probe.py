"""The export's parity probe: what the exported model and torch are both fed, and how a
difference between their outputs is told.

White noise is a poor probe for a front end that normalises by its own statistics: a min-max
map of noise is flat, so torch's and the runtime's float32 rounding are divided by almost
nothing (the 2026 2nd place's models differed by 1.9e5 on it). The probe is therefore a
recording-like window of the model's own length: a few bird-like chirps and tones over soft
coloured noise, or the user's own audio (`--probe-audio FILE`), passed through the card's own
front end for a mel model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from birdinfer.models.card import ModelCard
from birdinfer.models.torch_support import ExportError


def probe_audio(samples: int, sample_rate: int, batch: int, seed: int = 0) -> np.ndarray:
    """(batch, samples) float32: seeded chirps, a warble and a tone over brown-ish noise,
    peaking near -6 dBFS, each window different."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    nyquist = sample_rate / 2
    out = np.empty((batch, samples), np.float32)
    for i in range(batch):
        noise = np.cumsum(rng.standard_normal(samples)) * 0.002
        noise -= np.linspace(noise[0], noise[-1], samples)  # no drift: stays centred
        x = noise + 0.01 * rng.standard_normal(samples)
        for _ in range(3):  # rising or falling chirps of about half a second
            f0, f1 = rng.uniform(0.05, 0.4, 2) * nyquist
            start, length = rng.uniform(0, t[-1] * 0.8), rng.uniform(0.2, 0.8)
            env = np.clip(1 - np.abs((t - start - length / 2) / (length / 2)), 0, None)
            x += (
                0.3
                * env
                * np.sin(
                    2 * np.pi * (f0 * (t - start) + (f1 - f0) / (2 * length) * (t - start) ** 2)
                )
            )
        tone = rng.uniform(0.02, 0.2) * nyquist
        x += 0.05 * np.sin(2 * np.pi * tone * t + 3 * np.sin(2 * np.pi * 7 * t))
        out[i] = (0.5 * x / max(np.abs(x).max(), 1e-9)).astype(np.float32)
    return out


def read_probe_audio(path: Path, card: ModelCard, batch: int) -> np.ndarray:
    """(batch, samples) windows of the user's recording at the card's rate and window length
    (the first windows; repeated if the file holds fewer)."""
    from birdinfer.audio import decode_windows
    from birdinfer.config import AudioConfig
    from birdinfer.errors import AudioError

    audio = AudioConfig(sample_rate=card.sample_rate, window_seconds=card.window_seconds)
    try:
        windows = decode_windows(Path(path), audio)
    except AudioError as exc:
        raise ExportError(f"--probe-audio: {exc}") from exc
    return np.resize(windows, (batch, windows.shape[1])).astype(np.float32)


def probe_features(card: ModelCard, batch: int, audio: Path | None = None) -> np.ndarray:
    """The model input for the probe: raw audio for a waveform model, else the card's front
    end applied to it (noise, as before, when the card's shape is not what that front end
    makes: the load would refuse such a card anyway)."""
    samples = round(card.sample_rate * card.window_seconds)
    if audio is not None:
        windows = read_probe_audio(audio, card, batch)
    else:
        windows = probe_audio(samples, card.sample_rate, batch)
    if card.waveform:
        return windows.reshape(batch, *card.input_shape)
    from birdinfer.frontend import LogMel

    features = LogMel(card.mel, card.image)(windows)
    if tuple(features.shape[1:]) != tuple(card.input_shape):
        noise = np.random.default_rng(0).standard_normal((batch, *card.input_shape))
        return noise.astype(np.float32)
    return np.ascontiguousarray(features, dtype=np.float32)


def worst_difference(
    expected: list[np.ndarray], actual: list[np.ndarray], names: list[str]
) -> tuple[float, str]:
    """The largest absolute difference over every output, and where it is: the output's name,
    the index and both values."""
    worst, where = -1.0, ""
    for name, a, b in zip(names, expected, actual, strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        diff = np.abs(a - b)
        if not diff.size:
            continue
        index = np.unravel_index(
            int(np.nanargmax(diff)) if np.isfinite(diff).any() else 0, diff.shape
        )
        value = float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")
        if np.isnan(diff).any():
            index = np.unravel_index(int(np.flatnonzero(np.isnan(diff))[0]), diff.shape)
            value = float("nan")
        if not value <= worst:  # NaN wins, then the largest
            worst = value
            where = (
                f"output '{name}' at index {tuple(int(i) for i in index)}: "
                f"torch {a[index]:.6g}, exported {b[index]:.6g}"
            )
        if np.isnan(worst):
            break
    return worst, where
