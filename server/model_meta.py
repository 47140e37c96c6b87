"""What the store keeps about an imported model, as JSON: the same whether the import ran here or in a child process."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .importer import ImportedModel


def describe(imported: ImportedModel) -> dict:
    """The import's summary, outputs, catalog, per-output parity and the file's metadata properties."""
    return {
        **imported.summary(),
        "outputs": imported.output_names,
        "catalog": [layer.to_json() for layer in imported.catalog],
        "parity_outputs": imported.parity.outputs,
        "metadata": imported.metadata,
    }
