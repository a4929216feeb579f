"""The card's outputs and input constants (version 2), and version-1 cards read as before.
No torch: cards are plain JSON, and the committed demo model carries a version-1 card."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from birdinfer.config import from_dict
from birdinfer.errors import ModelError
from birdinfer.models import open_backend
from birdinfer.models.card import (
    CARD_KEY,
    CARD_VERSION,
    ModelCard,
    OutputSpec,
    card_from_metadata,
    contradictions,
)


@pytest.fixture(scope="module")
def demo_card() -> ModelCard:
    return open_backend("builtin:demo").card


def test_the_demo_models_version_1_card_reads_as_one_clipwise_logits_output(demo_card):
    assert demo_card.version == 1 and demo_card.outputs == ()
    assert demo_card.output_spec(None, ["logits"]) == OutputSpec("logits", "logits", "clipwise")
    assert open_backend("builtin:demo").output == OutputSpec("logits", "logits", "clipwise")
    with pytest.raises(ValueError, match="describes one output, 'logits'"):
        demo_card.output_spec("framewise", ["logits"])


def test_a_version_2_card_round_trips_its_outputs_and_constants(demo_card):
    outputs = (
        OutputSpec("clipwise", "probabilities", "clipwise"),
        OutputSpec("framewise", "probabilities", "framewise"),
    )
    card = dataclasses.replace(
        demo_card, version=CARD_VERSION, outputs=outputs, input_constants={"shift": [0.5]}
    )
    data = json.loads(card.to_json())
    assert data["version"] == 2
    assert data["outputs"][1] == {
        "name": "framewise",
        "holds": "probabilities",
        "layout": "framewise",
    }
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert again.output_spec("framewise", ["clipwise", "framewise"]) == outputs[1]
    assert again.output_spec(None, ["clipwise", "framewise"]) == outputs[0]
    with pytest.raises(ValueError, match=r"the card describes \['clipwise', 'framewise'\]"):
        again.output_spec("logit", ["clipwise", "framewise"])


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"version": 4}, r"card version 4, this birdinfer reads \[1, 2, 3\]"),
        ({"input_kind": "waveform"}, "a waveform card must be version 3, not 2"),
        ({"input_kind": "spectrum"}, "input_kind .spectrum."),
        ({"outputs": [{"name": "x", "holds": "odds", "layout": "clipwise"}]}, "holds 'odds'"),
        ({"outputs": [{"name": "x", "holds": "logits", "layout": "tokens"}]}, "layout 'tokens'"),
        ({"outputs": [{"name": "x", "holds": "logits"}]}, "without a layout"),
        ({"outputs": [{"name": "x", "colour": "red"}]}, "colour"),
    ],
)
def test_unreadable_cards_are_refused_with_the_reason(demo_card, change, problem):
    data = {**json.loads(demo_card.to_json()), "version": 2, **change}
    with pytest.raises(ModelError, match=problem):
        card_from_metadata({CARD_KEY: json.dumps(data)}, "m.onnx")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("clipwise", OutputSpec("clipwise", "logits")),
        ("framewise:probabilities", OutputSpec("framewise", "probabilities")),
        ("1:logits", OutputSpec("1", "logits")),
    ],
)
def test_output_choices_parse(text, expected):
    assert OutputSpec.parse(text) == expected


@pytest.mark.parametrize("text", [":probabilities", "x:odds"])
def test_bad_output_choices_are_refused(text):
    with pytest.raises(ValueError):
        OutputSpec.parse(text)


def test_a_three_channel_card_contradicts_the_one_channel_front_end(demo_card):
    config = from_dict({})
    assert contradictions(demo_card, config) == []
    rgb = dataclasses.replace(demo_card, input_shape=(3, *demo_card.input_shape[1:]))
    (problem,) = contradictions(rgb, config)
    assert "takes 3 input channels" in problem and "makes 1" in problem


def test_import_birdinfer_never_imports_torch_even_for_the_export_api():
    code = (
        "import sys, birdinfer\n"
        "from birdinfer.models import export\n"
        "assert birdinfer.export is export.export and birdinfer.make_card is export.make_card\n"
        "assert 'torch' not in sys.modules and 'timm' not in sys.modules, 'torch imported'\n"
        "try:\n"
        "    birdinfer.no_such_name\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "has no attribute 'no_such_name'" in done.stdout
