"""The committed tiny model (tests/data/tiny_model.onnx) that the engine tests run on: what its
script writes, small, and with logits that spread over several units on real windows."""

import numpy as np
import soundfile as sf

from birdinfer.demo import write_soundscapes
from birdinfer.frontend import LogMel
from birdinfer.models import open_backend
from tests.helpers import TEST_MEL, TINY_MODEL
from tests.make_tiny_model import tiny_model_bytes


def test_the_committed_model_is_what_its_script_writes():
    assert TINY_MODEL.read_bytes() == tiny_model_bytes(), (
        "tests/data/tiny_model.onnx is stale: run python tests/make_tiny_model.py"
    )


def test_the_committed_model_is_under_1_mb():
    assert TINY_MODEL.stat().st_size < 2**20


def test_another_seed_gives_another_model():
    assert tiny_model_bytes(seed=3) != tiny_model_bytes()


def test_logits_spread_over_several_units_on_soundscape_windows(tiny_onnx, tmp_path):
    """Invariance and parity checks compare these scores: near-zero or saturated outputs, or the
    same output for every window, would let a broken run pass them."""
    (path,) = write_soundscapes(tmp_path, 1, seed=11, seconds=60.0, fmt="wav")
    audio, _ = sf.read(str(path), dtype="float32")
    logits = open_backend(tiny_onnx)(LogMel(TEST_MEL)(audio[: 12 * 160000].reshape(12, 160000)))
    assert np.all(logits.std(axis=0) > 0.5)  # every class varies from window to window
    assert logits.std() > 1.0 and np.abs(logits).max() < 20  # several units, not saturated
    assert abs(logits.mean()) < 1.0  # centred: sigmoid scores on both sides of 0.5
