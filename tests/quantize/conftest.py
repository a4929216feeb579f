"""Fixtures of the quantization tests."""

import pytest

from birdinfer.demo import write_soundscapes


@pytest.fixture(scope="session")
def audio(tmp_path_factory):
    """Calibration recordings (4 files, one of them 12 s) and a labelled held-out set."""
    root = tmp_path_factory.mktemp("quantize_audio")
    write_soundscapes(root / "cal", 3, seed=30000, seconds=30.0)
    write_soundscapes(root / "cal", 1, seed=30001, seconds=12.0, fmt="wav")
    write_soundscapes(root / "held", 2, seed=20260, seconds=30.0, labels_csv=root / "labels.csv")
    return root
