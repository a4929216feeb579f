"""A model file describes itself: its card (classes, audio and mel settings, input shape) is read
back from the file, and every setting that contradicts a run's config is named."""

import onnx
import pytest

from birdinfer.config import from_dict
from birdinfer.errors import ModelError
from birdinfer.models import CARD_KEY, ModelCard, card_from_metadata, contradictions
from tests.helpers import DEMO_CODES, TEST_MEL, TINY_MODEL


def committed_card() -> ModelCard:
    props = {p.key: p.value for p in onnx.load(str(TINY_MODEL)).metadata_props}
    return ModelCard.from_json(props[CARD_KEY])


def test_the_committed_model_describes_itself():
    card = committed_card()
    assert card.class_names == tuple(DEMO_CODES)
    assert card.arch == "tiny_cnn"
    assert (card.sample_rate, card.window_seconds, card.mel) == (32000, 5.0, TEST_MEL)
    assert card.input_shape == (1, 64, 501)
    assert card.output == "logits"


def test_a_card_survives_its_json():
    card = committed_card()
    assert ModelCard.from_json(card.to_json()) == card


def test_a_config_with_the_models_settings_has_no_contradictions():
    config = from_dict({"mel": {"n_fft": 1024, "hop_length": 320, "n_mels": 64}})
    assert contradictions(committed_card(), config) == []


def test_each_contradicting_setting_is_named():
    config = from_dict(
        {"audio": {"window_seconds": 10.0}, "mel": {"n_fft": 1024, "hop_length": 256}}
    )
    assert contradictions(committed_card(), config) == [
        "audio.window_seconds: config 10.0 = 10.0 s of input, model 5.0 s",
        "mel.hop_length: config 256, model 320",
        "mel.n_mels: config 128, model 64",
    ]


def test_missing_and_unreadable_cards_are_model_errors():
    with pytest.raises(ModelError, match=r"m\.onnx: no 'birdinfer\.card' metadata"):
        card_from_metadata({}, "m.onnx")
    with pytest.raises(ModelError, match=r"m\.onnx: unreadable 'birdinfer\.card' metadata"):
        card_from_metadata({CARD_KEY: '{"version": 99}'}, "m.onnx")
