"""The LiteRT backend on a tiny TFLite graph built here (waveform (batch, 8) -> a dense layer,
the "embedding" -> logistic, the scores): the card beside the file, batch invariance, an inner
tensor made an output. Skipped without the `litert` extra (ai-edge-litert)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
flatbuffers = pytest.importorskip("flatbuffers")

from ai_edge_litert import schema_py_generated as schema  # noqa: E402

from birdinfer.errors import ModelError  # noqa: E402
from birdinfer.models.backends import open_backend  # noqa: E402
from birdinfer.models.card_tool import build_card, set_card  # noqa: E402

SAMPLES, CLASSES = 8, 3
RATE = 32000  # 8 samples: a quarter of a millisecond


def tiny_tflite(path, seed=0):
    """x (batch, 8) -> dense (batch, 3) 'embedding' -> logistic 'scores': the graph's only output
    is 'scores'."""
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((CLASSES, SAMPLES)).astype(np.float32)
    bias = rng.standard_normal(CLASSES).astype(np.float32)
    buffers = [schema.BufferT()]
    for array in (weights, bias):
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(array.tobytes(), np.uint8)
        buffers.append(buffer)
    for _ in range(3):
        buffers.append(schema.BufferT())

    def tensor(name, shape, buffer, signature=None):
        t = schema.TensorT()
        t.name, t.shape, t.buffer, t.type = name.encode(), shape, buffer, schema.TensorType.FLOAT32
        t.shapeSignature = signature
        return t

    graph = schema.SubGraphT()
    graph.tensors = [
        tensor("waveform", [1, SAMPLES], 3, [-1, SAMPLES]),
        tensor("w", [CLASSES, SAMPLES], 1),
        tensor("b", [CLASSES], 2),
        tensor("embedding", [1, CLASSES], 4, [-1, CLASSES]),
        tensor("scores", [1, CLASSES], 5, [-1, CLASSES]),
    ]
    codes = []
    for builtin in (schema.BuiltinOperator.FULLY_CONNECTED, schema.BuiltinOperator.LOGISTIC):
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = builtin
        code.version = 1
        codes.append(code)
    dense, logistic = schema.OperatorT(), schema.OperatorT()
    dense.opcodeIndex, dense.inputs, dense.outputs = 0, [0, 1, 2], [3]
    dense.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    dense.builtinOptions = schema.FullyConnectedOptionsT()
    logistic.opcodeIndex, logistic.inputs, logistic.outputs = 1, [3], [4]
    graph.operators, graph.inputs, graph.outputs = [dense, logistic], [0], [4]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [graph], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path, weights, bias


@pytest.fixture
def carded(tmp_path):
    path, weights, bias = tiny_tflite(tmp_path / "tiny.tflite")
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
    path, _, _ = tiny_tflite(tmp_path / "bare.tflite")
    with pytest.raises(ModelError, match="card set"):
        open_backend(path)
