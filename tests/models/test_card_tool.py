"""`birdinfer card show|set`: a file exported elsewhere gets a card, atomically, and then runs."""

from __future__ import annotations

import numpy as np
import pytest

from birdinfer.cli import main
from birdinfer.demo import DEMO_MODEL
from birdinfer.errors import ModelError
from birdinfer.models import build_card, open_backend, read_card, set_card

onnx = pytest.importorskip("onnx")


@pytest.fixture
def classes_file(tmp_path):
    names = read_card("builtin:demo").class_names
    path = tmp_path / "classes.txt"
    path.write_text("\n".join(names) + "\n")
    return path


def test_card_show_prints_the_demo_card(capsys):
    assert main(["card", "show", "builtin:demo"]) == 0
    out = capsys.readouterr().out
    assert '"arch": "efficientnet_b0"' in out and '"normalization": [\n      "standardize"' in out


def test_a_file_without_a_card_is_refused_with_the_command_that_fixes_it(bare_model):
    with pytest.raises(ModelError, match="birdinfer card set"):
        open_backend(bare_model)


def test_card_set_attaches_a_card_and_the_model_then_runs(bare_model, classes_file, capsys):
    code = main(
        [
            "card",
            "set",
            str(bare_model),
            "--config",
            "default",
            "--classes",
            str(classes_file),
            "--arch",
            "efficientnet_b0",
        ]
    )
    assert code == 0, capsys.readouterr()
    backend = open_backend(bare_model)
    demo = read_card("builtin:demo")
    assert (backend.card.mel, backend.card.image, backend.card.class_names) == (
        demo.mel,
        demo.image,
        demo.class_names,
    )
    scores = backend(np.zeros((2, *backend.card.input_shape), np.float32))
    assert scores.shape == (2, len(demo.class_names))


def test_card_set_with_a_preset_records_its_settings(bare_model, classes_file):
    card = build_card(
        bare_model,
        overrides={"mel.preset": "birdclef2023_1st"},
        classes=[f"c{i}" for i in range(7)],
    )
    assert (card.mel.mel_scale, card.mel.norm, card.mel.pad_mode) == ("htk", None, "reflect")
    out = set_card(bare_model, card, bare_model.with_name("copy.onnx"))
    assert read_card(out).mel == card.mel
    with pytest.raises(ModelError):  # the original is untouched
        read_card(bare_model)


def test_card_set_refuses_settings_that_do_not_fit_the_models_input(bare_model, classes_file):
    with pytest.raises(ModelError, match="input"):
        build_card(
            bare_model,
            overrides={"mel.preset": "birdclef2026_2nd"},
            classes=[f"c{i}" for i in range(7)],
        )


def test_card_set_without_classes_on_a_bare_file_asks_for_them(bare_model):
    with pytest.raises(ModelError, match="--classes"):
        build_card(bare_model, config="default")


@pytest.mark.slow  # over 5 s on the slower hosts
def test_card_set_on_an_openvino_ir_writes_both_files_and_the_model_runs(tmp_path, classes_file):
    ov = pytest.importorskip("openvino")
    bare = tmp_path / "bare.xml"
    ov.save_model(ov.convert_model(str(DEMO_MODEL)), str(bare), compress_to_fp16=False)
    with pytest.raises(ModelError, match="birdinfer card set"):
        read_card(bare)
    assert (
        main(["card", "set", str(bare), "--config", "default", "--classes", str(classes_file)]) == 0
    )
    backend = open_backend(bare)
    assert backend.card.class_names == read_card("builtin:demo").class_names
    assert backend(np.zeros((1, *backend.card.input_shape), np.float32)).shape == (1, 7)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".xml", ".bin")) == [
        "bare.bin",
        "bare.xml",
    ]  # no temporary files left beside it
