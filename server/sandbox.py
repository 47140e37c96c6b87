"""Run an import in a child process with memory and time limits, so that one model cannot take the server down.

Parsing, checking, shape inference, onnxruntime and the torch conversion are large C++
code bases fed with bytes a stranger chose. The child runs the whole import (load →
check → normalize → fold → convert → verify → catalog) under an address-space limit
(RLIMIT_AS, counted from what the child holds when it starts) and a wall-clock limit
the parent enforces by killing it. A child that runs out of memory, crashes or hangs
costs the caller a status code, never the server.

Which process: children are forked from a `forkserver` that imported the importer (and
with it torch, onnx and onnxruntime) once; the server itself never imports them for this. The forkserver is started by fork+exec, so
the multithreaded server is never forked itself, and an import starts in milliseconds
instead of paying the seconds a fresh interpreter takes to import torch.

What crosses: the model and its external files go in as raw bytes over a pipe; what
comes back is JSON (progress, then the stored metadata or an error), never a pickle,
so a child that a hostile model had taken over could not run code in the server. The
parent computes the model id itself.

Who converts: the child only proves the bytes import within the limits and describes
them; the parent stores them and converts them in-process later, when a job needs the
torch module (ModelLibrary.load), because that module has to live where the engine
runs. The import is deterministic, so those bytes are then known to import within the
same limits.
"""

from __future__ import annotations

import ctypes
import io
import itertools
import json
import logging
import multiprocessing
import os
import resource
import signal
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from multiprocessing import forkserver, popen_forkserver, spawn, util
from multiprocessing.connection import Connection, wait
from multiprocessing.context import reduction, set_spawning_popen
from typing import Callable, Mapping, Sequence

from .importer.errors import (
    ImportFailed,
    InvalidModel,
    ModelTooLarge,
    ParityError,
    UnsafeExternalData,
    UnsupportedModel,
)
from .importer.inputs import InputSpec
from .importer.options import ImportOptions

_LOGGER = logging.getLogger(__name__)
GiB = 1 << 30
_MAX_REPLY = 256 << 20
"""The largest JSON message a child may send (a catalog of a very deep network is a few MB)."""
_POLL_S = 0.1
SPOOL_BYTES = 64 << 20
"""Uploads this large are written to files in the child and imported from there (see `_import_child`)."""
_KNOWN_ERRORS = {cls.__name__: cls for cls in (
    ImportFailed, InvalidModel, ModelTooLarge, ParityError, UnsafeExternalData, UnsupportedModel)}
_LIMIT_SIGNALS = {signal.SIGKILL, signal.SIGXCPU}
"""A child ended by these was stopped for its resources (the kernel's OOM killer or the CPU-time backstop)."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one import may take; the defaults admit a two-stream ResNet-152 (about 0.5 GiB of weights)."""

    memory_bytes: int = 8 * GiB
    """Address space the child may add to what it holds when it starts (torch and onnxruntime already loaded)."""
    timeout_s: float = 600.0
    """Wall-clock seconds from the start of the child to its answer."""

    def __post_init__(self) -> None:
        if not isinstance(self.memory_bytes, int) or self.memory_bytes < 1:
            raise ValueError(f"SandboxLimits.memory_bytes must be a positive integer, got {self.memory_bytes!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"SandboxLimits.timeout_s must be positive, got {self.timeout_s!r}")


class ImportLimitExceeded(ModelTooLarge):
    """The child ran past its memory or time limit (RESOURCE_EXHAUSTED)."""

    stage = "sandbox"


class ImportCrashed(InvalidModel):
    """The child died without an answer, or failed in a way the importer does not name (INVALID_ARGUMENT)."""

    stage = "sandbox"


class ImportCancelled(ImportFailed):
    """The caller went away while the child worked; the child was stopped."""

    stage = "sandbox"


@dataclass(frozen=True)
class ChildJob:
    """What the child needs besides the bytes: picklable, sent from the parent to the child only."""

    inputs: list[InputSpec]
    options: ImportOptions
    external_names: list[str]
    limits: SandboxLimits
    spool_bytes: int = 0
    """Uploads of at least this many bytes are imported from files the child writes (see `_import_child`)."""


def import_isolated(
    data: bytes,
    *,
    inputs: Sequence[InputSpec] = (),
    external_data: Mapping[str, bytes] | None = None,
    options: ImportOptions = ImportOptions(),
    limits: SandboxLimits = SandboxLimits(),
    progress: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Imports `data` in a child process and returns model_meta.describe() of it (JSON types only).

    Raises the importer's own errors as the child reported them, ImportLimitExceeded,
    ImportCrashed or ImportCancelled.
    """
    external = dict(external_data or {})
    job = ChildJob(list(inputs), options, list(external), limits, SPOOL_BYTES)
    return run_child(_import_child, job, [data, *external.values()], limits, progress=progress, should_stop=should_stop)


def run_child(
    target: Callable[[ChildJob, list[bytes], Callable[[str], None]], dict],
    job: ChildJob,
    blobs: Sequence[bytes],
    limits: SandboxLimits,
    *,
    progress: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Runs `target(job, blobs, report)` in a limited child and returns its dict; `target` must be importable by name."""
    parent_end, child_end = multiprocessing.Pipe(duplex=True)
    process = _context().Process(target=_child_main, args=(child_end, target, job, len(blobs)), daemon=True,
                                 name="kinetoscope-import")
    process.start()  # the first one also starts the forkserver (seconds); the time limit counts from here
    child_end.close()
    watch = _Watch(process, parent_end, limits, time.monotonic(), should_stop)
    try:
        sender = threading.Thread(target=_send_all, args=(parent_end, blobs, watch), daemon=True,
                                  name="kinetoscope-import-send")
        sender.start()
        return watch.answer(progress)
    finally:
        if process.is_alive():
            process.kill()
        process.join(10)
        parent_end.close()
        if process.exitcode is None:
            _LOGGER.warning("import child %s did not end after SIGKILL", process.pid)
        else:
            process.close()


def _send_all(conn: Connection, blobs: Sequence[bytes], watch: "_Watch") -> None:
    """The bytes, in a thread: a large model fills the pipe while the child reads it, and the parent must keep watching."""
    try:
        for blob in blobs:
            conn.send_bytes(blob)
    except (OSError, ValueError):
        watch.send_failed = True  # the child died (or was killed) before reading everything; its exit says why


class _Watch:
    """The parent's side: read the child's messages, enforce the deadline, notice a cancel or a death."""

    def __init__(self, process, conn: Connection, limits: SandboxLimits, began: float,
                 should_stop: Callable[[], bool] | None) -> None:
        self.process, self.conn, self.limits, self.began, self.should_stop = process, conn, limits, began, should_stop
        self.stage = "start"
        self.send_failed = False

    def answer(self, progress: Callable[[str], None] | None) -> dict:
        deadline = self.began + self.limits.timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.process.kill()
                raise ImportLimitExceeded(
                    f"the import took longer than {self.limits.timeout_s:g} s (in stage {self.stage}), this server's "
                    "limit; it was stopped")
            if self.should_stop is not None and self.should_stop():
                self.process.kill()
                raise ImportCancelled(f"the call ended while the import was in stage {self.stage}; it was stopped")
            ready = wait([self.conn, self.process.sentinel], timeout=min(remaining, _POLL_S))
            if self.conn in ready:
                message = self._receive()
                if message is None:
                    return self._died()
                if "progress" in message:
                    self.stage = str(message["progress"])
                    if progress is not None:
                        progress(self.stage)
                    continue
                return _result(message)
            if self.process.sentinel in ready and not self.conn.poll():
                return self._died()

    def _receive(self) -> dict | None:
        try:
            raw = self.conn.recv_bytes(_MAX_REPLY)
        except (EOFError, OSError):
            return None
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self.process.kill()
            raise ImportCrashed("the import child sent a reply that is not a JSON object")
        return message

    def _died(self) -> dict:
        self.process.join(10)
        code = self.process.exitcode
        where = f"in stage {self.stage}"
        if code is not None and code < 0:
            number = -code
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"
            if number in _LIMIT_SIGNALS:
                raise ImportLimitExceeded(
                    f"the import was killed by {name} {where}; it needed more memory or CPU time than this server "
                    f"allows one import ({self.limits.memory_bytes:,} bytes of address space)")
            raise ImportCrashed(f"the importer crashed with {name} {where}; the model was not stored")
        raise ImportCrashed(f"the import child exited with status {code} {where} without an answer; the model was not stored")


def _result(message: dict) -> dict:
    if "ok" in message and isinstance(message["ok"], dict):
        return message["ok"]
    kind, text, stage = message.get("error"), str(message.get("message", "")), message.get("stage")
    if message.get("traceback"):
        _LOGGER.warning("import child failed unexpectedly:\n%s", message["traceback"])
    if kind == "MemoryError":
        raise ImportLimitExceeded(f"the import ran out of memory in stage {stage} ({text}); this server allows one "
                                  "import a limited amount of memory")
    cls = _KNOWN_ERRORS.get(str(kind))
    if cls is None:
        raise ImportCrashed(f"the importer failed on this model in stage {stage}: {kind}: {text}")
    error = cls(text)
    if stage:
        error.stage = str(stage)
    raise error


# ---------------------------------------------------------------- the child


def _child_main(conn: Connection, target: Callable, job: ChildJob, blob_count: int) -> None:
    stage = ["limits"]

    def send(message: dict) -> None:
        conn.send_bytes(json.dumps(message).encode())

    def report(name: str) -> None:
        stage[0] = name
        send({"progress": name})

    try:
        apply_limits(job.limits)
        report("receive")
        blobs = [conn.recv_bytes() for _ in range(blob_count)]
        answer = target(job, blobs, report)
        send({"ok": answer})
    except ImportFailed as exc:
        kind = "MemoryError" if _is_out_of_memory(exc) else type(exc).__name__  # onnxruntime's bad_alloc, wrapped
        send({"error": kind, "message": exc.args[0] if exc.args else "", "stage": exc.stage})
    except MemoryError as exc:
        send({"error": "MemoryError", "message": str(exc) or "allocation failed", "stage": stage[0]})
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which names it in the status
        kind = "MemoryError" if _is_out_of_memory(exc) else type(exc).__name__
        send({"error": kind, "message": str(exc)[:2000], "stage": stage[0], "traceback": traceback.format_exc()[-8000:]})
    finally:
        conn.close()


def _import_child(job: ChildJob, blobs: list[bytes], report: Callable[[str], None]) -> dict:
    from .importer import import_model  # noqa: PLC0415 - preloaded in the forkserver, never in the server
    from .model_meta import describe  # noqa: PLC0415 - only children need it

    if sum(len(blob) for blob in blobs) < job.spool_bytes:
        data, external = blobs[0], dict(zip(job.external_names, blobs[1:]))
        return describe(import_model(data, inputs=job.inputs, external_data=external, options=job.options,
                                     progress=report))
    with tempfile.TemporaryDirectory(prefix="kinetoscope-import-") as folder:
        # From files, the importer reads the weights tensor by tensor; from bytes it would
        # hold the upload beside the parsed graph for the whole import.
        path = Path(folder) / next(name for n in itertools.count() if (name := f"model-{n}.onnx") not in job.external_names)
        path.write_bytes(blobs[0])
        for name, blob in zip(job.external_names, blobs[1:]):
            (Path(folder) / name).write_bytes(blob)
        blobs.clear()
        from .importer.files import FileBlob  # noqa: PLC0415 - only children read spooled files

        every_upload = {name: FileBlob(Path(folder) / name) for name in job.external_names}  # the id covers them all
        return describe(import_model(path, inputs=job.inputs, external_data=every_upload, options=job.options,
                                     progress=report))


def _is_out_of_memory(exc: Exception) -> bool:
    text = str(exc).lower()
    return type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in text or "bad_alloc" in text or (
        "failed to allocate" in text)


def apply_limits(limits: SandboxLimits) -> None:
    """In the child: cap its address space and CPU time, write no core file, and die with the forkserver."""
    ceiling = _address_space() + limits.memory_bytes
    _lower(resource.RLIMIT_AS, ceiling)
    cpu_s = int(limits.timeout_s * max(1, os.cpu_count() or 1)) + 60  # a backstop for an orphan; the parent kills first
    _lower(resource.RLIMIT_CPU, cpu_s, hard_slack=10)  # SIGXCPU, then SIGKILL
    _lower(resource.RLIMIT_CORE, 0)
    _die_with_parent()


def _lower(which: int, value: int, hard_slack: int = 0) -> None:
    """Sets the soft limit to `value` and the hard one `hard_slack` above it, never above the current hard limit."""
    hard = resource.getrlimit(which)[1]

    def capped(v: int) -> int:
        return v if hard == resource.RLIM_INFINITY else min(v, hard)

    resource.setrlimit(which, (capped(value), capped(value + hard_slack)))


def _address_space() -> int:
    """This process's virtual size in bytes (VmSize)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the forkserver ends (it ends when the server does, even after a SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------- the forkserver

_CONTEXT_LOCK = threading.Lock()
FORKSERVER_PRELOAD = ["kinetoscope.server.forkserver_init", __name__, "kinetoscope.server.importer.pipeline",
                      "kinetoscope.server.model_meta"]
"""What the forkserver imports once, so that each child starts with torch, onnx, onnxruntime and the converter loaded."""


def warm_up() -> threading.Thread:
    """Start the forkserver now, in a thread, so that the first import does not wait for it.

    The forkserver imports torch, onnx, onnxruntime and the converter (seconds); a server
    that will import (`kinetoscope serve`, `kinetoscope import`) starts it while it does
    its own start-up and receives the upload."""
    thread = threading.Thread(target=lambda: (_context(), forkserver.ensure_running()), daemon=True,
                              name="kinetoscope-forkserver-start")
    thread.start()
    return thread


def _context() -> multiprocessing.context.BaseContext:
    """The forkserver context, preloading the importer into the forkserver once."""
    with _CONTEXT_LOCK:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(FORKSERVER_PRELOAD)
        return _ChildContext(context)


class _ChildContext:
    """Makes `_ChildProcess`es: forkserver children that do not run the parent's `__main__` again.

    multiprocessing re-imports the main module in every forkserver child; a script that
    uses an embedded server without an `if __name__ == "__main__"` guard would then start
    itself again in the child. The import needs nothing from `__main__`.
    """

    def __init__(self, context) -> None:
        self.context = context

    def Process(self, **kwargs):  # noqa: N802 - mirrors multiprocessing's context API
        return _ChildProcess(**kwargs)


class _ChildProcess(multiprocessing.context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):  # noqa: N802 - multiprocessing's hook name
        return _Popen(process_obj)


class _Popen(popen_forkserver.Popen):
    """popen_forkserver.Popen, with the main module left out of the child's preparation data."""

    def _launch(self, process_obj) -> None:
        prep_data = {key: value for key, value in spawn.get_preparation_data(process_obj._name).items()
                     if key not in ("init_main_from_name", "init_main_from_path")}
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        parent_w = os.dup(w)  # the child watches this end to learn that the parent is gone
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as pipe:
            pipe.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)
