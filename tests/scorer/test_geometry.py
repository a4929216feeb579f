"""Window geometry per member: where each member's input sits around the rows, how sliding
windows' frames become rows, and members of different window lengths in one ensemble. No torch:
plain arrays and the committed tiny model's generator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from birdinfer.audio import Cut
from birdinfer.config import AudioConfig, from_dict
from birdinfer.errors import ModelError
from birdinfer.runner import run
from birdinfer.scorer import Ensemble, score_file
from birdinfer.scorer.geometry import Geometry, overlap_rows
from tests.helpers import naive_sliding_rows, tiny_card, tiny_model

RATE = 32000


def test_a_member_without_geometry_hears_the_runs_own_inputs():
    audio = AudioConfig(context_seconds=2.5, tta_shifts=(-1.0, 0.0, 1.0))
    geometry = Geometry.for_member(None, audio, 10.0)
    assert geometry.cut == Cut.of(audio)
    assert geometry.kind == "centred" and geometry.views == 3


def test_centred_and_sliding_place_a_long_window_around_each_row():
    audio = AudioConfig(tta_shifts=(-2.5, 0.0, 2.5))
    centred = Geometry.for_member("centred", audio, 20.0)
    assert centred.cut == Cut(20 * RATE, (-10 * RATE, -7.5 * RATE, -5 * RATE))
    sliding = Geometry.for_member("sliding", audio, 20.0)
    # One window centred on each row, stepped by the row: no TTA views (they already overlap).
    assert sliding.cut == Cut(20 * RATE, (-7.5 * RATE,)) and sliding.views == 1


@pytest.mark.parametrize("pooling", ["max", "mean"])
@pytest.mark.parametrize(
    "window, frames",
    [
        (20.0, 16),  # 4 frames a row; none centred on a row's edge
        (20.0, 20),  # 5 a row; frames centred exactly on the edges belong to both rows
        (10.0, 10),
        (15.0, 9),  # 3 a row
        (5.0, 8),  # as long as the row: each row is its own window
    ],
)
def test_sliding_rows_average_each_frame_over_its_windows(window, frames, pooling):
    rng = np.random.default_rng(int(window * 100 + frames))
    outputs = rng.random((7, frames, 3)).astype(np.float32)
    geometry = Geometry("sliding", 5.0, window, RATE)
    ours = overlap_rows(outputs, 7, geometry, pooling)
    np.testing.assert_allclose(ours, naive_sliding_rows(outputs, 5.0, window, pooling), atol=1e-6)
    if window > 5.0:  # neighbours matter: not just each row's own window
        alone = Geometry("centred", 5.0, window, RATE).input_rows(outputs, pooling)
        assert np.abs(ours - alone).max() > 1e-3


def test_frames_that_do_not_step_with_the_rows_are_refused():
    geometry = Geometry("sliding", 5.0, 20.0, RATE)
    assert geometry.frame_step(38) is None  # 9.5 frames a row
    with pytest.raises(ValueError, match="38 frames over 20.0 s do not step by rows"):
        overlap_rows(np.zeros((3, 38, 2), np.float32), 3, geometry, "max")


# --- members of several window lengths, no torch --------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("geometry_models")
    five = tiny_model(folder / "five", seed=1, openvino=False)
    ten = tiny_model(folder / "ten", seed=2, card=tiny_card(window_seconds=10.0), openvino=False)
    return five, ten


def config_for(folder, tmp_path, members, **sections):
    return from_dict(
        {
            "input_dir": str(folder),
            "models": members,
            "output": {"submission": str(tmp_path / "s.csv"), "progress": False},
            **sections,
        }
    )


def test_a_longer_member_centred_on_its_own_equals_the_old_global_context(
    soundscape_dir, models, tmp_path
):
    _, ten = models
    own = run(config_for(soundscape_dir, tmp_path, [{"path": str(ten), "geometry": "centred"}]))
    old = config_for(soundscape_dir, tmp_path, [str(ten)], audio={"context_seconds": 2.5})
    np.testing.assert_array_equal(
        own.submission.iloc[:, 1:].to_numpy(), run(old).submission.iloc[:, 1:].to_numpy()
    )


@pytest.mark.parametrize("audio", [{}, {"tta_shifts": [-1.0, 0.0, 1.0]}])
def test_members_of_different_window_lengths_mix_in_one_ensemble(
    soundscape_dir, models, tmp_path, audio
):
    five, ten = models
    members = [str(five), {"path": str(ten), "geometry": "centred", "weight": 3.0}]
    mixed = run(config_for(soundscape_dir, tmp_path, members, audio=audio))
    described = {m["path"]: m for m in json.loads(mixed.report_path.read_text())["models"]}
    alone = [run(config_for(soundscape_dir, tmp_path, [m], audio=audio)) for m in members]
    for i, single in enumerate(alone):
        for both, one in zip(mixed.files, single.files, strict=True):
            np.testing.assert_allclose(both.member_scores[i], one.scores, atol=1e-6)
    expected = 0.25 * alone[0].submission.iloc[:, 1:] + 0.75 * alone[1].submission.iloc[:, 1:]
    np.testing.assert_allclose(mixed.submission.iloc[:, 1:], expected, atol=1e-6)
    ensemble = Ensemble(config_for(soundscape_dir, tmp_path, members, audio=audio))
    for path, rows in zip(sorted(soundscape_dir.iterdir()), mixed.files, strict=True):
        assert rows.path == path
        np.testing.assert_allclose(score_file(ensemble, path).scores, rows.scores, atol=1e-6)
    assert described[str(ten)]["geometry"] == "centred"
    assert described[str(ten)]["context_seconds"] == 2.5
    assert described[str(five)]["context_seconds"] == 0.0
    assert described[str(ten)]["views"] == len(audio.get("tta_shifts", [0.0]))


def test_sliding_needs_a_frame_wise_output(soundscape_dir, models, tmp_path):
    _, ten = models
    config = config_for(soundscape_dir, tmp_path, [{"path": str(ten), "geometry": "sliding"}])
    with pytest.raises(ModelError, match="output 'logits' is clip-wise.*geometry: centred"):
        Ensemble(config)


def test_a_window_shorter_than_the_row_is_refused(soundscape_dir, models, tmp_path):
    five, _ = models
    config = config_for(
        soundscape_dir,
        tmp_path,
        [{"path": str(five), "geometry": "centred"}],
        audio={"window_seconds": 10.0},
    )
    with pytest.raises(ModelError, match="geometry centred: the model hears 5.0 s, shorter"):
        Ensemble(config)


def test_a_longer_model_without_geometry_is_refused_with_the_choices(
    soundscape_dir, models, tmp_path
):
    _, ten = models
    with pytest.raises(ModelError, match="model 10.0 s.*geometry: centred.*or sliding"):
        Ensemble(config_for(soundscape_dir, tmp_path, [str(ten)]))
