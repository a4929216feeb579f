"""The competitions' metrics against scikit-learn, as Kaggle's published metric code calls it."""

import numpy as np
import pandas as pd
import pytest

from birdinfer.scoring import (
    macro_roc_auc_arrays,
    padded_cmap_arrays,
    score_frames,
    score_submission,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def kaggle_macro_roc_auc(solution: pd.DataFrame, submission: pd.DataFrame) -> float:
    """BirdCLEF 2024-2026: drop row_id, keep classes with a positive, sklearn's macro ROC-AUC."""
    solution = solution.drop(columns="row_id")
    submission = submission.drop(columns="row_id")
    sums = solution.sum(axis=0)
    scored = list(sums[sums > 0].index)
    return sklearn_metrics.roc_auc_score(
        solution[scored].values, submission[scored].values, average="macro"
    )


def kaggle_padded_cmap(solution: pd.DataFrame, submission: pd.DataFrame, padding=5) -> float:
    """BirdCLEF 2023: 5 all-ones rows appended to both, then sklearn's macro average precision."""
    solution = solution.drop(columns="row_id")
    submission = submission.drop(columns="row_id")
    pad = pd.DataFrame([[1] * solution.shape[1]] * padding, columns=solution.columns)
    return sklearn_metrics.average_precision_score(
        pd.concat([solution, pad]).values, pd.concat([submission, pad]).values, average="macro"
    )


def random_case(rng: np.random.Generator, ties: bool):
    rows, classes = int(rng.integers(4, 80)), int(rng.integers(1, 12))
    truth = (rng.random((rows, classes)) < rng.uniform(0.05, 0.5)).astype(int)
    truth[0, 0], truth[1, 0] = 1, 0  # at least one class is scorable
    scores = rng.random((rows, classes))
    if ties:  # coarse scores make ties, which both metrics must break like scikit-learn
        scores = np.round(scores * 4) / 4
    return truth, scores


def frames(truth, scores, rng):
    ids = [f"soundscape_{i // 12}_{5 * (i % 12 + 1)}" for i in range(len(truth))]
    codes = [str(c) for c in rng.choice(2_000_000, truth.shape[1], replace=False)]
    solution = pd.DataFrame(truth, columns=codes)
    solution.insert(0, "row_id", ids)
    submission = pd.DataFrame(scores, columns=codes)
    submission.insert(0, "row_id", ids)
    return solution, submission


@pytest.mark.slow  # over 5 s on the slower hosts
@pytest.mark.parametrize("ties", [False, True])
def test_macro_roc_auc_matches_scikit_learn_on_random_data(ties):
    rng = np.random.default_rng(5 + ties)
    for _ in range(200):
        truth, scores = random_case(rng, ties)
        if (truth.sum(axis=0) == len(truth)).any():
            continue  # a class positive in every row: scikit-learn gives NaN (tested below)
        solution, submission = frames(truth, scores, rng)
        expected = kaggle_macro_roc_auc(solution, submission)
        assert macro_roc_auc_arrays(truth, scores) == pytest.approx(expected, abs=1e-12)
        shuffled = submission.sample(frac=1.0, random_state=0)  # rows matched by row_id
        assert score_frames(solution, shuffled, "macro_roc_auc") == pytest.approx(expected)
        assert score_submission(solution, shuffled, "macro_roc_auc").value == pytest.approx(
            expected, abs=1e-12
        )


@pytest.mark.parametrize("ties", [False, True])
def test_padded_cmap_matches_scikit_learn_on_random_data(ties):
    rng = np.random.default_rng(50 + ties)
    for _ in range(200):
        truth, scores = random_case(rng, ties)
        solution, submission = frames(truth, scores, rng)
        expected = kaggle_padded_cmap(solution, submission)
        assert padded_cmap_arrays(truth, scores) == pytest.approx(expected, abs=1e-12)
        shuffled = submission.sample(frac=1.0, random_state=1)
        assert score_submission(solution, shuffled, "padded_cmap").value == pytest.approx(
            expected, abs=1e-12
        )


def test_classes_without_positives_are_skipped_not_scored_as_zero():
    truth = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores = np.array([[0.2, 0.9], [0.1, 0.8], [0.9, 0.1], [0.3, 0.2]])
    # class 0 alone: positives 0.2 and 0.9 against negatives 0.1 and 0.3 -> 3 of 4 pairs
    assert macro_roc_auc_arrays(truth, scores) == pytest.approx(0.75)
    solution, submission = frames(truth, scores, np.random.default_rng(0))
    result = score_submission(solution, submission, "macro_roc_auc")
    assert (result.scored, result.skipped) == (1, (solution.columns[2],))


def test_a_class_positive_in_every_row_is_reported_as_undefined():
    truth = np.array([[1, 1], [0, 1], [1, 1], [0, 1]])
    scores = np.array([[0.8, 0.3], [0.1, 0.6], [0.7, 0.2], [0.4, 0.9]])
    solution, submission = frames(truth, scores, np.random.default_rng(1))
    with pytest.warns(Warning):  # scikit-learn: only one class present -> NaN
        assert np.isnan(kaggle_macro_roc_auc(solution, submission))
    result = score_submission(solution, submission, "macro_roc_auc")
    assert result.undefined == (solution.columns[2],)
    assert result.value == pytest.approx(1.0)  # the defined class alone


def test_padded_cmap_is_one_for_a_perfect_ranking_and_lower_for_a_reversed_one():
    truth = np.array([[1, 0], [0, 1], [0, 0], [1, 1]])
    good = truth + 0.1 * np.arange(4)[:, None] / 10
    assert padded_cmap_arrays(truth, good) == pytest.approx(1.0)
    assert padded_cmap_arrays(truth, 1.0 - good) < 0.95
