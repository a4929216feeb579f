"""Exports for modules with `torch.stft` inside (a torchaudio MelSpectrogram on raw audio).

Measured with torch 2.14, onnxruntime 1.32 and OpenVINO 2026.4 (tests/models/test_waveform_
export.py exports such a module):

- ONNX: the TorchScript exporter refuses it ("STFT does not currently support complex
  types"); the dynamo exporter (`torch.onnx.export(..., dynamo=True)`) writes an ONNX `STFT`
  node, and onnxruntime runs it.
- OpenVINO from that ONNX: its ONNX frontend converts `STFT` only for a static signal shape,
  so a dynamic batch axis fails ("Shape of signal input must be static"), and the magnitude
  (`ReduceL2` over the real and imaginary parts) with it. Converted straight from the torch
  module (`ov.convert_model(module)`, as the 2025 1st place did), the same graph becomes an
  OpenVINO `STFT` with a dynamic batch, and runs.

Both are fallbacks: a module the TorchScript exporter and the ONNX frontend take goes the
usual way.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from birdinfer.models.torch_support import require_torch

log = logging.getLogger(__name__)

DYNAMO_MIN_OPSET = 18  # the dynamo exporter's own minimum


def dynamo_export(
    module,
    inputs: list[np.ndarray],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    opset: int,
) -> None:
    """The module as ONNX through the dynamo exporter, with a dynamic batch axis."""
    torch, _ = require_torch()
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        module,
        tuple(torch.from_numpy(x) for x in inputs),
        str(path),
        input_names=input_names,
        output_names=output_names,
        # One entry per positional input: the wrapper's forward takes *inputs.
        dynamic_shapes=(tuple({0: batch} for _ in inputs),),
        opset_version=max(opset, DYNAMO_MIN_OPSET),
        dynamo=True,
        verbose=False,
    )


def strip_node_metadata(proto) -> None:
    """The dynamo exporter stamps every node with the exporting machine's source paths and
    stack traces: not what a model file shared on Kaggle should carry."""
    for node in proto.graph.node:
        del node.metadata_props[:]


def openvino_from_torch(module, inputs: list[np.ndarray], names: list[str], outputs: list[str]):
    """An OpenVINO model converted straight from the torch module, inputs and outputs named
    as the ONNX file names them (the backend finds them by the card's names)."""
    import openvino as ov

    torch, _ = require_torch()
    example = tuple(torch.from_numpy(x) for x in inputs)
    shapes = [ov.PartialShape([-1, *x.shape[1:]]) for x in inputs]
    model = ov.convert_model(module, example_input=example, input=shapes)
    for port, name in zip(model.inputs, names, strict=True):
        port.get_tensor().set_names({name})
    for port, name in zip(model.outputs, outputs, strict=True):
        port.get_tensor().set_names({name})
    return model
