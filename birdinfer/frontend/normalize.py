"""Named normalisation steps, applied in order to each window on its own.

Statistics (mean, std, min, max) are taken over everything a window holds: its (n_mels, frames)
map before the image steps, its (channels, height, width) image after them. The formulas are
the ones the cited solutions write (docs/frontends.md):

    scale80       (x + 80) / 80                  scale      (x + add) / divide
    standardize   (x - mean) / (std + eps)       eps 1e-6; ddof 0 (numpy) or 1 (torch .std())
    minmax        (x - min) / (max - min + eps)  eps 1e-6; flat_to_zero: / (max - min), and 0 for a
                                                 window whose range is <= eps (torch modules that
                                                 guard instead of adding eps)
    clamp         min(max(x, low), high)         [0, 1] by default
    imagenet      (x - mean[c]) / std[c]         per channel; ImageNet's statistics by default
    square        x * x
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from birdinfer.config import NormStep

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_EPS = 1e-6


def apply_steps(x: np.ndarray, steps: Sequence[NormStep], scope: str = "window") -> np.ndarray:
    """`x` (n, ...) with every step applied per window (statistics over all axes but the
    first), or over all n windows at once (scope "file": mel.normalization_scope)."""
    axes = tuple(range(1 if scope == "window" else 0, x.ndim))
    for step in steps:
        x = STEPS[step.step](x, step, axes)
    return x


def _scale80(x: np.ndarray, step: NormStep, axes: tuple[int, ...]) -> np.ndarray:
    return (x + 80.0) / 80.0


def _scale(x: np.ndarray, step: NormStep, axes: tuple[int, ...]) -> np.ndarray:
    return ((x + np.float32(step.add)) / np.float32(step.divide)).astype(np.float32, copy=False)


def _standardize(x: np.ndarray, step: NormStep, axes: tuple[int, ...]) -> np.ndarray:
    eps = DEFAULT_EPS if step.eps is None else step.eps
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True, ddof=step.ddof)
    return (x - mean) / (std + eps)


def _minmax(x: np.ndarray, step: NormStep, axes: tuple[int, ...]) -> np.ndarray:
    eps = DEFAULT_EPS if step.eps is None else step.eps
    low = x.min(axis=axes, keepdims=True)
    high = x.max(axis=axes, keepdims=True)
    if not step.flat_to_zero:
        return (x - low) / (high - low + eps)
    span = high - low
    flat = span <= eps
    return np.where(flat, np.float32(0), (x - low) / np.where(flat, np.float32(1), span))


def _clamp(x: np.ndarray, step: NormStep, axes: tuple[int, ...]) -> np.ndarray:
    low = 0.0 if step.low is None else step.low
    high = 1.0 if step.high is None else step.high
    return np.clip(x, np.float32(low), np.float32(high))


def _imagenet(x: np.ndarray, step: NormStep, axes: tuple[int, ...]) -> np.ndarray:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = np.asarray(step.mean or IMAGENET_MEAN, np.float32).reshape(shape)
    std = np.asarray(step.std or IMAGENET_STD, np.float32).reshape(shape)
    return (x - mean) / std


def _square(x: np.ndarray, step: NormStep, axes: tuple[int, ...]) -> np.ndarray:
    return x * x


STEPS = {
    "scale80": _scale80,
    "scale": _scale,
    "standardize": _standardize,
    "minmax": _minmax,
    "clamp": _clamp,
    "imagenet": _imagenet,
    "square": _square,
}
