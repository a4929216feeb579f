"""Windows of audio -> power (or magnitude) spectrum frames, as torch.stft and librosa.stft.

Framing follows both libraries: with `center`, n_fft // 2 samples of padding on each side
(zeros as librosa >= 0.10, or a reflection as torch's default), frames every hop_length samples,
a periodic Hann window of win_length samples centred in the n_fft frame, with the float32 values
librosa's (scipy's) or torch's arithmetic gives it (`window`). torchaudio's `normalized` divides
the spectrum by the window's L2 norm ("window") or by sqrt(n_fft) ("frame_length"); here the
window is divided instead, which is the same linear operation.

The FFT runs in float32, as torch's does. librosa windows and transforms in float64
(librosa.stft), and a float32 FFT rounds every bin by a share of its frame's magnitude: a band
far below its frame's power moves visibly in the dB. `Framer.exact_power` computes
chosen frames librosa's way, for the front end to redo the few frames where that shows
(logmel.py).
"""

from __future__ import annotations

import numpy as np

from birdinfer.config import MelConfig


def _real_fft():
    """`fft(frames, out) -> spectrum` over the last axis: float32 in, complex64 out (or float64
    in, complex128 out).

    scipy's pocketfft vectorises float32 transforms (faster than numpy's) and releases the GIL
    inside. Its public `scipy.fft.rfft` holds the GIL for its uarray dispatch and allocates its
    output; the binding underneath skips both and writes into a reusable buffer (the figures:
    docs/throughput.md, "Figures behind the code's choices"). That binding is private, so it is
    used only when it gives the public function's exact numbers on a probe; otherwise the public
    function is used.
    """
    try:
        from scipy.fft import rfft
    except ImportError:  # pragma: no cover - scipy is a dependency; numpy gives the same numbers
        from numpy.fft import rfft

        return lambda frames, out: rfft(frames, axis=-1)
    try:
        from scipy.fft._pocketfft.pypocketfft import r2c

        same = True
        for real, complex_ in ((np.float32, np.complex64), (np.float64, np.complex128)):
            probe = np.random.default_rng(0).standard_normal((3, 64)).astype(real)
            out = np.empty((3, 33), complex_)
            same &= r2c(probe, (1,), True, 0, out, 1) is out and np.array_equal(out, rfft(probe))
        if same:
            return lambda frames, out: r2c(frames, (1,), True, 0, out, 1)
    except Exception:  # noqa: BLE001 - any change in the private binding: use the public path
        pass
    return lambda frames, out: rfft(frames, axis=-1)


real_fft = _real_fft()


def periodic_hann(n: int) -> np.ndarray:
    """scipy.signal.get_window("hann", n), librosa's window: the periodic Hann window, computed
    in float64 and rounded once to float32."""
    return _periodic_hann64(n).astype(np.float32)


def _periodic_hann64(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def torch_hann(n: int) -> np.ndarray:
    """torch.hann_window(n) (periodic), step for step in float32 as torch computes it.

    ATen's hann_window is hamming_window(alpha=beta=0.5) on a float32 tensor:
    arange(n + 1) * float32(2 pi / n), cos, * -0.5, + 0.5, last point dropped. The float32 angle
    moves 2/3 of the samples of a 2048-point window off the correctly rounded value, by up to
    2e-7. In exact arithmetic that is nothing (7e-5 dB, even in a band 75 dB down), but the
    float32 FFT's rounding follows the bits of its input: fed torch's bits, pocketfft's rounding
    tracks torch's (MKL's) in bands far below the frame's power, where it had put the two 2e-3 dB
    apart (docs/frontends.md). The one step not reproduced bit for bit is torch's float32 cos
    (SLEEF, within 1 ulp; here correctly rounded): ~3% of the samples differ by an ulp of it.
    """
    if n == 1:
        return np.ones(1, np.float32)  # torch.hann_window(1) is [1.]
    f32 = np.float32
    angle = np.arange(n, dtype=f32) * f32(2 * np.pi / n)
    cosine = np.cos(angle.astype(np.float64)).astype(f32)
    return cosine * f32(-0.5) + f32(0.5)


def analysis_window(config: MelConfig, exact: bool = False) -> np.ndarray:
    """The n_fft-long window each frame is multiplied by (normalisation folded in): float32, or
    with `exact` librosa's float64 window."""
    win_length = config.win_length or config.n_fft
    if exact:
        window = _periodic_hann64(win_length)
    elif config.window == "torchaudio":
        window = torch_hann(win_length)
    else:
        window = periodic_hann(win_length)
    if win_length < config.n_fft:
        left = (config.n_fft - win_length) // 2
        window = np.pad(window, (left, config.n_fft - win_length - left))
    if config.normalized in (True, "window"):
        window = window / np.sqrt(np.sum(window.astype(np.float64) ** 2))
    elif config.normalized == "frame_length":
        window = window / np.sqrt(config.n_fft)
    return window.astype(np.float64 if exact else np.float32)


# Frames windowed and transformed per call: 64 x 2048 float32 frames, their spectrum and its
# power (~1.3 MB) stay in a core's L2, where 2 whole windows at once (~13 MB) do not
# (docs/throughput.md, "Figures behind ..."). The FFT's numbers do not depend on the chunking.
CHUNK_FRAMES = 64


class Framer:
    """Pads and frames a few windows at a time in a reusable buffer, then transforms them."""

    def __init__(self, config: MelConfig, windows: int, samples: int, n_bins: int) -> None:
        self.config = config
        self.pad = config.n_fft // 2 if config.center else 0
        self.samples = samples
        self.n_bins = n_bins
        self.frames = config.frames_for(samples)
        self.window = analysis_window(config)
        self._exact: tuple | None = None  # librosa's float64 buffers, made on first use
        # Zeros stay in the padding (constant mode); reflect mode rewrites it per call.
        self.padded = np.zeros((windows, samples + 2 * self.pad), np.float32)
        step = self.padded.strides[1]
        self.framed = np.lib.stride_tricks.as_strided(
            self.padded,
            shape=(windows, self.frames, config.n_fft),
            strides=(self.padded.strides[0], step * config.hop_length, step),
            writeable=False,
        )
        self.chunk = min(CHUNK_FRAMES, self.frames)
        self.product = np.empty((self.chunk, config.n_fft), np.float32)
        self._square = np.empty((self.chunk, n_bins), np.float32)
        self._spectrum = np.empty((self.chunk, config.n_fft // 2 + 1), np.complex64)

    def power(self, windows: np.ndarray, out: np.ndarray) -> None:
        """Write |STFT|**power of `windows` (n, samples) into `out` (n * frames, n_bins)."""
        pad, n = self.pad, len(windows)
        self.padded[:n, pad : pad + self.samples] = windows
        if pad and self.config.pad_mode == "reflect":
            self.padded[:n, :pad] = windows[:, pad:0:-1]
            self.padded[:n, pad + self.samples :] = windows[:, -2 : -pad - 2 : -1]
        target = out.reshape(n, self.frames, self.n_bins)
        for w in range(n):
            for start in range(0, self.frames, self.chunk):
                stop = min(start + self.chunk, self.frames)
                self._transform(self.framed[w, start:stop], target[w, start:stop])

    def exact_power(self, rows: np.ndarray) -> np.ndarray:
        """The power of frames `rows` (indices into the last call's n * frames) as librosa
        computes it: float64 window, product and FFT, the spectrum stored as complex64.
        (len(rows), n_bins) float32."""
        if self._exact is None:
            self._exact = (
                analysis_window(self.config, exact=True),
                np.empty((self.chunk, self.config.n_fft), np.float64),
                np.empty((self.chunk, self.config.n_fft // 2 + 1), np.complex128),
            )
        window, product, spectrum = self._exact
        target = np.empty((len(rows), self.n_bins), np.float32)
        for start in range(0, len(rows), self.chunk):
            part = rows[start : start + self.chunk]
            k = len(part)
            np.copyto(product[:k], self.framed[part // self.frames, part % self.frames])
            np.multiply(product[:k], window, out=product[:k])
            real_fft(product[:k], spectrum[:k])
            rounded = self._spectrum[:k, : self.n_bins]
            np.copyto(rounded, spectrum[:k, : self.n_bins], casting="same_kind")
            self._to_power(rounded, target[start : start + k], self._square[:k])
        return target

    def _transform(self, frames: np.ndarray, target: np.ndarray) -> None:
        product = self.product[: len(frames)]
        np.multiply(frames, self.window, out=product)
        spectrum = real_fft(product, self._spectrum[: len(frames)])[:, : self.n_bins]
        self._to_power(spectrum, target, self._square[: len(frames)])

    def _to_power(self, spectrum: np.ndarray, target: np.ndarray, square: np.ndarray) -> None:
        if self.config.power == 1.0:
            np.abs(spectrum, out=target)
        else:  # re**2 + im**2, in the order the log-mel has always summed them
            np.square(spectrum.real, out=square)
            np.square(spectrum.imag, out=target)
            np.add(square, target, out=target)
