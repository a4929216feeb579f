"""Windows of audio -> power (or magnitude) spectrum frames, as torch.stft and librosa.stft.

Framing follows both libraries: with `center`, n_fft // 2 samples of padding on each side
(zeros as librosa >= 0.10, or a reflection as torch's default), frames every hop_length samples,
a periodic Hann window of win_length samples centred in the n_fft frame. torchaudio's
`normalized` divides the spectrum by the window's L2 norm ("window") or by sqrt(n_fft)
("frame_length"); here the window is divided instead, which is the same linear operation.
"""

from __future__ import annotations

import numpy as np

from birdinfer.config import MelConfig

try:  # scipy's pocketfft vectorises float32 transforms (~3x numpy's) and releases the GIL
    from scipy.fft import rfft
except ImportError:  # pragma: no cover - scipy is a dependency; numpy gives the same numbers
    from numpy.fft import rfft


def periodic_hann(n: int) -> np.ndarray:
    """scipy.signal.get_window("hann", n) and torch.hann_window(n): the periodic Hann window."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def analysis_window(config: MelConfig) -> np.ndarray:
    """The n_fft-long window each frame is multiplied by (normalisation folded in)."""
    win_length = config.win_length or config.n_fft
    window = periodic_hann(win_length)
    if win_length < config.n_fft:
        left = (config.n_fft - win_length) // 2
        window = np.pad(window, (left, config.n_fft - win_length - left))
    if config.normalized in (True, "window"):
        window = (window / np.sqrt(np.sum(window.astype(np.float64) ** 2))).astype(np.float32)
    elif config.normalized == "frame_length":
        window = (window / np.sqrt(config.n_fft)).astype(np.float32)
    return window


class Framer:
    """Pads and frames a few windows at a time in a reusable buffer, then transforms them."""

    def __init__(self, config: MelConfig, windows: int, samples: int, n_bins: int) -> None:
        self.config = config
        self.pad = config.n_fft // 2 if config.center else 0
        self.samples = samples
        self.n_bins = n_bins
        self.frames = config.frames_for(samples)
        self.window = analysis_window(config)
        # Zeros stay in the padding (constant mode); reflect mode rewrites it per call.
        self.padded = np.zeros((windows, samples + 2 * self.pad), np.float32)
        step = self.padded.strides[1]
        self.framed = np.lib.stride_tricks.as_strided(
            self.padded,
            shape=(windows, self.frames, config.n_fft),
            strides=(self.padded.strides[0], step * config.hop_length, step),
            writeable=False,
        )
        self.product = np.empty((windows, self.frames, config.n_fft), np.float32)
        self._square = np.empty((windows, self.frames, n_bins), np.float32)

    def power(self, windows: np.ndarray, out: np.ndarray) -> None:
        """Write |STFT|**power of `windows` (n, samples) into `out` (n * frames, n_bins)."""
        pad, n = self.pad, len(windows)
        self.padded[:n, pad : pad + self.samples] = windows
        if pad and self.config.pad_mode == "reflect":
            self.padded[:n, :pad] = windows[:, pad:0:-1]
            self.padded[:n, pad + self.samples :] = windows[:, -2 : -pad - 2 : -1]
        np.multiply(self.framed[:n], self.window, out=self.product[:n])
        spectrum = rfft(self.product[:n], axis=-1)[..., : self.n_bins]
        target = out.reshape(n, self.frames, self.n_bins)
        if self.config.power == 1.0:
            np.abs(spectrum, out=target)
        else:  # re**2 + im**2, in the order the log-mel has always summed them
            square = self._square[:n]
            np.square(spectrum.real, out=square)
            np.square(spectrum.imag, out=target)
            np.add(square, target, out=target)
