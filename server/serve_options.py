"""The flags of `kinetoscope serve`, defined once for the console script and `python -m kinetoscope.server.main`.

This module imports neither torch nor grpc, so that `kinetoscope --help` stays fast:
the defaults are plain numbers here, and a test holds them equal to `ServiceLimits`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEVICES = ("auto", "cpu", "cuda")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

JOBS_PER_DEVICE = 1
JOB_QUEUE_SIZE = 8
MAX_UPLOAD_MIB = 8 << 10
IMPORT_MEMORY_MIB = 8 << 10
IMPORT_TIMEOUT_S = 600
MAX_JOBS_PER_TOKEN = 16
MAX_TASKS_PER_JOB = 10_000
IMPORTS = 2
IMPORT_QUEUE_SIZE = 4


@dataclass(frozen=True)
class ServeOptions:
    """What `kinetoscope serve` was asked for, before anything heavy is imported."""

    address: str = DEFAULT_ADDRESS
    store: Path | None = None
    device: str = "auto"
    token: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    jobs_per_device: int = JOBS_PER_DEVICE
    queue: int = JOB_QUEUE_SIZE
    max_upload_mib: int = MAX_UPLOAD_MIB
    import_memory_mib: int = IMPORT_MEMORY_MIB
    import_timeout: int = IMPORT_TIMEOUT_S
    isolate_imports: bool = True
    max_jobs_per_token: int = MAX_JOBS_PER_TOKEN
    max_tasks_per_job: int = MAX_TASKS_PER_JOB
    imports: int = IMPORTS
    import_queue: int = IMPORT_QUEUE_SIZE
    log_level: str = "INFO"
    ray: str | None = None
    """None: tasks of stored jobs run in this process; `auto` or a Ray address: on that Ray cluster."""
    ray_workers: int | None = None
    """Device actors on the Ray cluster; None: one per GPU there, or one CPU actor on a cluster without GPUs."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ServeOptions":
        return cls(**{name: getattr(args, name) for name in cls.__dataclass_fields__ if hasattr(args, name)})

    def problem(self) -> str | None:
        """What is wrong with these options, in words a user can act on; None when nothing is."""
        if (self.tls_cert is None) != (self.tls_key is None):
            return "--tls-cert and --tls-key go together: give both, or neither for plain text"
        host, _, port = self.address.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            return f"--address takes HOST:PORT (e.g. {DEFAULT_ADDRESS}, port 0 picks a free one), not {self.address!r}"
        for flag, value in (("--jobs-per-device", self.jobs_per_device), ("--max-upload-mib", self.max_upload_mib),
                            ("--import-memory-mib", self.import_memory_mib), ("--import-timeout", self.import_timeout),
                            ("--max-jobs-per-token", self.max_jobs_per_token),
                            ("--max-tasks-per-job", self.max_tasks_per_job), ("--imports", self.imports)):
            if value < 1:
                return f"{flag} takes a positive number, not {value}"
        for flag, value in (("--queue", self.queue), ("--import-queue", self.import_queue)):
            if value < 0:
                return f"{flag} takes 0 or more, not {value}"
        for flag, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key)):
            if path is not None and not path.is_file():
                return f"{flag} {path} is not a file"
        if self.ray is not None and importlib.util.find_spec("ray") is None:
            return "--ray needs Ray, which is not installed here: install kinetoscope[ray] (pip install 'kinetoscope[ray]')"
        if self.ray_workers is not None and self.ray is None:
            return "--ray-workers goes with --ray: it says how many device actors to run on the Ray cluster"
        if self.ray_workers is not None and self.ray_workers < 1:
            return f"--ray-workers takes a positive number, not {self.ray_workers}"
        if self.ray is not None and not self.ray.strip():
            return "--ray takes `auto` (the Ray on this node, else a local one) or a cluster address such as ray://HEAD:10001"
        if self.store is not None and self.store.exists() and not self.store.is_dir():
            return f"--store {self.store} is a file; give a folder (it is created if missing)"
        return None


def add_serve_arguments(parser: argparse.ArgumentParser, *, global_store_and_token: bool = False) -> None:
    """Adds every `serve` flag.

    `global_store_and_token`: --store and --token also exist before the command (the
    console script's globals), so here they only override what was given there.
    """
    parser.add_argument("--address", default=DEFAULT_ADDRESS, metavar="HOST:PORT",
                        help=f"where to listen (default {DEFAULT_ADDRESS}; port 0 picks a free one)")
    keep_global = {"default": argparse.SUPPRESS} if global_store_and_token else {}
    add_store_argument(parser, **keep_global)
    add_token_argument(parser, help="require `authorization: Bearer TOKEN` on every call but health "
                                    "(default $KINETOSCOPE_TOKEN)", **keep_global)
    parser.add_argument("--device", default="auto", choices=DEVICES, help="where models run (default auto: cuda if present)")
    parser.add_argument("--ray", metavar="auto|ADDRESS",
                        help="run stored jobs' tasks on a Ray cluster: auto joins the one on this node (or starts one), "
                             "an address connects to it (needs kinetoscope[ray])")
    parser.add_argument("--ray-workers", type=int, metavar="N",
                        help="device actors on the Ray cluster (default: one per GPU, or one CPU actor without GPUs)")
    parser.add_argument("--tls-cert", type=Path, metavar="FILE", help="PEM certificate chain; with --tls-key turns on TLS")
    parser.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key (with --tls-cert)")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--jobs-per-device", type=int, default=JOBS_PER_DEVICE, metavar="N",
                        help="maximizations, recordings and job tasks running at once (default %(default)s)")
    limits.add_argument("--queue", type=int, default=JOB_QUEUE_SIZE, metavar="N",
                        help="maximize and record calls that may wait for a device slot (default %(default)s)")
    limits.add_argument("--imports", type=int, default=IMPORTS, metavar="N",
                        help="imports running at once, each in its own child process (default %(default)s)")
    limits.add_argument("--import-queue", type=int, default=IMPORT_QUEUE_SIZE, metavar="N",
                        help="imports that may wait for one of those (default %(default)s)")
    limits.add_argument("--max-upload-mib", type=int, default=MAX_UPLOAD_MIB, metavar="MIB",
                        help="largest model upload, model and external data together (default %(default)s)")
    limits.add_argument("--import-memory-mib", type=int, default=IMPORT_MEMORY_MIB, metavar="MIB",
                        help="memory one import's child process may use before the import is refused (default %(default)s)")
    limits.add_argument("--import-timeout", type=int, default=IMPORT_TIMEOUT_S, metavar="SECONDS",
                        help="seconds one import may take before it is stopped and refused (default %(default)s)")
    limits.add_argument("--max-jobs-per-token", type=int, default=MAX_JOBS_PER_TOKEN, metavar="N",
                        help="stored jobs (`kinetoscope jobs`) not yet ended per token (default %(default)s)")
    limits.add_argument("--max-tasks-per-job", type=int, default=MAX_TASKS_PER_JOB, metavar="N",
                        help="tasks (unit batches) one stored job may split into (default %(default)s)")
    limits.add_argument("--no-import-isolation", dest="isolate_imports", action="store_false",
                        help="import in the server process, without the child process and its limits")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS,
                        help="server log on stderr (default %(default)s)")


def add_store_argument(parser: argparse.ArgumentParser, **overrides) -> None:
    parser.add_argument("--store", type=Path, metavar="DIR", **{
        "default": None, "help": "model store folder (default $KINETOSCOPE_HOME or ~/.cache/kinetoscope)", **overrides})


def add_token_argument(parser: argparse.ArgumentParser, **overrides) -> None:
    parser.add_argument("--token", metavar="TOKEN", **{
        "default": os.environ.get("KINETOSCOPE_TOKEN"), "help": "bearer token (default $KINETOSCOPE_TOKEN)", **overrides})
