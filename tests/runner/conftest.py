"""Fixtures of the runner tests (the scorer tests use them too)."""

from pathlib import Path

import pytest

from birdinfer.demo import write_soundscapes


@pytest.fixture(scope="module")
def short_files(tmp_path_factory) -> Path:
    """Twelve 3 s soundscapes: one window each."""
    folder = tmp_path_factory.mktemp("short")
    write_soundscapes(folder, 12, seed=40, seconds=3.0, fmt="wav")
    return folder
