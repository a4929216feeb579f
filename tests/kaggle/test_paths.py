"""Notebook helpers: which model files a folder offers, and the fallback folder of a few files."""

import os
from pathlib import Path

import pytest

from birdinfer.demo.synth import write_soundscapes
from birdinfer.kaggle.paths import fallback_folder, find_models


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
    (tmp_path / "a.ov-int8.xml").write_text("x")
    with pytest.raises(ValueError, match=r"variants of the same model \(a\.ov-int8\.xml, a\.xml\)"):
        find_models(tmp_path)


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
