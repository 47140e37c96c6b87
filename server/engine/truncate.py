"""Cut a converted torch.fx graph after the layers an objective reads.

Maximizing a conv3 unit needs nothing after conv3; running the rest would only add
cost to every step.
"""

from __future__ import annotations

import copy
import operator

import torch
from torch import fx

from kinetoscope.server.importer.convert import tensor_sources


def truncate(module: fx.GraphModule, layers: list[str]) -> fx.GraphModule:
    """A GraphModule returning the named layers' tensors (a tuple), with the rest removed."""
    sources = tensor_sources(module)
    missing = [name for name in layers if name not in sources]
    if missing:
        known = ", ".join(list(sources)[:20])
        raise KeyError(f"no layer {', '.join(map(repr, missing))}; layers include {known} ...")
    by_module = {id(sub): name for name, sub in module.named_modules()}
    truncated = fx.GraphModule(module, copy.deepcopy(module.graph))
    graph = truncated.graph
    nodes = {node.target: node for node in graph.nodes if node.op == "call_module"}
    outputs = []
    for layer in layers:
        sub, index = sources[layer]
        node = nodes[by_module[id(sub)]]
        if index is not None:
            node = _getitem(graph, node, index)
        outputs.append(node)
    old_output = next(node for node in graph.nodes if node.op == "output")
    with graph.inserting_after(old_output):
        graph.output(tuple(outputs))
    graph.erase_node(old_output)
    graph.eliminate_dead_code()
    truncated.recompile()
    truncated.eval()
    return truncated


def _getitem(graph: fx.Graph, node: fx.Node, index: int) -> fx.Node:
    for user in node.users:
        if user.op == "call_function" and user.target is operator.getitem and user.args[1] == index:
            return user
    with graph.inserting_after(node):
        return graph.call_function(operator.getitem, (node, index))
