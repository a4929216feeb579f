"""Notebook helpers: which model files a folder offers (one variant of each model), and the
fallback folder of a few files."""

import dataclasses
import logging
import os
import shutil
from pathlib import Path

import pytest

from birdinfer.demo import DEMO_MODEL, write_soundscapes
from birdinfer.errors import ModelError
from birdinfer.kaggle import paths
from birdinfer.kaggle.paths import choose_variant, fallback_folder, find_models
from birdinfer.models.card_tool import read_card, set_card
from birdinfer.models.probe import probe_of, with_probe
from tests.make_tiny_model import tiny_card, write_tiny_model


def test_find_models_prefers_openvino_beside_onnx_and_keeps_name_order(tmp_path):
    for name in ("b.onnx", "a.onnx", "a.xml", "a.bin", "notes.txt", "sub/c.onnx"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    found = find_models(tmp_path)
    assert found == [
        str(tmp_path / "a.xml"),
        str(tmp_path / "b.onnx"),
        str(tmp_path / "sub/c.onnx"),
    ]
    explicit = f"{tmp_path / 'b.onnx'}{os.pathsep}{tmp_path / 'a.onnx'}"
    assert find_models(explicit) == [str(tmp_path / "b.onnx"), str(tmp_path / "a.onnx")]
    with pytest.raises(FileNotFoundError, match="is the dataset attached"):
        find_models(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .onnx or .xml model"):
        find_models(tmp_path / "empty")


def test_fallback_folder_links_the_first_files_only(tmp_path):
    write_soundscapes(tmp_path / "unlabeled", 3, seed=40, seconds=1.0, fmt="wav")
    folder = Path(fallback_folder(tmp_path / "unlabeled", 2, tmp_path / "links"))
    assert sorted(p.name for p in folder.iterdir()) == [
        "soundscape_40000.wav",
        "soundscape_40001.wav",
    ]
    assert all(p.is_symlink() for p in folder.iterdir())
    assert fallback_folder(tmp_path / "unlabeled", 0) is None
    assert fallback_folder(tmp_path / "nowhere", 5) is None
    folder = Path(fallback_folder(tmp_path / "unlabeled", 1, tmp_path / "links"))  # re-run: fewer
    assert [p.name for p in folder.iterdir()] == ["soundscape_40000.wav"]


def variant_folder(folder: Path, int8_accepted: bool | None) -> Path:
    """m.onnx (FP32) beside m.ort-int8.onnx whose card carries the guard's verdict."""
    write_tiny_model(folder / "m.onnx", tiny_card())
    extra = {"variant": "ort-int8"} | ({} if int8_accepted is None else {"accepted": int8_accepted})
    card = dataclasses.replace(tiny_card(), extra=extra)
    write_tiny_model(folder / "m.ort-int8.onnx", card, seed=1)
    return folder


def test_a_folder_with_fp32_and_an_accepted_int8_runs_the_int8_and_says_so(tmp_path, caplog):
    folder = variant_folder(tmp_path, int8_accepted=True)
    with caplog.at_level(logging.WARNING):
        assert find_models(folder) == [str(folder / "m.ort-int8.onnx")]
    assert "chose m.ort-int8.onnx (its card says the quantization guard accepted it)" in caplog.text


@pytest.mark.parametrize("verdict", [False, None])
def test_a_rejected_or_unjudged_int8_gives_way_to_the_fp32_model(tmp_path, verdict):
    folder = variant_folder(tmp_path, int8_accepted=verdict)
    path, note = choose_variant([folder / "m.onnx", folder / "m.ort-int8.onnx"])
    assert path == folder / "m.onnx"
    assert "chose m.onnx (the FP32 model)" in note
    why = "rejected it" if verdict is False else "holds no verdict"
    assert "passed over: m.ort-int8.onnx: " in note and why in note


def test_no_runnable_variant_is_an_error_naming_each_reason(tmp_path):
    (tmp_path / "m.ov-int8.xml").write_text("not a model")
    write_tiny_model(
        tmp_path / "m.ort-int8.onnx",
        dataclasses.replace(tiny_card(), extra={"variant": "ort-int8", "accepted": False}),
    )
    with pytest.raises(
        ModelError, match=r"no variant of m can run here \(m\.ov-int8\.xml: it"
    ) as e:
        find_models(tmp_path)
    assert "m.ort-int8.onnx: its card says the quantization guard rejected it" in str(e.value)


class FakeCheck:
    def __init__(self, status: str):
        self.status, self.passed = status, status == "passed"
        self.message = f"{status} on this CPU"


def verifier(statuses: dict[str, str]):
    """A verify_file that gives each file the status named for it."""
    return lambda path: FakeCheck(statuses[Path(path).name])


@pytest.mark.parametrize(
    ("statuses", "chosen", "why"),
    [
        ({"m.ort-int8.onnx": "failed", "m.onnx": "absent"}, "m.onnx", "failed verification"),
        ({"m.ort-int8.onnx": "passed", "m.onnx": "passed"}, "m.ort-int8.onnx", "passed verif"),
        ({"m.ort-int8.onnx": "absent", "m.onnx": "absent"}, "m.ort-int8.onnx", "accepted"),
    ],
)
def test_the_verify_step_decides_when_there_is_one(tmp_path, monkeypatch, statuses, chosen, why):
    """`birdinfer verify` (the card's probe on this CPU) overrules the card's verdict when it
    fails; without a probe the card decides."""
    folder = variant_folder(tmp_path, int8_accepted=True)
    monkeypatch.setattr(paths, "verify_file", verifier(statuses))
    path, note = choose_variant([folder / "m.onnx", folder / "m.ort-int8.onnx"])
    assert path.name == chosen and why in note


@pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="demo model not built")
def test_a_variant_whose_probe_fails_on_this_cpu_gives_way_though_its_card_accepts_it(tmp_path):
    """The real verify step: the demo model's own probe passes; an "INT8" copy whose card says
    accepted but whose probe expects other outputs fails, and the FP32 model runs."""
    shutil.copy(DEMO_MODEL, tmp_path / "m.onnx")
    card = read_card(tmp_path / "m.onnx")
    probe = probe_of(card)
    wrong = dataclasses.replace(probe, expected={k: v + 5.0 for k, v in probe.expected.items()})
    lying = dataclasses.replace(card, extra={**card.extra, "variant": "ort-int8", "accepted": True})
    set_card(tmp_path / "m.onnx", with_probe(lying, wrong), out=tmp_path / "m.ort-int8.onnx")
    path, note = choose_variant([tmp_path / "m.onnx", tmp_path / "m.ort-int8.onnx"])
    assert path.name == "m.onnx"
    assert "chose m.onnx (it passed verification on this CPU: ok " in note
    assert "m.ort-int8.onnx: it failed verification on this CPU: FAILED " in note
