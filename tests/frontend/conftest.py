"""Audio for the front-end parity tests: real clips, seeded synthetic audio, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from birdinfer.demo import make_soundscape

WINDOW = 160000  # 5 s at 32 kHz


@pytest.fixture(scope="session")
def real_windows(shared_audio) -> np.ndarray:
    """Three 5 s windows of a real soundscape, a quiet copy of one, and the last partial window
    of a 10.1 s clip (zero-padded, as the window reader pads it)."""
    audio, rate = sf.read(str(shared_audio / "1min.wav"), dtype="float32")
    assert rate == 32000
    windows = audio[: 3 * WINDOW].reshape(3, WINDOW)
    birds, rate = sf.read(str(shared_audio / "birds_10s.wav"), dtype="float32")
    tail = birds[2 * WINDOW :]
    assert 0 < len(tail) < WINDOW
    partial = np.zeros(WINDOW, np.float32)
    partial[: len(tail)] = tail
    return np.concatenate([windows, windows[:1] * 1e-3, partial[None]]).astype(np.float32)


@pytest.fixture(scope="session")
def synthetic_windows() -> np.ndarray:
    """Seeded synthetic soundscape windows, then digital silence."""
    audio = make_soundscape(seed=7, seconds=10.0).audio.reshape(2, WINDOW)
    return np.concatenate([audio, np.zeros((1, WINDOW), np.float32)]).astype(np.float32)
