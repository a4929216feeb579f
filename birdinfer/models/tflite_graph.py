"""Edits of a `.tflite` file's graph: inner tensors made outputs, BirdNET's spectrogram FFT as a
matrix product.

**Outputs.** LiteRT frees or reuses the memory of tensors that are not outputs (XNNPACK fuses
them into its partitions), so the layer before BirdNET's classifier can only be read when it
is an output. Keeping every tensor instead (`experimental_preserve_all_tensors`) is slow on an
interpreter's first call (docs/birdnet.md). `add_outputs` appends named tensors to the first
subgraph's outputs; every operator and weight is kept, so the scores stay bit for bit.

**Real DFT.** BirdNET's spectrogram layer takes `RFFT2D` of each windowed frame and casts the
complex result to float32, which keeps the real part: a cosine transform. OpenVINO's TFLite
frontend (2026.4) stops at `RFFT2D`, and tf2onnx refuses an `RFFT2D` not followed by
`ComplexAbs`. `real_dft_as_matmul` replaces each EXPAND_DIMS -> RFFT2D -> SQUEEZE -> CAST chain
by one FULLY_CONNECTED with the (bins, n) cosine matrix, which both read (docs/birdnet.md has
what it measured: the same scores within 1.3e-5, not faster in f32).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from birdinfer.errors import ModelError
from birdinfer.models.files.write import write_model_file


def _schema(path: Path):
    try:
        import flatbuffers
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:
        raise ModelError(
            f"{path}: editing a .tflite file needs LiteRT: pip install 'birdinfer[litert]'"
        ) from exc
    return flatbuffers, schema


def _load(path: Path):
    _, schema = _schema(path)
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(Path(path).read_bytes(), 0))


def _save(path: Path, model, target: Path) -> Path:
    flatbuffers, _ = _schema(path)
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    data = bytes(builder.Output())
    return write_model_file(target, lambda handle: handle.write(data))


def add_outputs(path: Path, names: Sequence[str], target: Path) -> Path:
    """Write `path` to `target` (atomically; it may be `path`) with the tensors `names`
    appended to its outputs (those already outputs are left as they are)."""
    model = _load(path)
    graph = model.subgraphs[0]
    index = {tensor.name.decode(): i for i, tensor in enumerate(graph.tensors)}
    outputs = [int(i) for i in graph.outputs]
    for name in names:
        if name not in index:
            raise ModelError(f"{path}: no tensor '{name}' to make an output")
        if index[name] not in outputs:
            outputs.append(index[name])
    graph.outputs = np.asarray(outputs, np.int32)
    return _save(path, model, target)


def real_dft_as_matmul(path: Path, target: Path) -> int:
    """Write `path` to `target` with every EXPAND_DIMS -> RFFT2D -> SQUEEZE -> CAST(float32)
    chain replaced by a FULLY_CONNECTED with the real part of the DFT; the chains replaced."""
    _, schema = _schema(path)
    model = _load(path)
    graph = model.subgraphs[0]
    ops = schema.BuiltinOperator
    codes = [code.builtinCode for code in model.operatorCodes]
    chain = [ops.EXPAND_DIMS, ops.RFFT2D, ops.SQUEEZE, ops.CAST]
    kept, replaced, i = [], 0, 0
    while i < len(graph.operators):
        window = [codes[op.opcodeIndex] for op in graph.operators[i : i + 4]]
        if window != chain:
            kept.append(graph.operators[i])
            i += 1
            continue
        source, result = graph.operators[i].inputs[0], graph.operators[i + 3].outputs[0]
        kept.append(_dense(model, graph, schema, source, result, _code(model, schema)))
        replaced, i = replaced + 1, i + 4
    if not replaced:
        raise ModelError(f"{path}: no RFFT2D -> SQUEEZE -> CAST chain to replace")
    graph.operators = kept
    _save(path, model, target)
    return replaced


def _code(model, schema) -> int:
    """The index of FULLY_CONNECTED among the model's operator codes (added if missing)."""
    for index, code in enumerate(model.operatorCodes):
        if code.builtinCode == schema.BuiltinOperator.FULLY_CONNECTED:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _dense(model, graph, schema, source: int, result: int, code: int):
    """FULLY_CONNECTED(frames (..., n)) -> (..., n // 2 + 1): the real part of their DFT."""
    n = int(graph.tensors[source].shape[-1])
    k, t = np.arange(n // 2 + 1)[:, None], np.arange(n)[None, :]
    cosine = np.cos(2 * np.pi * ((k * t) % n) / n).astype(np.float32)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(cosine.tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.name, tensor.shape = f"birdinfer/real_dft_{n}".encode(), list(cosine.shape)
    tensor.type, tensor.buffer = schema.TensorType.FLOAT32, len(model.buffers) - 1
    graph.tensors.append(tensor)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = code, [source, len(graph.tensors) - 1, -1], [result]
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = schema.FullyConnectedOptionsT()
    op.builtinOptions.keepNumDims = True
    return op
