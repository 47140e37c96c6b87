"""ServiceLimits: what one call (or the whole server) may ask for before it is refused with RESOURCE_EXHAUSTED."""

from __future__ import annotations

from dataclasses import dataclass, fields

from kinetoscope.server.sandbox import SandboxLimits

from .jobs import Admission, JobQueue

GiB = 1 << 30


@dataclass(frozen=True)
class ServiceLimits:
    """Bounds checked before any work starts; every number is a positive integer (the queue may be 0)."""

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
    """Maximize and Record calls and job tasks that may wait for a free device slot; one more call is refused."""
    jobs_per_device: int = 1
    """Maximize and Record calls and job tasks running at once on the server's device."""
    max_jobs_per_token: int = 16
    """Stored jobs (JobService) not yet ended per bearer token (all callers share one quota without a token)."""
    max_tasks_per_job: int = 10_000
    """Tasks one stored job may split into."""
    max_concurrent_imports: int = 2
    """ImportModel calls receiving or importing at once (each holds its upload in memory)."""
    import_queue_size: int = 4
    """ImportModel calls that may wait for an import slot (before receiving their upload); one more is refused."""
    max_record_clips: int = 1_000_000
    """Clips in one Record call."""
    max_clip_bytes: int = 256 << 20
    """One clip of a Record call: the bytes of all its input tensors together."""
    max_record_layers: int = 64
    """Layers one Record call records."""
    max_top_k: int = 100
    """Top clips kept per channel."""
    max_histogram_bins: int = 1024
    max_classes: int = 100_000
    """Labels of a model without class_names must lie below this."""
    max_recording_bytes: int = 6 << 20
    """A recording's statistics as one GetRecording reply (the server sends at most 8 MiB per message)."""
    max_kept_clip_bytes: int = 256 << 20
    """The clips of one recording stored with it for Analyze; a recording past this keeps its statistics only."""
    import_memory_bytes: int = 8 * GiB
    """Address space one import's child process may add to what it starts with; past it the import is refused."""
    import_timeout_s: int = 600
    """Wall-clock seconds one import may take in its child process before it is stopped and refused."""
    isolate_imports: bool = True
    """Run each import in a child process under the two limits above (False: in the server process, unlimited)."""

    def sandbox(self) -> SandboxLimits | None:
        """What ModelLibrary runs imports under (None: in the server process)."""
        if not self.isolate_imports:
            return None
        return SandboxLimits(memory_bytes=self.import_memory_bytes, timeout_s=float(self.import_timeout_s))

    def admission(self, device: JobQueue | None = None) -> Admission:
        """The device's queue (`device` when given: tests watch their own) and the import children's."""
        return Admission(device=device or JobQueue(self.jobs_per_device, self.job_queue_size),
                         imports=JobQueue(self.max_concurrent_imports, self.import_queue_size, kind="import"))

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "isolate_imports":
                if not isinstance(value, bool):
                    raise ValueError(f"ServiceLimits.isolate_imports must be True or False, got {value!r}")
                continue
            least = 0 if item.name in ("job_queue_size", "import_queue_size") else 1
            if not isinstance(value, int) or value < least:
                raise ValueError(f"ServiceLimits.{item.name} must be an integer >= {least}, got {value!r}")
