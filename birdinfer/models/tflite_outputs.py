"""A `.tflite` file with more of its tensors as graph outputs (BirdNET's embedding).

LiteRT frees or reuses the memory of tensors that are not outputs (XNNPACK fuses them into
its partitions), so the layer before BirdNET's classifier can only be read when it is an
output. Keeping every tensor instead (`experimental_preserve_all_tensors`) cost ~3 s per
window on an interpreter's first call here. This rewrites the model's flatbuffer with the
named tensors appended to the first subgraph's outputs; every operator and weight is kept as
it was, so the scores stay bit for bit those of the original file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from birdinfer.errors import ModelError
from birdinfer.output.atomic import write_atomic


def add_outputs(path: Path, names: Sequence[str], target: Path) -> Path:
    """Write `path` to `target` (atomically; it may be `path`) with the tensors `names`
    appended to its outputs (those already outputs are left as they are)."""
    try:
        import flatbuffers
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:
        raise ModelError(
            f"{path}: adding outputs to a .tflite file needs LiteRT: pip install "
            "'birdinfer[litert]'"
        ) from exc
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(Path(path).read_bytes(), 0))
    graph = model.subgraphs[0]
    index = {tensor.name.decode(): i for i, tensor in enumerate(graph.tensors)}
    outputs = [int(i) for i in graph.outputs]
    for name in names:
        if name not in index:
            raise ModelError(f"{path}: no tensor '{name}' to make an output")
        if index[name] not in outputs:
            outputs.append(index[name])
    graph.outputs = np.asarray(outputs, np.int32)
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    data = bytes(builder.Output())
    return write_atomic(target, lambda handle: handle.write(data), binary=True)
