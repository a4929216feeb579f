"""Turning raw model outputs into the probabilities a submission holds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from birdinfer.config import PostprocessConfig


def activate(scores: np.ndarray, activation: str) -> np.ndarray:
    """Sigmoid (multi-label, the BirdCLEF default), softmax over classes, or none."""
    scores = np.asarray(scores, dtype=np.float32)
    if activation == "sigmoid":
        # Computed from exp(-|x|) so that large logits of either sign do not overflow.
        e = np.exp(-np.abs(scores))
        return np.where(scores >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)
    if activation == "softmax":
        shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)
    if activation == "none":
        return scores
    raise ValueError(f"unknown activation '{activation}'")


def row_frames(n_frames: int, input_seconds: float, context_seconds: float) -> slice:
    """The frames of a frame-wise output that belong to the row: those whose centres fall in
    the input's middle, without `context_seconds` on each side (all of them without context).
    Frames are taken to tile the input evenly, as a CNN's time axis does."""
    if context_seconds <= 0:
        return slice(0, n_frames)
    per_frame = input_seconds / n_frames
    # Frame i is centred at (i + 0.5) * per_frame; a little slack keeps exact edges in.
    first = math.ceil(context_seconds / per_frame - 0.5 - 1e-9)
    last = math.floor((input_seconds - context_seconds) / per_frame - 0.5 + 1e-9)
    if last < first:  # no frame is centred within the row (long frames): the middle one
        first = last = n_frames // 2
    return slice(max(first, 0), min(last, n_frames - 1) + 1)


def pool_frames(scores: np.ndarray, how: str, frames: slice) -> np.ndarray:
    """(n, frames, classes) -> (n, classes): the max or mean over `frames`."""
    part = scores[:, frames]
    if how == "max":
        return part.max(axis=1)
    if how == "mean":
        return part.mean(axis=1, dtype=np.float32)
    raise ValueError(f"unknown frame pooling '{how}'")


def weighted_mean(members: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Ensemble members' probabilities combined with normalised weights."""
    total = float(sum(weights))
    out = np.zeros_like(members[0], dtype=np.float32)
    for scores, weight in zip(members, weights, strict=True):
        out += scores * np.float32(weight / total)
    return out


def covered_mean(
    members: list[np.ndarray], weights: list[float], covers: list[np.ndarray]
) -> np.ndarray:
    """Like `weighted_mean`, per column over the members that cover it (`covers`: one bool
    (columns,) mask per member): a member mapped onto some columns only (a foundation model)
    leaves the others to the rest. A column no member covers stays 0."""
    out = np.zeros_like(members[0], dtype=np.float32)
    total = np.zeros(members[0].shape[-1], np.float64)
    for weight, cover in zip(weights, covers, strict=True):
        total += weight * cover
    for scores, weight, cover in zip(members, weights, covers, strict=True):
        share = np.where(cover, weight / np.where(total > 0, total, 1.0), 0.0)
        out += scores * share.astype(np.float32)
    return out


def percentile_ranks(scores: np.ndarray, ties: str = "first", clip: float = 0.0) -> np.ndarray:
    """Each column's values replaced by their rank / n, in (0, 1]: 1.0 is the column's maximum.
    Tied values ranked in order of appearance ("first"), or all given their mean rank
    ("average", as pandas' rank(pct=True)); values clipped to [clip, 1 - clip] first."""
    if clip > 0:
        scores = np.clip(scores, np.float32(clip), np.float32(1 - clip))
    order = np.argsort(scores, axis=0, kind="stable")
    ranks = np.empty(order.shape, np.float64)
    np.put_along_axis(ranks, order, np.arange(1, len(scores) + 1, dtype=np.float64)[:, None], 0)
    if ties == "average" and len(scores):
        ranks = _average_ties(np.take_along_axis(scores, order, axis=0), order, ranks)
    return (ranks / max(len(scores), 1)).astype(np.float32)


def _average_ties(ordered: np.ndarray, order: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """`ranks` with each run of equal values (per column, in sorted order) at its mean rank."""
    for column in range(ordered.shape[1]):
        values = ordered[:, column]
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        ends = np.r_[starts[1:], len(values)]
        if len(starts) == len(values):
            continue  # no ties in this column
        mean = (starts + 1 + ends) / 2.0  # ranks starts+1 .. ends
        ranks[order[:, column], column] = np.repeat(mean, ends - starts)
    return ranks


def file_scale(scores: np.ndarray, top_k: int) -> np.ndarray:
    """Each class's scores multiplied by the mean of its top `top_k` over the file (the 2026
    2nd place's CONF_SCALE: a class the model is never sure of in a file is pulled down)."""
    if top_k <= 0 or len(scores) == 0:
        return scores
    scores = np.asarray(scores, dtype=np.float32)
    return scores * np.sort(scores, axis=0)[-top_k:].mean(axis=0)[None, :]


def average_views(scores: np.ndarray, views: int) -> np.ndarray:
    """(windows x views, classes) -> (windows, classes): the mean over each window's TTA views."""
    if views == 1:
        return scores
    return scores.reshape(-1, views, scores.shape[-1]).mean(axis=1, dtype=np.float32)


def smooth(scores: np.ndarray, kernel: Sequence[float]) -> np.ndarray:
    """Weighted mean over neighbouring windows of one file, per class.

    The kernel is centred on each window; at the file's edges it is renormalised over the
    windows that exist, so a constant score stays constant.
    """
    if len(kernel) <= 1 or len(scores) == 0:
        return scores
    weights = np.asarray(kernel, dtype=np.float64)
    half = len(weights) // 2
    n = len(scores)
    padded = np.pad(scores.astype(np.float64), ((half, half), (0, 0)))
    present = np.pad(np.ones(n), (half, half))
    total = np.zeros_like(scores, dtype=np.float64)
    norm = np.zeros(n)
    for k, weight in enumerate(weights):
        total += weight * padded[k : k + n]
        norm += weight * present[k : k + n]
    return (total / norm[:, None]).astype(np.float32)


def file_boost(scores: np.ndarray, share: float, statistic: str = "max") -> np.ndarray:
    """Mix each class's file-level max (or mean) into every window: (1 - share) s + share stat."""
    if share == 0 or len(scores) == 0:
        return scores
    stat = scores.max(axis=0) if statistic == "max" else scores.mean(axis=0)
    return ((1.0 - share) * scores + share * stat[None, :]).astype(np.float32)


def postprocess_file(scores: np.ndarray, config: PostprocessConfig) -> np.ndarray:
    """The configured per-file steps, in order: smoothing, then the file-level boost."""
    scores = smooth(scores, config.smoothing_kernel)
    return file_boost(scores, config.file_boost, config.file_boost_stat)
