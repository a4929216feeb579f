"""Turning raw model outputs into the probabilities a submission holds."""

from __future__ import annotations

import numpy as np


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


def weighted_mean(members: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Ensemble members' probabilities combined with normalised weights."""
    total = float(sum(weights))
    out = np.zeros_like(members[0], dtype=np.float32)
    for scores, weight in zip(members, weights, strict=True):
        out += scores * np.float32(weight / total)
    return out


def percentile_ranks(scores: np.ndarray) -> np.ndarray:
    """Each column's values replaced by their rank / n, in (0, 1]: 1.0 is the column's maximum."""
    order = np.argsort(scores, axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, len(scores) + 1)[:, None], axis=0)
    return (ranks / max(len(scores), 1)).astype(np.float32)
