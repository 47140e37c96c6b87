"""Import models into the store and describe them: what the service and the local CLI share."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from .importer import ImportOptions, InputSpec, import_model
from .store import ModelStore, StoredModel


@dataclass
class ModelLibrary:
    store: ModelStore
    options: ImportOptions = field(default_factory=ImportOptions)

    def import_bytes(
        self,
        data: bytes,
        *,
        name: str | None = None,
        inputs: Sequence[InputSpec | str] | None = None,
        external_data: Mapping[str, bytes] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> StoredModel:
        imported = import_model(data, inputs=inputs, external_data=external_data, options=self.options, progress=progress)
        summary = imported.summary()
        meta = {
            **summary,
            "name": name or imported.id,
            "imported_at": time.time(),
            "outputs": imported.output_names,
            "catalog": [layer.to_json() for layer in imported.catalog],
            "parity_outputs": imported.parity.outputs,
            "metadata": {p.key: p.value for p in imported.graph.metadata_props},
        }
        return self.store.put(imported.id, data, meta, external_data)
