"""Import models into the store and describe them: what the service and the local CLI share."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from kinetoscope.model_files import model_id as compute_model_id

from .importer.inputs import InputSpec, as_specs
from .importer.options import ImportOptions
from .model_meta import describe
from .sandbox import ImportCrashed, SandboxLimits, import_isolated
from .store import ModelStore, StoredModel

if TYPE_CHECKING:
    from .importer import ImportedModel

_LOGGER = logging.getLogger(__name__)


@dataclass
class ModelLibrary:
    """The store plus the imports that fill it and a small cache of converted models.

    With `sandbox` set (the server's default), import_bytes runs the import in a child
    process under those limits and stores the model only when the child accepted it;
    `load` then converts the stored, already accepted bytes in this process (see
    kinetoscope.server.sandbox for why). With `sandbox=None` everything runs here.
    """

    store: ModelStore
    options: ImportOptions = field(default_factory=ImportOptions)
    cache_size: int = 2
    """Imported (converted, verified) models kept in memory, most recently used first."""
    sandbox: SandboxLimits | None = field(default_factory=SandboxLimits)
    _cache: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _loading: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def import_bytes(
        self,
        data: bytes,
        *,
        name: str | None = None,
        inputs: Sequence[InputSpec | str] | None = None,
        external_data: Mapping[str, bytes] | None = None,
        progress: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> StoredModel:
        """Imports, then stores: nothing reaches the store unless the whole import succeeded.

        `should_stop` (checked while a sandboxed import runs) stops the child when it turns true.
        """
        declared = list(as_specs(inputs).values())
        model_id = compute_model_id(data, external_data)
        imported = None
        if self.sandbox is not None:
            described = import_isolated(data, inputs=declared, external_data=external_data, options=self.options,
                                        limits=self.sandbox, progress=progress, should_stop=should_stop)
            if described.get("id") != model_id:
                raise ImportCrashed(f"the import child described model {described.get('id')!r}, not {model_id}")
        else:
            from .importer import import_model  # noqa: PLC0415 - torch and onnx only where a model is converted

            imported = import_model(data, inputs=declared, external_data=external_data, options=self.options,
                                    progress=progress)
            described = describe(imported)
        meta = {
            **described,
            "name": name or model_id,
            "imported_at": time.time(),
            "declared_inputs": [spec_to_json(spec) for spec in declared],
        }
        stored = self.store.put(model_id, data, meta, external_data)
        self._forget(model_id)  # the same bytes may come with other external data or declarations
        if imported is not None:
            self._remember(imported)
        return stored

    def load(self, id_or_name: str) -> tuple[StoredModel, ImportedModel]:
        """A stored model and its imported torch graph, from the cache or imported again from the store.

        Importing again uses the stored bytes, external data and the caller's original
        input declarations, so it yields the same model the first import did.
        """
        stored = self.store.get(id_or_name)
        cached = self._cached(stored.id)
        if cached is not None:
            return stored, cached
        with self._loading:  # one re-import at a time; a second caller for the same model then hits the cache
            cached = self._cached(stored.id)
            if cached is not None:
                return stored, cached
            _LOGGER.info("importing stored model %s (%s) again", stored.id, stored.name)
            from .importer import import_model  # noqa: PLC0415 - torch and onnx only where a model is converted

            imported = import_model(
                stored.model_bytes(), inputs=declared_inputs(stored.meta),
                external_data=stored.external_data(), options=self.options,
            )
            self._remember(imported)
        return stored, imported

    def delete(self, id_or_name: str) -> StoredModel:
        stored = self.store.get(id_or_name)
        self.store.delete(stored.id)
        self._forget(stored.id)
        return stored

    def _forget(self, model_id: str) -> None:
        with self._lock:
            self._cache.pop(model_id, None)

    def _cached(self, model_id: str) -> ImportedModel | None:
        with self._lock:
            imported = self._cache.get(model_id)
            if imported is not None:
                self._cache.move_to_end(model_id)
            return imported

    def _remember(self, imported: ImportedModel) -> None:
        if self.cache_size <= 0:
            return
        with self._lock:
            self._cache[imported.id] = imported
            self._cache.move_to_end(imported.id)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)


def spec_to_json(spec: InputSpec) -> dict:
    """What the caller declared about one input (None where it left the importer to decide)."""
    return {
        "name": spec.name,
        "shape": list(spec.shape) if spec.shape is not None else None,
        "kind": spec.kind,
        "range": list(spec.value_range) if spec.value_range is not None else None,
    }


def declared_inputs(meta: dict) -> list[InputSpec]:
    """The input declarations a stored model was imported with.

    Models stored before declarations were kept fall back to their static shapes
    (the kind and range are then inferred again, as they were the first time unless declared).
    """
    if "declared_inputs" in meta:
        return [
            InputSpec(
                name=item["name"],
                shape=tuple(item["shape"]) if item.get("shape") is not None else None,
                kind=item.get("kind"),
                value_range=tuple(item["range"]) if item.get("range") is not None else None,
            )
            for item in meta["declared_inputs"]
        ]
    return [InputSpec(name=item["name"], shape=tuple(item["shape"])) for item in meta.get("inputs", [])]
