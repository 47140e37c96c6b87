"""Everything that runs where the model runs: importer, engine, store, service."""
