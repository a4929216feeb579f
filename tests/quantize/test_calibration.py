"""Calibration: seeded windows spread over the recordings, through the pipeline's front end."""

import numpy as np
import pytest

from birdinfer.audio import decode_windows
from birdinfer.frontend import LogMel
from birdinfer.models.backends import open_backend
from birdinfer.models.card import ModelCard
from birdinfer.quantize import CalibrationError, sample_windows
from birdinfer.quantize.calibration import audio_config_for, plan_picks


@pytest.fixture(scope="module")
def card(tiny_onnx) -> ModelCard:
    """The committed tiny model's card: classes, mel settings and input shape."""
    return open_backend(tiny_onnx).card


def test_calibration_is_reproducible_with_a_seed_and_differs_with_another(audio, card):
    first = sample_windows(audio / "cal", card, count=10, seed=3)
    again = sample_windows(audio / "cal", card, count=10, seed=3)
    other = sample_windows(audio / "cal", card, count=10, seed=4)
    assert first.row_ids == again.row_ids
    np.testing.assert_array_equal(first.features, again.features)
    assert first.row_ids != other.row_ids
    assert first.features.shape == (10, *card.input_shape) and first.features.dtype == np.float32


def test_calibration_spreads_windows_round_robin_over_files():
    counts = [12, 12, 3, 1]
    picks = plan_picks(counts, count=10, seed=0)
    assert len(picks) == len(set(picks)) == 10
    per_file = np.bincount([f for f, _ in picks], minlength=4)
    assert per_file.tolist() == [3, 3, 3, 1]  # round-robin: the 1-window file gives out first
    assert all(0 <= w < counts[f] for f, w in picks)
    assert len(plan_picks(counts, count=100, seed=0)) == sum(counts)  # capped at what exists


def test_calibration_windows_come_through_the_pipeline_front_end(audio, card):
    sampled = sample_windows(audio / "cal", card, count=6, seed=1)
    assert len({row.rsplit("_", 1)[0] for row in sampled.row_ids}) == 4  # all 4 files used
    frontend = LogMel(card.mel)
    for row, features in zip(sampled.row_ids, sampled.features, strict=True):
        stem, end = row.rsplit("_", 1)
        path = next((audio / "cal").glob(f"{stem}.*"))
        windows = decode_windows(path, audio_config_for(card))
        expected = frontend(windows[int(end) // 5 - 1 : int(end) // 5])[0]
        np.testing.assert_allclose(features, expected, atol=1e-5)


def test_calibration_folder_without_audio_is_a_clear_error(tmp_path, card):
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(CalibrationError, match=str(tmp_path)):
        sample_windows(tmp_path, card)
