"""The LiteRT backend on a tiny TFLite graph built here (waveform (batch, 8) -> a dense layer,
the "embedding" -> logistic, the scores): the card beside the file, batch invariance, an inner
tensor made an output. Skipped without the `litert` extra (ai-edge-litert)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
flatbuffers = pytest.importorskip("flatbuffers")

from birdinfer.errors import ModelError  # noqa: E402
from birdinfer.models import build_card, open_backend, set_card  # noqa: E402
from tests.tflite_helpers import tiny_tflite  # noqa: E402

SAMPLES, CLASSES = 8, 3
RATE = 32000  # 8 samples: a quarter of a millisecond


@pytest.fixture
def carded(tmp_path):
    path, weights, bias = tiny_tflite(tmp_path / "tiny.tflite", SAMPLES, CLASSES)
    card = build_card(
        path,
        overrides={"audio.sample_rate": RATE, "audio.window_seconds": SAMPLES / RATE},
        classes=["a", "b", "c"],
        waveform=True,
        outputs=("scores:probabilities", "embedding:embedding"),
    )
    set_card(path, card)
    return path, weights, bias


def test_card_set_writes_the_card_beside_the_file_and_makes_the_embedding_an_output(carded):
    path, weights, bias = carded
    card = json.loads(path.with_name("tiny.tflite.card.json").read_text())
    assert card["input_kind"] == "waveform" and card["class_names"] == ["a", "b", "c"]
    backend = open_backend(path, embeddings=("embedding",))
    x = np.random.default_rng(1).standard_normal((5, SAMPLES)).astype(np.float32)
    found = backend.run(x)
    logits = x @ weights.T + bias
    np.testing.assert_allclose(found["embedding"], logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(found["scores"], 1 / (1 + np.exp(-logits)), atol=1e-6)


@pytest.mark.parametrize("batch", [1, 7, 21, 40])
def test_batch_size_does_not_change_results(carded, batch):
    backend = open_backend(carded[0])
    x = np.random.default_rng(batch).standard_normal((batch, SAMPLES)).astype(np.float32)
    together = backend(x)
    one_by_one = np.concatenate([backend(x[i : i + 1]) for i in range(batch)])
    np.testing.assert_array_equal(together, one_by_one)


def test_a_tflite_without_a_card_is_refused_with_the_command_that_gives_it_one(tmp_path):
    path, _, _ = tiny_tflite(tmp_path / "bare.tflite", SAMPLES, CLASSES)
    with pytest.raises(ModelError, match="card set"):
        open_backend(path)


def run_tflite(path, x):
    from birdinfer.models.files import litert_interpreter as interpreter

    runner = interpreter(path, 1)
    runner.resize_tensor_input(0, list(x.shape))
    runner.allocate_tensors()
    runner.set_tensor(0, x)
    runner.invoke()
    return runner.get_tensor(runner.get_output_details()[0]["index"])


def test_the_real_part_of_rfft2d_becomes_a_matrix_product_that_openvino_reads(tmp_path):
    from birdinfer.models.tflite_graph import real_dft_as_matmul
    from tests.tflite_helpers import tiny_rfft_tflite

    original = tiny_rfft_tflite(tmp_path / "rfft.tflite")
    x = np.random.default_rng(0).standard_normal((3, 4, 16)).astype(np.float32)
    before = run_tflite(original, x)
    np.testing.assert_allclose(before, np.fft.rfft(x, axis=-1).real, atol=1e-5)
    converted = tmp_path / "dft.tflite"
    assert real_dft_as_matmul(original, converted) == 1
    np.testing.assert_allclose(run_tflite(converted, x), before, atol=1e-5)
    ov = pytest.importorskip("openvino")
    with pytest.raises(Exception, match="(?i)rfft2d|translat|conver"):
        ov.Core().read_model(str(original))
    model = ov.Core().read_model(str(converted))
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(compiled({0: x})[compiled.outputs[0]], before, atol=1e-5)


def test_a_graph_without_rfft2d_is_refused(tmp_path):
    from birdinfer.models.tflite_graph import real_dft_as_matmul

    path, _, _ = tiny_tflite(tmp_path / "dense.tflite", SAMPLES, CLASSES)
    with pytest.raises(ModelError, match="RFFT2D"):
        real_dft_as_matmul(path, tmp_path / "out.tflite")
