"""Shared fixtures: seeded synthetic audio, the committed tiny model (and its OpenVINO IR), a tiny
exported timm model for the torch tests, and the real clips in shared/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from birdinfer.demo import write_soundscapes
from tests.helpers import SHARED_AUDIO, copy_tiny_model, export_tiny_model


def pytest_collection_modifyitems(config, items):
    """`needs_torch` tests skip, saying what to install, where torch or timm is missing."""
    missing = [name for name in ("torch", "timm") if importlib.util.find_spec(name) is None]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"needs {' and '.join(missing)}: pip install -e '.[export]'")
    for item in items:
        if item.get_closest_marker("needs_torch"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_audio() -> Path:
    if not SHARED_AUDIO.is_dir():
        pytest.skip("../shared/audio is not present (a clone of the project on its own)")
    return SHARED_AUDIO


@pytest.fixture(scope="session")
def soundscape_dir(tmp_path_factory) -> Path:
    """Three seeded synthetic soundscapes: 60 s OGG, 12 s WAV (partial last window), 3 s FLAC."""
    folder = tmp_path_factory.mktemp("soundscapes")
    write_soundscapes(folder, 1, seed=11, seconds=60.0, fmt="ogg")
    write_soundscapes(folder, 1, seed=12, seconds=12.0, fmt="wav")
    write_soundscapes(folder, 1, seed=13, seconds=3.0, fmt="flac")
    return folder


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """A copy of tests/data/tiny_model.onnx, with its OpenVINO IR (.xml, .bin) beside it."""
    return copy_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_xml(tiny_onnx) -> Path:
    return tiny_onnx.with_suffix(".xml")


@pytest.fixture(scope="session")
def timm_onnx(tmp_path_factory) -> Path:
    """A tiny timm model exported with `birdinfer.models.export` (needs torch and timm)."""
    return export_tiny_model(tmp_path_factory.mktemp("timm_model"))
