"""Both runtimes behind one interface: the same test functions run on ONNX Runtime (.onnx) and
OpenVINO (.xml), on the committed tiny model."""

import numpy as np
import pytest

from birdinfer.errors import ModelError
from birdinfer.models import open_backend
from tests.helpers import DEMO_CODES

BACKENDS = [".onnx", ".xml"]
# ONNX Runtime and OpenVINO sum in different orders; measured on the tiny model: 5e-6 in logits.
RUNTIME_PARITY = 2e-5


def features(n: int, seed: int = 0) -> np.ndarray:
    """Standardised log-mels are roughly N(0, 1): seeded normal noise of the model's input shape."""
    return np.random.default_rng(seed).standard_normal((n, 1, 64, 501)).astype(np.float32)


@pytest.mark.parametrize("suffix", BACKENDS)
def test_backends_read_the_card_and_accept_any_batch(tiny_onnx, suffix):
    backend = open_backend(tiny_onnx.with_suffix(suffix), threads=1)
    assert backend.card.class_names == tuple(DEMO_CODES)
    for batch in (1, 3, 16):
        assert backend(np.zeros((batch, 1, 64, 501), np.float32)).shape == (batch, 7)


@pytest.mark.parametrize("suffix", BACKENDS)
def test_batch_size_does_not_change_the_scores(tiny_onnx, suffix):
    backend = open_backend(tiny_onnx.with_suffix(suffix), threads=1)
    x = features(8)
    one_by_one = np.concatenate([backend(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(backend(x), one_by_one, rtol=0, atol=1e-5)


@pytest.mark.parametrize("suffix", BACKENDS)
def test_thread_count_does_not_change_the_scores(tiny_onnx, suffix):
    x = features(8, seed=1)
    single = open_backend(tiny_onnx.with_suffix(suffix), threads=1)(x)
    np.testing.assert_allclose(
        open_backend(tiny_onnx.with_suffix(suffix), threads=2)(x), single, rtol=0, atol=1e-5
    )


def test_onnx_runtime_and_openvino_agree(tiny_onnx, tiny_xml):
    x = features(8, seed=2)
    onnx_scores = open_backend(tiny_onnx)(x)
    assert onnx_scores.std() > 1.0  # logits that spread: agreement near zero would prove nothing
    np.testing.assert_allclose(open_backend(tiny_xml)(x), onnx_scores, rtol=0, atol=RUNTIME_PARITY)


@pytest.mark.parametrize("suffix", BACKENDS)
def test_one_backend_serves_many_threads(tiny_onnx, suffix):
    from concurrent.futures import ThreadPoolExecutor

    x = features(4, seed=3)
    backend = open_backend(tiny_onnx.with_suffix(suffix), threads=1)
    expected = backend(x)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: backend(x), range(8)))
    for scores in results:
        np.testing.assert_array_equal(scores, expected)


def test_unknown_suffix_and_missing_file_are_model_errors(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"unknown model format '\.pt'"):
        open_backend(tmp_path / "model.pt")
    with pytest.raises(ModelError, match="model file not found"):
        open_backend(tmp_path / "absent.onnx")
