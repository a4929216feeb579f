"""The competitions' metrics in numpy: macro ROC-AUC (2024-2026) and padded cmAP (2023).

Same definitions as the Kaggle metric code (tests/scoring/test_metrics.py compares them with scikit-learn):
ROC-AUC skips classes without positives; padded cmAP appends 5 all-positive rows to both solution
and submission before taking the macro average precision. `birdinfer.score` validates and scores
submission files with them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from birdinfer.output import ROW_ID


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (scipy.stats.rankdata's 'average')."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    mean_rank = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Binary ROC-AUC by the rank-sum (Mann-Whitney) formula, ties counted as half."""
    truth = np.asarray(truth).astype(bool)
    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs at least one positive and one negative")
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_roc_auc_arrays(truth: np.ndarray, scores: np.ndarray) -> float:
    """Mean ROC-AUC over the classes (columns) that have at least one positive."""
    truth = np.asarray(truth)
    scored = [
        roc_auc(truth[:, c], scores[:, c])
        for c in range(truth.shape[1])
        if 0 < truth[:, c].sum() < truth.shape[0]
    ]
    if not scored:
        raise ValueError("no class has both positive and negative rows")
    return float(np.mean(scored))


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """scikit-learn's average_precision_score for one class: sum over thresholds of dR * P."""
    truth = np.asarray(truth).astype(bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores = np.asarray(scores, dtype=np.float64)[order]
    hits = np.cumsum(truth[order])
    # Only the last row of each run of tied scores is a threshold.
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tp = hits[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall = tp / max(int(truth.sum()), 1)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def padded_cmap_arrays(truth: np.ndarray, scores: np.ndarray, padding: int = 5) -> float:
    pad = np.ones((padding, truth.shape[1]))
    truth = np.vstack([truth, pad])
    scores = np.vstack([scores, pad])
    return float(
        np.mean([average_precision(truth[:, c], scores[:, c]) for c in range(truth.shape[1])])
    )


def score_frames(solution: pd.DataFrame, submission: pd.DataFrame, metric: str) -> float:
    """Score a submission against a solution, rows matched by row_id, columns by name."""
    merged = solution[[ROW_ID]].merge(submission, on=ROW_ID, how="left")
    columns = [c for c in solution.columns if c != ROW_ID]
    absent = sorted(set(columns) - set(submission.columns))
    if absent:
        raise ValueError(f"submission lacks class columns: {absent[:10]}")
    unmatched = merged[columns].isna().any(axis=1)
    if unmatched.any():
        rows = merged.loc[unmatched, ROW_ID].tolist()
        raise ValueError(
            f"submission lacks (or has NaN in) {len(rows)} solution rows, e.g. {rows[:5]}"
        )
    truth = solution[columns].to_numpy(dtype=np.float64)
    scores = merged[columns].to_numpy(dtype=np.float64)
    if metric == "macro_roc_auc":
        return macro_roc_auc_arrays(truth, scores)
    if metric == "padded_cmap":
        return padded_cmap_arrays(truth, scores)
    raise ValueError(f"unknown metric '{metric}'")
