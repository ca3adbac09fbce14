"""Floating-point operations of one traced training step, counted from its graph: every matrix product and
convolution of the forward and the backward passes (Conv2D, Conv2DBackpropInput (also the forward of a transposed
conv), Conv2DBackpropFilter, MatMul, BatchMatMul) from the static shapes of the ops' tensors, 2 FLOPs per
multiply-add. Element-wise work (norms, activations, the optimizer's updates) is left out: a few percent of these
networks' FLOPs, and no peak figure to compare it with. Nested functions in the graph's library are counted as
many times as they are called."""
from __future__ import annotations

import math

CONVOLUTIONS = {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"}
CALLS = {"PartitionedCall", "StatefulPartitionedCall"}


def _dims(tensor) -> list[int] | None:
    shape = tensor.shape
    if shape.rank is None or any(d is None for d in shape.as_list()):
        return None
    return shape.as_list()


def op_flops(op) -> int:
    """FLOPs of one graph op (0 for what is not counted, or whose shapes are unknown)."""
    if op.type in CONVOLUTIONS:
        # The convolution's output gradient (Conv2D: its output) times kh * kw * c_in multiply-adds per element.
        out = _dims(op.outputs[0] if op.type == "Conv2D" else op.inputs[2])
        kernel = _dims(op.inputs[1]) if op.type != "Conv2DBackpropFilter" else _dims(op.outputs[0])
        if out is None or kernel is None:
            return 0
        return 2 * math.prod(out) * kernel[0] * kernel[1] * kernel[2]
    if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a, out = _dims(op.inputs[0]), _dims(op.outputs[0])
        if a is None or out is None:
            return 0
        transposed = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
        inner = a[-2] if transposed else a[-1]
        return 2 * math.prod(out) * inner
    return 0


def graph_flops(graph) -> int:
    """FLOPs of one run of `graph` (a FuncGraph), nested function calls included."""
    library = {name: function.graph for name, function in getattr(graph, "_functions", {}).items()
               if hasattr(function, "graph")}
    total = 0
    for op in graph.get_operations():
        total += op_flops(op)
        if op.type in CALLS:
            called = library.get(op.get_attr("f").name)
            if called is not None:
                total += graph_flops(called)
    return total


def step_flops(function, *args) -> int:
    """FLOPs of one call of the tf.function `function` on `args` (traced, not run)."""
    return graph_flops(function.get_concrete_function(*args).graph)
