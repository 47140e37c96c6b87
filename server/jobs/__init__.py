"""Where jobs live on disk: their records, their event logs and the content-keyed results of their tasks."""

from .store import JobStore

__all__ = ["JobStore"]
