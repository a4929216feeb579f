"""Model files a run must refuse at load, naming the file (issue 12, points 8 and 9): duplicate
or no class names in the card, an OpenVINO IR that does not load, and a model whose input
contradicts what the front end makes. Each is a ModelError from `run()` before any recording
is opened, with nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from birdinfer.demo import DEMO_MODEL
from birdinfer.errors import ModelError
from birdinfer.models import CARD_KEY
from birdinfer.runner import run
from tests.helpers import DEMO_CODES, make_config, write_tone
from tests.hostile_helpers import pooled_onnx


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    write_tone(folder / "dawn.wav", 6.0)
    return folder


@pytest.fixture(autouse=True)
def no_audio(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a recording was opened before the models were checked")

    monkeypatch.setattr("birdinfer.audio.decode.open_recording", forbidden)


def refused(inputs: Path, model: Path, tmp_path: Path) -> str:
    out = tmp_path / "out" / "submission.csv"
    with pytest.raises(ModelError) as caught:
        run(make_config(inputs, model, out))
    assert not out.parent.exists()
    return str(caught.value)


def with_classes(tmp_path: Path, classes: list[str]) -> Path:
    """The built-in demo model with its card's class names replaced."""
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(DEMO_MODEL))
    for prop in proto.metadata_props:
        if prop.key == CARD_KEY:
            card = json.loads(prop.value)
            card["class_names"] = classes
            prop.value = json.dumps(card)
    path = tmp_path / "edited.onnx"
    onnx.save(proto, str(path))
    return path


def test_duplicate_class_names_are_refused(inputs, tmp_path):
    model = with_classes(tmp_path, ["a", "b", "a", "c", "d", "b", "e"])
    assert refused(inputs, model, tmp_path) == (
        f"{model}: its card lists class names more than once: 'a', 'b'"
    )


def test_a_card_with_no_classes_is_refused(inputs, tmp_path):
    model = with_classes(tmp_path, [])
    assert refused(inputs, model, tmp_path) == f"{model}: its card lists no classes"


@pytest.mark.slow  # the IR comes from the tiny model exported with torch
def test_an_openvino_failure_gives_its_reason(inputs, tiny_xml, tmp_path):
    """OpenVINO puts the reason after `Exception from src/inference/src/cpp/core.cpp:84:`,
    which was all the message kept."""
    xml = tmp_path / "truncated.xml"
    shutil.copy(tiny_xml, xml)
    xml.with_suffix(".bin").write_bytes(tiny_xml.with_suffix(".bin").read_bytes()[:1000])
    message = refused(inputs, xml, tmp_path)
    assert message.startswith(f"{xml}: OpenVINO cannot read it (")
    assert "Incorrect weights in bin file!" in message and "core.cpp" not in message


@pytest.mark.slow  # the model is exported with torch
def test_a_model_whose_input_contradicts_the_front_end_is_refused(inputs, tmp_path):
    """A card (and graph) declaring 3 input channels passed every load check; every file was
    then skipped with exit code 0 (and with placeholder rows, an all-zero submission)."""
    model = pooled_onnx(tmp_path / "three.onnx", DEMO_CODES, channels=3)
    # Refused at load, before any audio, by the card check that names the key to set.
    message = refused(inputs, model, tmp_path)
    assert f"{model}: the model takes 3 input channels and its front end makes 1" in message
    assert "image.channels" in message
