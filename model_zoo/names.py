"""Give exported tensors the names of the modules that make them (`rgb/conv3_3`, `conv5_fusion`, `fc6`).

The TorchScript exporter names nodes after module paths (`/rgb/conv3_3/Conv`) but
tensors after ops (`/rgb/conv3_3/Conv_output_0`). Each module scope's last node is
what the module returns, so its output takes the scope's name; the outermost scope
wins, so a residual block's output is `rgb/res4b` rather than its inner ReLU's name.
"""

from __future__ import annotations

from onnx import ModelProto


def name_tensors_after_modules(model: ModelProto) -> int:
    """Rename in place; return how many tensors got a module name."""
    graph = model.graph
    last_in_scope: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        parts = node.name.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            last_in_scope["/".join(parts[:depth])] = index
    protected = {v.name for v in graph.input} | {v.name for v in graph.output} | {i.name for i in graph.initializer}
    taken = set(protected) | {o for n in graph.node for o in n.output}
    renames: dict[str, str] = {}
    for scope in sorted(last_in_scope, key=lambda s: s.count("/")):
        node = graph.node[last_in_scope[scope]]
        tensor = node.output[0] if node.output else ""
        if not tensor or tensor in protected or tensor in renames or scope in taken:
            continue
        renames[tensor] = scope
        taken.add(scope)
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in graph.value_info:
        value.name = renames.get(value.name, value.name)
    return len(renames)
