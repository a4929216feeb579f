"""A tiny TFLite graph built from LiteRT's flatbuffer schema, for tests of the LiteRT backend
(no TensorFlow needed). Import only where ai-edge-litert is installed."""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema


def tiny_tflite(path, samples, classes, seed=0, scale=1.0):
    """x (batch, samples) -> dense (batch, classes) 'embedding' -> logistic 'scores' (the
    graph's only output); returns the path and the dense layer's weights and bias."""
    rng = np.random.default_rng(seed)
    weights = (scale * rng.standard_normal((classes, samples))).astype(np.float32)
    bias = rng.standard_normal(classes).astype(np.float32)
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
        tensor("waveform", [1, samples], 3, [-1, samples]),
        tensor("w", [classes, samples], 1),
        tensor("b", [classes], 2),
        tensor("embedding", [1, classes], 4, [-1, classes]),
        tensor("scores", [1, classes], 5, [-1, classes]),
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


def tiny_rfft_tflite(path, frames=4, n=16):
    """frames (batch, frames, n) -> EXPAND_DIMS -> RFFT2D -> SQUEEZE -> CAST(float32): the
    real part of each frame's DFT, (batch, frames, n // 2 + 1), as BirdNET's spectrogram."""
    ops = schema.BuiltinOperator
    buffers = [schema.BufferT()]

    def constant(array):
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
        buffers.append(buffer)
        return len(buffers) - 1

    def empty():
        buffers.append(schema.BufferT())
        return len(buffers) - 1

    def tensor(name, shape, buffer, kind=schema.TensorType.FLOAT32, signature=None):
        t = schema.TensorT()
        t.name, t.shape, t.buffer, t.type = name.encode(), shape, buffer, kind
        t.shapeSignature = signature
        return t

    bins = n // 2 + 1
    int32, complex64 = schema.TensorType.INT32, schema.TensorType.COMPLEX64
    graph = schema.SubGraphT()
    graph.tensors = [
        tensor("frames", [1, frames, n], empty(), signature=[-1, frames, n]),
        tensor("axis", [], constant(np.array(2, np.int32)), int32),
        tensor("expanded", [1, frames, 1, n], empty(), signature=[-1, frames, 1, n]),
        tensor("fft_length", [2], constant(np.array([1, n], np.int32)), int32),
        tensor("spectrum", [1, frames, 1, bins], empty(), complex64, [-1, frames, 1, bins]),
        tensor("squeezed", [1, frames, bins], empty(), complex64, [-1, frames, bins]),
        tensor("real", [1, frames, bins], empty(), signature=[-1, frames, bins]),
    ]
    codes = []
    for builtin in (ops.EXPAND_DIMS, ops.RFFT2D, ops.SQUEEZE, ops.CAST):
        code = schema.OperatorCodeT()
        # the old int8 field says 127 ("see builtinCode") for codes above it
        code.builtinCode, code.deprecatedBuiltinCode = builtin, min(builtin, 127)
        code.version = 1
        codes.append(code)
    wiring = [([0, 1], [2]), ([2, 3], [4]), ([4], [5]), ([5], [6])]
    graph.operators = []
    for index, (inputs, outputs) in enumerate(wiring):
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, inputs, outputs
        graph.operators.append(op)
    squeeze = graph.operators[2]
    squeeze.builtinOptionsType = schema.BuiltinOptions.SqueezeOptions
    squeeze.builtinOptions = schema.SqueezeOptionsT()
    squeeze.builtinOptions.squeezeDims = [2]
    cast = graph.operators[3]
    cast.builtinOptionsType = schema.BuiltinOptions.CastOptions
    cast.builtinOptions = schema.CastOptionsT()
    cast.builtinOptions.inDataType, cast.builtinOptions.outDataType = (
        complex64,
        schema.TensorType.FLOAT32,
    )
    graph.inputs, graph.outputs = [0], [6]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [graph], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path
