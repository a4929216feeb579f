"""ONNX BatchNormalization nodes left in training mode, set back to inference.

A module exported while in train() mode (a wrapper's own `training` flag is enough) gives
`BatchNormalization` nodes with `training_mode=1`: ONNX Runtime then normalises each batch by its
own statistics, so a window's scores depend on the other windows in its batch, and OpenVINO's
ONNX front end rejects such nodes (the BirdCLEF 2026 2nd-place export script works around it:
FlorentinGe/Birdclef2026-2ndplace, export_onnx.py). Inference mode uses the stored running
statistics, which is what `model.eval()` computes in torch.

Needs the `onnx` package (the export extra); the runtimes alone cannot edit a graph.
"""

from __future__ import annotations

import logging
from pathlib import Path

from birdinfer.errors import ModelError

log = logging.getLogger(__name__)

# The attribute's name as it is serialised: its absence proves there is nothing to fix.
MARKER = b"training_mode"


def fix_training_batchnorm(proto) -> list[str]:
    """Set `training_mode=0` on every BatchNormalization node of `proto` (an onnx.ModelProto)
    that has it at 1, dropping the running-statistics outputs that only training mode has.
    Returns the fixed nodes' names; raises ValueError when another node reads those outputs."""
    graph = proto.graph
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    fixed = []
    for node in graph.node:
        if node.op_type != "BatchNormalization":
            continue
        mode = next((a for a in node.attribute if a.name == "training_mode"), None)
        if mode is None or mode.i == 0:
            continue
        extra = [name for name in node.output[1:] if name]
        if read & set(extra):
            raise ValueError(
                f"BatchNormalization '{node.name}' runs in training mode and its running "
                f"statistics {sorted(read & set(extra))} feed other nodes"
            )
        mode.i = 0
        del node.output[1:]
        kept = [v for v in graph.value_info if v.name not in extra]
        del graph.value_info[:]
        graph.value_info.extend(kept)
        fixed.append(node.name or node.output[0])
    return fixed


def inference_batchnorm_bytes(path: Path) -> bytes | None:
    """The model at `path` with its training-mode BatchNormalization nodes fixed, as bytes, or
    None when it has none (the common case costs one read of the file)."""
    data = Path(path).read_bytes()
    if MARKER not in data:
        return None
    try:
        import onnx
    except ImportError as exc:
        raise ModelError(
            f"{path}: may hold BatchNormalization nodes in training mode (scores would depend "
            "on the batch); install onnx so birdinfer can fix them, or re-export the model "
            "after model.eval()"
        ) from exc
    proto = onnx.load_from_string(data)
    try:
        fixed = fix_training_batchnorm(proto)
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}; re-export the model after model.eval()") from exc
    if not fixed:
        return None
    log.warning(
        "%s: %d BatchNormalization nodes were exported in training mode; running them in "
        "inference mode (their stored statistics, as model.eval() does)",
        path,
        len(fixed),
    )
    return proto.SerializeToString()
