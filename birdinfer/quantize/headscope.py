"""Which nodes stay in float when a CNN is quantized: the head, found from the graph.

The head is everything between the global pooling and the output: the pooling itself, flatten /
reshape / transpose, a norm (ConvNeXt), the classifier's MatMul or Gemm and its bias. It works on
(batch, channels) vectors, so quantizing it saves nothing measurable, and it is where INT8 breaks
a multi-label model (BIRDCLEF.md: teams lost score when the head was quantized; the 2024 4th place
kept head and pool in float and lost nothing).

It is found by walking back from every graph output along data inputs (not constants, not shape
or axis inputs) until a global pooling node, which is included. A path that reaches a convolution
first (a head without a recognisable pool) stops there, with the convolution left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

# Ops whose inputs after the first are shapes or axes, never data.
SHAPE_ARG_OPS = {
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "ReduceMean",
    "ReduceMax",
    "ReduceSum",
    "MVN",
    "Flatten",
    "Gather",
}
# ONNX and OpenVINO spellings.
POOL_OPS = {"GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax"}
CONV_OPS = {"Conv", "ConvTranspose", "Convolution", "GroupConvolution"}
NON_DATA_OPS = {"Constant", "ShapeOf", "Range", "Parameter", "Shape"}


def walk_head(
    outputs: Iterable[str],
    producers: Callable[[str], list[tuple[str, str]]],
    op_type: Callable[[str], str],
) -> list[str]:
    """Node names from the outputs back to (and including) the global pooling.

    `producers(node)` lists (name, op type) of the nodes feeding `node`'s data inputs.
    """
    head: list[str] = []
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        kind = op_type(name)
        if kind in CONV_OPS or kind in NON_DATA_OPS:
            continue
        head.append(name)
        if kind in POOL_OPS:
            continue
        stack.extend(p for p, p_kind in producers(name) if p_kind not in NON_DATA_OPS)
    return head


def onnx_head_nodes(model) -> list[str]:
    """Head node names of an onnx.ModelProto (the names `nodes_to_exclude` expects)."""
    graph = model.graph
    by_output = {}
    for node in graph.node:
        for out in node.output:
            by_output[out] = node
    nodes = {node.name: node for node in graph.node}

    def producers(name: str) -> list[tuple[str, str]]:
        node = nodes[name]
        inputs = node.input[:1] if node.op_type in SHAPE_ARG_OPS else node.input
        found = [by_output[i] for i in inputs if i in by_output]
        # A node fed by initializers only (an Identity of a weight) is a constant.
        return [(p.name, p.op_type if _fed_by_nodes(p) else "Constant") for p in found]

    def _fed_by_nodes(node) -> bool:
        return any(i in by_output for i in node.input)

    outputs = [by_output[o.name].name for o in graph.output if o.name in by_output]
    if any(not node.name for node in graph.node):
        raise ValueError("the ONNX graph has unnamed nodes; cannot name an ignored scope")
    return walk_head(outputs, producers, lambda n: nodes[n].op_type)


def openvino_head_nodes(model) -> list[str]:
    """Head node (friendly) names of an openvino.Model (the names NNCF's IgnoredScope expects)."""
    ops = {op.get_friendly_name(): op for op in model.get_ordered_ops()}

    def producers(name: str) -> list[tuple[str, str]]:
        op = ops[name]
        values = op.input_values()
        if op.get_type_name() in SHAPE_ARG_OPS:
            values = values[:1]
        return [(v.get_node().get_friendly_name(), _ov_kind(v.get_node())) for v in values]

    outputs = [
        result.input_value(0).get_node().get_friendly_name() for result in model.get_results()
    ]
    return walk_head(outputs, producers, lambda n: _ov_kind(ops[n]))


def _ov_kind(op) -> str:
    """The op's type, with a Convert of a constant (decompressed weights) counted as a Constant."""
    kind = op.get_type_name()
    if kind == "Convert" and op.input_value(0).get_node().get_type_name() == "Constant":
        return "Constant"
    return kind


def describe(names: list[str]) -> str:
    return ", ".join(names) if names else "(none)"
