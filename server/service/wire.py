"""The wire format: numpy ↔ Tensor / TensorChunk (≤ 1 MiB per message), stored models ↔ ModelInfo / Layer, declarations ↔ InputSpec."""

from __future__ import annotations

import json
import logging
import math
from typing import Iterable, Iterator

import numpy as np

from kinetoscope.tensors import CHUNK_BYTES, ChunkAssembler, WireError, assemble, from_tensor, to_chunks, to_tensor  # noqa: F401
from kinetoscope.common import parse_kind
from kinetoscope.server.importer import InputSpec
from kinetoscope.server.store import StoredModel
from kinetoscope.v1 import kinetoscope_pb2 as pb

_LOGGER = logging.getLogger(__name__)

# ---------------------------------------------------------------- models

def input_specs(declarations: Iterable[pb.InputDeclaration]) -> list[InputSpec]:
    """InputDeclarations → InputSpecs; raises WireError naming what is wrong."""
    specs = []
    for item in declarations:
        what = f"input declaration {item.name!r}"
        if not item.name:
            raise WireError("an input declaration has no name; name the graph input it declares")
        if any(d <= 0 for d in item.shape):
            raise WireError(f"{what}: shape {list(item.shape)} must have positive dimensions (or be empty to keep the graph's)")
        try:
            kind = parse_kind(item.kind).value if item.kind else None
        except ValueError as exc:
            raise WireError(f"{what}: {exc} (or leave it empty to infer)") from None
        value_range = None
        if item.has_range:
            if not (math.isfinite(item.low) and math.isfinite(item.high) and item.low < item.high):
                raise WireError(f"{what}: range {item.low}..{item.high} must be finite with low < high")
            value_range = (item.low, item.high)
        specs.append(InputSpec(name=item.name, shape=tuple(item.shape) or None, kind=kind, value_range=value_range))
    return specs


def model_info(stored: StoredModel) -> pb.ModelInfo:
    meta = stored.meta
    metadata = {str(k): str(v) for k, v in (meta.get("metadata") or {}).items()}
    parity = meta.get("parity") or {}
    return pb.ModelInfo(
        id=stored.id,
        name=stored.name,
        inputs=[
            pb.InputInfo(
                name=item["name"], shape=item["shape"], kind=item.get("kind") or "", layout=item.get("layout") or "",
                low=(item.get("range") or [0, 0])[0], high=(item.get("range") or [0, 0])[1],
                inferred=item.get("inferred") or [],
            )
            for item in meta.get("inputs", [])
        ],
        layer_count=int(meta.get("layers", len(meta.get("catalog", [])))),
        parity=pb.Parity(max_abs_err=parity.get("max_abs_err", 0.0), max_rel_err=parity.get("max_rel_err", 0.0)),
        bn_folded=int(meta.get("bn_folded", 0)),
        bn_remaining=int(meta.get("bn_remaining", 0)),
        outputs=meta.get("outputs", []),
        class_names=class_names(metadata),
        metadata=metadata,
        imported_at=float(meta.get("imported_at", 0.0)),
    )


def class_names(metadata: dict[str, str]) -> list[str]:
    """The `class_names` metadata (a JSON list), or none when absent or unreadable."""
    try:
        names = json.loads(metadata.get("class_names", "[]"))
    except ValueError:
        _LOGGER.warning("model metadata class_names is not a JSON list; ignoring it")
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def layer(entry: dict) -> pb.Layer:
    """A catalog entry (Layer.to_json()) as a proto."""
    return pb.Layer(
        name=entry["name"], node=entry.get("node", ""), op_type=entry.get("op_type", ""),
        shape=entry.get("shape", []), axes=entry.get("axes", ""), channels=int(entry.get("channels", 0)),
        inputs=entry.get("inputs", []), streams=entry.get("streams", ""),
        receptive_field={k: pb.AxisValues(axes=v) for k, v in (entry.get("receptive_field") or {}).items()},
        stride={k: pb.AxisValues(axes=v) for k, v in (entry.get("stride") or {}).items()},
    )
