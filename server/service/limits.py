"""ServiceLimits: what one call (or the whole server) may ask for before it is refused with RESOURCE_EXHAUSTED."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

_LOGGER = logging.getLogger(__name__)

GiB = 1 << 30


@dataclass(frozen=True)
class ServiceLimits:
    """Bounds checked before any work starts; every one is a positive integer (the queue may be 0)."""

    max_upload_bytes: int = 8 * GiB
    """A model file plus its external-data files, as uploaded to ImportModel."""
    max_units: int = 1024
    """Objectives in one Maximize call."""
    max_samples: int = 4096
    """Units × regularizer settings in one Maximize call."""
    max_iterations: int = 10_000
    """Optimizer steps of one Maximize call."""
    max_input_elements: int = 256 << 20
    """Optimized input values one Maximize call holds and returns: samples × Σ elements of the graph's inputs."""
    job_queue_size: int = 8
    """Maximize calls that may wait for a free device slot; one more is refused."""
    jobs_per_device: int = 1
    """Maximize calls running at once on the server's device."""
    max_concurrent_imports: int = 2
    """ImportModel calls receiving or importing at once (each holds its upload in memory)."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            least = 0 if item.name == "job_queue_size" else 1
            if not isinstance(value, int) or value < least:
                raise ValueError(f"ServiceLimits.{item.name} must be an integer >= {least}, got {value!r}")
