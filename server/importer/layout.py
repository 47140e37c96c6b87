"""Where channels, time and space are in each graph input, and what kind of input it is.

tf2onnx keeps TensorFlow's channel-last inputs (NHWC, NDHWC) and puts a Transpose to
channel-first right behind them; seeing that Transpose tells us the layout.
"""

from __future__ import annotations

from onnx import ModelProto

from kinetoscope.common import DEFAULT_RANGE, InputSpec, infer_kind

from .graph import consumers

_CHANNEL_FIRST = {2: "NC", 3: "NCW", 4: "NCHW", 5: "NCTHW"}
_CHANNEL_LAST_PERMS = {
    (0, 3, 1, 2): "NHWC",
    (0, 4, 1, 2, 3): "NTHWC",
    (0, 2, 1): "NWC",
}


def input_layout(model: ModelProto, name: str, rank: int) -> str:
    readers = consumers(model.graph).get(name, [])
    if readers and all(node.op_type == "Transpose" for node in readers):
        perms = {tuple(next((a.ints for a in node.attribute if a.name == "perm"), ())) for node in readers}
        if len(perms) == 1:
            layout = _CHANNEL_LAST_PERMS.get(perms.pop())
            if layout is not None:
                return layout
    return _CHANNEL_FIRST.get(rank, "N" + "?" * (rank - 1))


def describe_inputs(model: ModelProto, specs: dict[str, InputSpec]) -> list[InputSpec]:
    """Fill in layout, kind and value range where the caller left them out; say what was guessed."""
    described = []
    for name, spec in specs.items():
        layout = spec.layout or input_layout(model, name, len(spec.shape))
        guessed = []
        kind = spec.kind
        if kind is None and "C" in layout:
            kind = infer_kind(spec.shape[layout.index("C")], "T" in layout)
            guessed.append("kind")
        value_range = spec.value_range
        if value_range is None:
            value_range = DEFAULT_RANGE
            guessed.append("value_range")
        described.append(spec.with_(layout=layout, kind=kind, value_range=value_range, inferred=tuple(guessed)))
    return described
