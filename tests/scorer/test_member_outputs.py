"""Per-member scoring settings: which activation a member's output gets, and how frame-wise
outputs become row scores. No torch: the committed demo model and plain arrays."""

from __future__ import annotations

import numpy as np
import pytest

from birdinfer.config import from_dict
from birdinfer.errors import ConfigError, ModelError
from birdinfer.models.card import OutputSpec
from birdinfer.scorer import Ensemble
from birdinfer.scorer.members import member_activation
from birdinfer.scorer.postprocess import activate, pool_frames, row_frames


def demo_config(member=None, **inference):
    return from_dict(
        {
            "models": [{"path": "builtin:demo", **(member or {})}],
            "inference": {"workers": 1, "threads": 1, **inference},
            "output": {"progress": False},
        }
    )


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return 0.1 * np.random.default_rng(3).standard_normal((3, 160000)).astype(np.float32)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax", "none"])
def test_a_version_1_card_follows_the_runs_activation_as_before(windows, activation):
    ensemble = Ensemble(demo_config(activation=activation))
    member = ensemble.members[0]
    assert member.activation == activation and member.output.holds == "logits"
    features = ensemble.features(windows)
    raw = member.backend(features[member.key])
    np.testing.assert_array_equal(ensemble.member_scores(0, features), activate(raw, activation))


def test_a_members_activation_overrides_the_runs(windows):
    ensemble = Ensemble(demo_config({"activation": "none"}, activation="sigmoid"))
    features = ensemble.features(windows)
    raw = ensemble.members[0].backend(features[ensemble.members[0].key])
    np.testing.assert_array_equal(ensemble.member_scores(0, features), raw)
    assert ensemble.describe()["models"][0]["activation"] == "none"


@pytest.mark.parametrize(
    "member, holds, run, expected",
    [
        ({}, "logits", "sigmoid", "sigmoid"),
        ({}, "logits", "softmax", "softmax"),
        ({}, "probabilities", "sigmoid", "none"),
        ({"activation": "sigmoid"}, "probabilities", "none", "sigmoid"),
        ({"activation": "none"}, "logits", "sigmoid", "none"),
    ],
)
def test_member_activation(member, holds, run, expected):
    spec = demo_config(member).models[0]
    assert member_activation(spec, OutputSpec("x", holds, "clipwise"), run) == expected


def test_an_output_the_card_lacks_is_refused_at_load():
    with pytest.raises(ModelError, match="describes one output, 'logits'"):
        Ensemble(demo_config({"output": "framewise"}))


@pytest.mark.parametrize(
    "member, key",
    [
        ({"activation": "relu"}, "models[0].activation"),
        ({"frame_pooling": "median"}, "models[0].frame_pooling"),
        ({"output": ""}, "models.output"),
    ],
)
def test_bad_member_settings_name_their_key(member, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        demo_config(member)


@pytest.mark.parametrize(
    "frames, input_seconds, context, expected",
    [
        (16, 5.0, 0.0, slice(0, 16)),  # no context: every frame is the row's
        (32, 10.0, 2.5, slice(8, 24)),  # the middle half
        (31, 10.0, 2.5, slice(8, 23)),  # centres 7.5..22.5 x 10/31 s fall in [2.5, 7.5]
        (64, 20.0, 7.5, slice(24, 40)),  # the middle quarter of a 20 s window
        (2, 10.0, 2.5, slice(0, 2)),  # centres on the span's edges (2.5 s, 7.5 s) count
        (2, 20.0, 7.5, slice(1, 2)),  # no centre within the row's 5 s: the middle frame
    ],
)
def test_row_frames_are_those_centred_in_the_rows_span(frames, input_seconds, context, expected):
    assert row_frames(frames, input_seconds, context) == expected


def test_frame_pooling_takes_max_or_mean_over_the_rows_frames():
    scores = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    middle = slice(1, 3)
    np.testing.assert_array_equal(pool_frames(scores, "max", middle), scores[:, 2])
    np.testing.assert_allclose(pool_frames(scores, "mean", middle), scores[:, 1:3].mean(axis=1))
    with pytest.raises(ValueError, match="median"):
        pool_frames(scores, "median", middle)
