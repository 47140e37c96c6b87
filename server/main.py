"""`kinetoscope serve`: build the gRPC server (services, health, reflection, auth, TLS) and run it."""

from __future__ import annotations

import argparse
import glob
import logging
import os
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kinetoscope.home import default_store
from kinetoscope.v1 import kinetoscope_pb2 as pb, kinetoscope_pb2_grpc as pb_grpc

from . import sandbox
from .allocator import retain_freed_memory
from .library import ModelLibrary
from .recordings import RecordingStore
from .serve_options import DEFAULT_ADDRESS, ServeOptions, add_serve_arguments
from .service import (
    AnalysisServicer,
    BearerTokenInterceptor,
    JobManager,
    JobQueue,
    JobServicer,
    LocalExecutor,
    ModelServicer,
    RecordingServicer,
    ServiceLimits,
    VisualizationServicer,
    enable_reflection,
    local_runner,
)
from .jobs import JobStore
from .store import ModelStore

_LOGGER = logging.getLogger(__name__)

SERVICES = tuple(pb.DESCRIPTOR.services_by_name[name].full_name
                 for name in ("ModelService", "VisualizationService", "RecordingService", "AnalysisService",
                                "JobService"))
_MESSAGE_BYTES = 8 << 20
"""Largest message either way; the protocol never needs more than ~1 MiB (chunks), this leaves headroom."""


@dataclass
class Server:
    """What create_server builds; `serve` needs the health servicer to announce a shutdown."""

    grpc_server: grpc.Server
    port: int
    health: health.HealthServicer
    jobs: JobQueue
    library: ModelLibrary
    device: str
    recordings: RecordingStore | None = None
    job_manager: JobManager | None = None
    imports: JobQueue | None = None
    """The import children's queue (`jobs` is the device's)."""

    def stop(self, grace: float | None = None):
        """Stops the stored jobs' tasks (they resume on the next start), then the gRPC server."""
        if self.job_manager is not None:
            self.job_manager.shutdown()
        return self.grpc_server.stop(grace)


class ServerHandle:
    """What create_server returns: the grpc.Server, whose `stop` also stops the stored jobs' running tasks."""

    def __init__(self, built: Server) -> None:
        self._built = built

    def stop(self, grace: float | None):
        return self._built.stop(grace)

    def __getattr__(self, name: str):
        return getattr(self._built.grpc_server, name)


def create_server(
    address: str = "127.0.0.1:0",
    store_dir: str | Path | None = None,
    token: str | None = None,
    tls: tuple[bytes, bytes] | None = None,
    limits: ServiceLimits = ServiceLimits(),
    device: str = "cpu",
    *,
    jobs: JobQueue | None = None,
    warm_imports: bool = False,
    resume_jobs: bool = True,
    ray: str | None = None,
    ray_workers: int | None = None,
) -> tuple[grpc.Server, int]:
    """A server bound to `address`, not yet started (call `.start()`), and its port, as in grpc's examples.

    `tls` is (certificate chain PEM, private key PEM); `jobs` is built from `limits`
    unless given (tests pass one to watch the jobs); `warm_imports` starts the import
    child's forkserver at once (for a caller about to import); `resume_jobs` runs the
    stored jobs a stopped server left unfinished (an embedded server answering a quick
    command leaves them for the next `serve`, `sweep` or `jobs`); `ray` (auto or an
    address) runs those jobs' tasks on a Ray cluster, on `ray_workers` device actors (None: one per GPU there).
    """
    built = build_server(address, store_dir, token=token, tls=tls, limits=limits, device=device, jobs=jobs,
                         warm_imports=warm_imports, resume_jobs=resume_jobs, ray=ray, ray_workers=ray_workers)
    return ServerHandle(built), built.port


def build_server(
    address: str = "127.0.0.1:0",
    store_dir: str | Path | None = None,
    *,
    token: str | None = None,
    tls: tuple[bytes, bytes] | None = None,
    limits: ServiceLimits = ServiceLimits(),
    device: str = "cpu",
    jobs: JobQueue | None = None,
    warm_imports: bool = False,
    resume_jobs: bool = True,
    ray: str | None = None,
    ray_workers: int | None = None,
) -> Server:
    library = ModelLibrary(ModelStore(store_dir or default_store()), sandbox=limits.sandbox())
    if warm_imports and library.sandbox is not None:
        sandbox.warm_up()  # seconds of imports in another process, while this one starts
    device = resolve_device(device)
    recordings = RecordingStore(library.store.root)
    admission = limits.admission(jobs)
    jobs = admission.device
    # A thread per call that may block: running + queued device calls (maximize, record, analyze), running + queued
    # imports, and a few for quick calls (Watch streams of stored jobs hold one each while they follow a job).
    workers = jobs.slots + jobs.queue_size + admission.imports.slots + admission.imports.queue_size + 8
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kinetoscope-rpc"),
        interceptors=[BearerTokenInterceptor(token)] if token else [],
        options=[("grpc.max_receive_message_length", _MESSAGE_BYTES), ("grpc.max_send_message_length", _MESSAGE_BYTES)],
        maximum_concurrent_rpcs=workers,
    )
    pb_grpc.add_ModelServiceServicer_to_server(ModelServicer(library, limits, admission.imports), server)
    pb_grpc.add_VisualizationServiceServicer_to_server(VisualizationServicer(library, jobs, limits, device, recordings), server)
    pb_grpc.add_RecordingServiceServicer_to_server(RecordingServicer(library, recordings, limits, device, jobs), server)
    pb_grpc.add_AnalysisServiceServicer_to_server(AnalysisServicer(library, recordings, limits, device, jobs), server)
    executor = make_executor(library, limits, recordings, device, jobs, ray, ray_workers)
    manager = JobManager(JobStore(library.store.root), library.store, executor, limits, recordings)
    if resume_jobs:
        manager.resume()
    pb_grpc.add_JobServiceServicer_to_server(JobServicer(manager), server)
    health_servicer = register_health_and_reflection(server)
    if tls is not None:
        cert, key = tls
        port = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    else:
        port = server.add_insecure_port(address)
    _LOGGER.info("kinetoscope bound to %s (port %d, device %s, store %s%s%s)", address, port, device,
                 library.store.root, ", TLS" if tls else "", ", token required" if token else "")
    return Server(server, port, health_servicer, jobs, library, device, recordings, manager, admission.imports)


def make_executor(library: ModelLibrary, limits: ServiceLimits, recordings: RecordingStore, device: str,
                  jobs: JobQueue, ray: str | None, ray_workers: int | None = None):
    """Where stored jobs' tasks run: this server's device slots, or (`ray`: auto or an address) a Ray cluster."""
    if ray is None:
        return LocalExecutor(local_runner(library, limits, recordings, device), jobs)
    from .service.ray_executor import RayExecutor, RayOptions  # noqa: PLC0415 - Ray is optional

    return RayExecutor(library.store, recordings, limits, RayOptions(address=ray, actors=ray_workers))


def register_health_and_reflection(server: grpc.Server) -> health.HealthServicer:
    """grpc.health.v1 (SERVING for the server and each service) and server reflection v1 and v1alpha, in one place."""
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    enable_reflection((*SERVICES, health.SERVICE_NAME), server)
    return health_servicer


def gpu_device_nodes() -> bool:
    """Whether this machine may have a GPU torch can use: on Linux, NVIDIA's or ROCm's device files.

    Without them torch.cuda.is_available() is False, and the embedded server of a CLI
    command learns that without importing torch (most commands never need it)."""
    if not sys.platform.startswith("linux"):
        return sys.platform != "darwin"
    return bool(glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/kfd"))


def resolve_device(device: str) -> str:
    """auto → cuda when torch sees a GPU, else cpu; cuda without a GPU is an error."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda")
    if device == "cpu" or (device == "auto" and not gpu_device_nodes()):
        return "cpu"
    import torch  # noqa: PLC0415 - seconds; only where a GPU may be there

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return device


def serve(
    address: str = DEFAULT_ADDRESS,
    store_dir: str | Path | None = None,
    *,
    token: str | None = None,
    tls: tuple[bytes, bytes] | None = None,
    limits: ServiceLimits = ServiceLimits(),
    device: str = "auto",
    grace_s: float = 5.0,
    ray: str | None = None,
    ray_workers: int | None = None,
) -> None:
    """Runs until SIGINT/SIGTERM; then reports NOT_SERVING, lets calls finish for `grace_s` and stops."""
    built = build_server(address, store_dir, token=token, tls=tls, limits=limits, device=device, warm_imports=True,
                         ray=ray, ray_workers=ray_workers)
    built.grpc_server.start()
    stopping = threading.Event()

    def on_signal(signum, frame) -> None:
        _LOGGER.info("signal %d: shutting down", signum)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"kinetoscope serving on {address.rsplit(':', 1)[0]}:{built.port} (device {built.device})", flush=True)
        stopping.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        built.health.enter_graceful_shutdown()
        built.stop(grace_s).wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinetoscope serve", description="Serve kinetoscope.v1 over gRPC.")
    add_serve_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None, *, options: ServeOptions | None = None) -> int:
    """Runs the server from command-line flags, or from `options` the console script already parsed."""
    if options is None:
        parser = build_parser()
        options = ServeOptions.from_args(parser.parse_args(argv))
        if problem := options.problem():
            parser.error(problem)
    elif problem := options.problem():
        print(f"kinetoscope serve: {problem}", file=sys.stderr, flush=True)
        return 2
    logging.basicConfig(level=options.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kinetoscope").setLevel(options.log_level)  # also when the CLI configured logging first
    retain_freed_memory()  # every optimizer step frees and reallocates the same large blocks
    try:
        tls = (options.tls_cert.read_bytes(), options.tls_key.read_bytes()) if options.tls_cert else None
        limits = ServiceLimits(
            jobs_per_device=options.jobs_per_device, job_queue_size=options.queue,
            max_upload_bytes=options.max_upload_mib << 20, import_memory_bytes=options.import_memory_mib << 20,
            import_timeout_s=options.import_timeout, isolate_imports=options.isolate_imports,
            max_jobs_per_token=options.max_jobs_per_token, max_tasks_per_job=options.max_tasks_per_job,
            max_concurrent_imports=options.imports, import_queue_size=options.import_queue,
        )
        serve(options.address, options.store, token=options.token or None, tls=tls, limits=limits, device=options.device,
              ray=options.ray, ray_workers=options.ray_workers)
    except OSError as exc:
        print(f"kinetoscope serve: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}",
              file=sys.stderr, flush=True)
        return 1
    except RuntimeError as exc:
        if "bind" in str(exc).lower():
            print(f"kinetoscope serve: cannot listen on {options.address} (in use, or not an address of this machine); "
                  "choose another with --address HOST:PORT", file=sys.stderr, flush=True)
        else:
            print(f"kinetoscope serve: {exc}", file=sys.stderr, flush=True)
        return 1
    except ValueError as exc:
        print(f"kinetoscope serve: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
