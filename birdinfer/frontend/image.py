"""Image steps for models that take a picture, not a spectrogram: 3 channels, a resize, a
transposed layout. Input and output are batches: (n, n_mels, frames) -> (n, c, h, w).

Resizing is separable, so each method is two small matrices: out = rows @ image @ cols.T.
- "bilinear": torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
  antialias=False): source = (i + 0.5) * in / out - 0.5, clamped at 0, two taps.
- "bilinear_antialias": antialias=True (and torchvision's Resize on tensors): a triangle
  filter stretched by the scale when shrinking; the same as "bilinear" when enlarging.
- "cv2_linear": cv2.resize(INTER_LINEAR) on float32: the same taps as "bilinear", with its
  weights rounded to float32 and, for an exact halving in both axes, INTER_AREA (the mean of
  2 x 2 blocks, which these taps also give).
"""

from __future__ import annotations

import numpy as np

from birdinfer.config import ImageConfig


def resize_matrix(size_in: int, size_out: int, method: str) -> np.ndarray:
    """(size_out, size_in) interpolation weights along one axis."""
    scale = size_in / size_out
    if method == "bilinear_antialias" and scale > 1.0:
        return _antialias_matrix(size_in, size_out, scale)
    src = np.maximum((np.arange(size_out) + 0.5) * scale - 0.5, 0.0)
    if method == "cv2_linear":
        src = src.astype(np.float32).astype(np.float64)
    low = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    frac = src - low
    if method == "cv2_linear":
        frac = frac.astype(np.float32).astype(np.float64)
    matrix = np.zeros((size_out, size_in))
    rows = np.arange(size_out)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


def _antialias_matrix(size_in: int, size_out: int, scale: float) -> np.ndarray:
    """torch's antialiased bilinear (PIL's triangle filter) when shrinking by `scale`."""
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        center = scale * (i + 0.5)
        low = max(int(center - scale + 0.5), 0)
        high = min(int(center + scale + 0.5), size_in)
        taps = np.arange(low, high)
        weights = np.maximum(0.0, 1.0 - np.abs((taps - center + 0.5) / scale))
        total = weights.sum()
        matrix[i, low:high] = weights / total if total else 0.0
    return matrix


def deltas(x: np.ndarray, config: ImageConfig) -> tuple[np.ndarray, np.ndarray]:
    """(delta, delta-delta) of (n, n_mels, frames) along time or mel."""
    axis = -1 if config.delta_axis == "time" else -2
    width = config.delta_width
    if config.delta_style == "librosa":
        import scipy.signal  # here, not at the top: a slow import (amplitude.pcen)

        # librosa.feature.delta: a Savitzky-Golay derivative, "interp" at the edges; order 2 is
        # the second derivative of x itself.
        first = scipy.signal.savgol_filter(x, width, polyorder=1, deriv=1, axis=axis, mode="interp")
        second = scipy.signal.savgol_filter(
            x, width, polyorder=2, deriv=2, axis=axis, mode="interp"
        )
        return first.astype(np.float32), second.astype(np.float32)
    first = compute_deltas(x, width, axis)
    return first, compute_deltas(first, width, axis)


def compute_deltas(x: np.ndarray, width: int, axis: int) -> np.ndarray:
    """torchaudio.functional.compute_deltas: sum_k k (x[t+k] - x[t-k]) / (2 sum_k k^2), with the
    edges replicated."""
    n = (width - 1) // 2
    moved = np.moveaxis(x, axis, -1)
    padded = np.concatenate(
        [np.repeat(moved[..., :1], n, axis=-1), moved, np.repeat(moved[..., -1:], n, axis=-1)],
        axis=-1,
    )
    length = moved.shape[-1]
    out = np.zeros_like(moved)
    for k in range(1, n + 1):
        out += np.float32(k) * (
            padded[..., n + k : n + k + length] - padded[..., n - k : n - k + length]
        )
    out /= np.float32(n * (n + 1) * (2 * n + 1) / 3)
    return np.moveaxis(out, -1, axis)


class ImageSteps:
    """Channels, resize and layout for one ImageConfig; matrices built once."""

    def __init__(self, config: ImageConfig, n_mels: int, frames: int) -> None:
        self.config = config
        self.rows = self.cols = None
        if config.size is not None and tuple(config.size) != (n_mels, frames):
            height, width = config.size
            self.rows = resize_matrix(n_mels, height, config.resize).astype(np.float32)
            self.cols = resize_matrix(frames, width, config.resize).T.astype(np.float32).copy()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        cfg = self.config
        if cfg.channels == 3 and cfg.channel_mode == "delta":
            image = np.stack([x, *deltas(x, cfg)], axis=1)
        else:
            image = x[:, None]
        if self.rows is not None:
            image = np.matmul(np.matmul(self.rows, image), self.cols)
        if cfg.channels == 3 and cfg.channel_mode == "repeat":
            # Resizing commutes with repeating: repeat the one resized map.
            image = np.repeat(image, 3, axis=1)
        if cfg.layout == "time_mel":
            image = image.transpose(0, 1, 3, 2)
        return np.ascontiguousarray(image, dtype=np.float32)
