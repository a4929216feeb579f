"""Post-processing on hand-computed examples, and shifted TTA and per-file steps end to end."""

import numpy as np
import pytest
import soundfile as sf

from birdinfer.config import PostprocessConfig, from_dict
from birdinfer.errors import ConfigError
from birdinfer.runner import run
from birdinfer.scorer import Ensemble
from birdinfer.scorer.postprocess import (
    activate,
    average_views,
    file_boost,
    percentile_ranks,
    postprocess_file,
    smooth,
)
from tests.helpers import make_config


def test_sigmoid_and_softmax_by_hand():
    logits = np.array([[0.0, np.log(3.0), -1000.0, 1000.0]], np.float32)
    np.testing.assert_allclose(activate(logits, "sigmoid"), [[0.5, 0.75, 0.0, 1.0]], atol=1e-6)
    soft = activate(np.array([[0.0, np.log(3.0)]], np.float32), "softmax")
    np.testing.assert_allclose(soft, [[0.25, 0.75]], atol=1e-6)
    np.testing.assert_array_equal(activate(logits, "none"), logits)


def test_smoothing_by_hand_with_renormalised_edges():
    scores = np.array([[1.0], [0.0], [0.0], [0.0], [1.0]], np.float32)
    out = smooth(scores, [0.25, 0.5, 0.25])
    np.testing.assert_allclose(out[:, 0], [0.5 / 0.75, 0.25, 0.0, 0.25, 0.5 / 0.75], atol=1e-6)
    five = smooth(
        np.array([[0.0], [0.0], [1.0], [0.0], [0.0]], np.float32), [0.1, 0.2, 0.4, 0.2, 0.1]
    )
    np.testing.assert_allclose(
        five[:, 0], [0.1 / 0.7, 0.2 / 0.9, 0.4, 0.2 / 0.9, 0.1 / 0.7], atol=1e-6
    )
    constant = np.full((4, 3), 0.3, np.float32)
    np.testing.assert_allclose(smooth(constant, [0.1, 0.2, 0.4, 0.2, 0.1]), constant, atol=1e-7)


def test_file_boost_by_hand():
    scores = np.array([[0.2, 0.9], [0.6, 0.1]], np.float32)
    np.testing.assert_allclose(file_boost(scores, 0.5, "max"), [[0.4, 0.9], [0.6, 0.5]], atol=1e-6)
    np.testing.assert_allclose(file_boost(scores, 0.5, "mean"), [[0.3, 0.7], [0.5, 0.3]], atol=1e-6)
    np.testing.assert_array_equal(file_boost(scores, 0.0), scores)


def test_postprocess_applies_smoothing_then_boost():
    scores = np.array([[1.0], [0.0], [0.0]], np.float32)
    config = PostprocessConfig(smoothing_kernel=(0.25, 0.5, 0.25), file_boost=0.5)
    smoothed = np.array([0.5 / 0.75, 0.25, 0.0])
    expected = 0.5 * smoothed + 0.5 * smoothed.max()
    np.testing.assert_allclose(postprocess_file(scores, config)[:, 0], expected, atol=1e-6)


@pytest.mark.parametrize("kernel", [[0.5, 0.5], [-0.1, 1.0, -0.1], [0.0, 0.0, 0.0]])
def test_bad_kernels_name_the_key(kernel):
    with pytest.raises(ConfigError, match="postprocess.smoothing_kernel"):
        from_dict({"postprocess": {"smoothing_kernel": kernel}})


def test_average_views():
    scores = np.arange(12, dtype=np.float32).reshape(6, 2)  # 2 windows x 3 views
    np.testing.assert_allclose(average_views(scores, 3), [[2.0, 3.0], [8.0, 9.0]])


def test_percentile_ranks_hand_computed():
    scores = np.array([[0.1, 5.0], [0.9, 1.0], [0.5, 3.0], [0.7, 2.0]])
    np.testing.assert_allclose(
        percentile_ranks(scores), [[0.25, 1.0], [1.0, 0.25], [0.5, 0.75], [0.75, 0.5]]
    )


def test_shifted_tta_scores_are_the_mean_of_shifted_windows(soundscape_dir, tiny_onnx, tmp_path):
    path = sorted(soundscape_dir.iterdir())[1]  # 12 s WAV: 3 rows
    config = make_config(
        soundscape_dir, tiny_onnx, tmp_path / "s.csv", audio={"tta_shifts": [-2.5, 0.0, 2.5]}
    )
    ensemble = Ensemble(config)
    tta = run(config, ensemble).submission.set_index("row_id")
    audio, rate = sf.read(str(path), dtype="float32")
    padded = np.concatenate([np.zeros(80000, np.float32), audio, np.zeros(240000, np.float32)])
    for row in range(3):
        cuts = np.stack(
            [
                padded[80000 + row * 160000 + s : 80000 + row * 160000 + s + 160000]
                for s in (-80000, 0, 80000)
            ]
        )
        expected = ensemble.predict_windows(cuts).mean(axis=0)
        np.testing.assert_allclose(tta.loc[f"{path.stem}_{5 * (row + 1)}"], expected, atol=1e-5)


def test_configured_postprocessing_is_applied_per_file(soundscape_dir, tiny_onnx, tmp_path):
    plain = run(make_config(soundscape_dir, tiny_onnx, tmp_path / "a.csv"))
    post = {"smoothing_kernel": [0.25, 0.5, 0.25], "file_boost": 0.3}
    processed = run(make_config(soundscape_dir, tiny_onnx, tmp_path / "b.csv", postprocess=post))
    config = PostprocessConfig(smoothing_kernel=(0.25, 0.5, 0.25), file_boost=0.3)
    for before, after in zip(plain.files, processed.files, strict=True):
        np.testing.assert_allclose(after.scores, postprocess_file(before.scores, config), atol=1e-5)
    assert not np.allclose(plain.submission.iloc[:, 1:], processed.submission.iloc[:, 1:])


def test_average_tied_ranks_and_the_clip_match_pandas():
    import pandas as pd

    from birdinfer.scorer.postprocess import percentile_ranks

    rng = np.random.default_rng(3)
    scores = rng.choice([0.0, 1e-7, 0.2, 0.2, 0.5, 0.9, 1.0], size=(40, 5)).astype(np.float32)
    scores[:, 4] = rng.random(40)
    ours = percentile_ranks(scores, "average", 1e-5)
    theirs = pd.DataFrame(np.clip(scores, 1e-5, 1 - 1e-5)).rank(axis=0, pct=True).to_numpy()
    assert np.abs(ours - theirs).max() < 1e-6
    assert np.abs(percentile_ranks(scores) - theirs).max() > 0.1  # "first": ties split


def test_file_scale_multiplies_by_the_mean_of_each_classs_top_k():
    from birdinfer.scorer.postprocess import file_scale

    scores = np.array([[0.1, 0.8], [0.4, 0.2], [0.6, 0.4]], np.float32)
    expected = scores * np.array([(0.6 + 0.4) / 2, (0.8 + 0.4) / 2], np.float32)
    np.testing.assert_allclose(file_scale(scores, 2), expected, rtol=1e-6)
    np.testing.assert_allclose(file_scale(scores, 5), scores * scores.mean(axis=0), rtol=1e-6)
    assert file_scale(scores, 0) is scores
