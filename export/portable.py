"""Rewrites that keep an exported graph equivalent while letting smaller runtimes read it.

Every export applies them before validation, so the default bundle is also the
one the C++ example runs: OpenCV's DNN importer (4.x) implements Unsqueeze for
one axis only ("Multidimensional unsqueeze"), while torch.onnx writes
`z[:, :, None, None]` as a single Unsqueeze with two axes.
"""

from __future__ import annotations

import numpy as np


def split_unsqueezes(model):
    """Replace each Unsqueeze of several constant axes by a chain of one-axis Unsqueezes (ascending axes)."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                      if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.input, *graph.value_info, *graph.output]
             if v.type.tensor_type.HasField("shape")}
    nodes = []
    for node in graph.node:
        axes = _axes(node, opset, constants)
        if axes is None or len(axes) < 2:
            nodes.append(node)
            continue
        rank = ranks.get(node.input[0])
        if any(a < 0 for a in axes) and rank is None:
            nodes.append(node)
            continue
        final = sorted(int(a) + (rank + len(axes) if a < 0 else 0) for a in axes)
        current = node.input[0]
        for step, axis in enumerate(final):
            output = node.output[0] if step == len(final) - 1 else f"{node.output[0]}__unsqueeze{step}"
            name = f"{node.name or node.output[0]}__axis{step}"
            if opset >= 13:
                graph.initializer.append(numpy_helper.from_array(np.array([axis], dtype=np.int64), name))
                nodes.append(helper.make_node("Unsqueeze", [current, name], [output], name=name + "_node"))
            else:
                nodes.append(helper.make_node("Unsqueeze", [current], [output], name=name + "_node", axes=[axis]))
            current = output
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def _axes(node, opset: int, constants: dict[str, np.ndarray]) -> list[int] | None:
    if node.op_type != "Unsqueeze" or node.domain not in ("", "ai.onnx"):
        return None
    if opset >= 13:
        return [int(a) for a in constants[node.input[1]].reshape(-1)] if len(node.input) > 1 and node.input[1] in constants else None
    return next(([int(a) for a in attr.ints] for attr in node.attribute if attr.name == "axes"), None)
