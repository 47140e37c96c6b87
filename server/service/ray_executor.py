"""RayExecutor: the job tasks of this server on a Ray cluster, one actor per device, the server still the only writer of the store.

The server stays the driver: it plans jobs, keeps their records and writes results,
exactly as with the LocalExecutor. A task goes to a device actor with references to
its model's (and recording's) stored files, put into the cluster once per id; the
actor mirrors them into a private store, imports the model through ModelLibrary's
in-process load path (converted models kept in an LRU bounded by bytes) and runs the
same runner as the local executor. Ray restarts a dead actor and retries its task;
the driver receives one result per task, so a unit is never lost nor written twice.

`ray` is an optional dependency (kinetoscope[ray]) and is imported only here.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kinetoscope.server.library import ModelLibrary
from kinetoscope.server.recordings import RecordingStore
from kinetoscope.server.store import ModelStore
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .executor import QueuedExecutor, StepNote, TaskFuture, TaskOutcome, TaskSpec
from .limits import ServiceLimits

_LOGGER = logging.getLogger(__name__)

INSTALL_HINT = "install kinetoscope[ray] (pip install 'kinetoscope[ray]'), or serve without --ray"
_SKIPPED_FILES = frozenset({"clips.npz"})
"""A recording's kept clips: never read by a maximization, so never shipped."""


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached; the message says what to do."""


def import_ray() -> Any:
    try:
        import ray  # noqa: PLC0415 - optional dependency, only where --ray asks for it
    except ImportError:
        raise RayUnavailable(f"--ray needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


def connect(address: str = "auto", *, num_cpus: int | None = None) -> bool:
    """Joins the Ray cluster at `address` (`auto`: the one on this node, else a new local instance).

    Returns whether this call started Ray in this process (its caller then shuts it down).
    Ray's own log lines stay off the console.
    """
    ray = import_ray()
    route_cluster_messages(ray)
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address != "auto":
        if not reachable(address):
            raise RayUnavailable(f"cannot reach a Ray cluster at {address}; check --ray (HOST:PORT of the head's GCS, "
                                 "or ray://HOST:10001), or use --ray auto")
        ray.init(address=address, **quiet)
        return True
    running = local_cluster()
    if running is not None and reachable(running):
        try:
            ray.init(address="auto", **quiet)
            return True
        except ConnectionError:
            pass
    start_local(ray, num_cpus, quiet)
    return True


def start_local(ray: Any, num_cpus: int | None, quiet: dict, attempts: int = 2) -> None:
    """A new local Ray instance; tried again once where its GCS or raylet missed Ray's own start-up waits (30 s for the
    raylet), as they may on a busy machine."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
            return
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception for a raylet that did not register
            if "timed out" not in str(exc).lower() or attempt == attempts:
                raise RayUnavailable(f"could not start a local Ray instance: {exc}") from exc
            _LOGGER.warning("the local Ray instance did not start in time (a busy machine?); trying again")
            ray.shutdown()


def route_cluster_messages(ray: Any) -> None:
    """Sends the cluster's messages to the driver (a task retried after its actor died, …) to the server log.

    Ray prints them on the driver's stdout from a thread of its own, `log_to_driver=False`
    or not. The executor already reports what matters (a task that failed for good); these
    lines show with `--log-level DEBUG` only.
    """
    worker = getattr(getattr(ray, "_private", None), "worker", None)
    if worker is None or getattr(getattr(worker, "print_to_stdstream", None), "routed", False):
        return

    def to_log(data: dict, ignore_prefix: bool = False) -> None:
        for line in data.get("lines", ()):
            _LOGGER.debug("ray %s: %s", data.get("pid", ""), str(line).rstrip())

    to_log.routed = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_log


def local_cluster() -> str | None:
    """The address `ray.init(address="auto")` would join: $RAY_ADDRESS, else the cluster `ray start` recorded here."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    recorded = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        return recorded.read_text().strip() or None
    except OSError:
        return None


def reachable(address: str, timeout_s: float = 3.0) -> bool:
    """Whether something listens at a Ray address (HOST:PORT or ray://HOST:PORT); Ray itself would wait minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return False
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class RayOptions:
    """How the executor uses the cluster."""

    address: str = "auto"
    actors: int | None = None
    """Device actors; None: one per GPU in the cluster, or one CPU actor where it has none."""
    gpus_per_actor: float | None = None
    """None: 1 where the cluster has GPUs, else 0 (CPU actors)."""
    cache_bytes: int = 4 << 30
    """Converted models each actor keeps, by parameter and buffer bytes (the newest is always kept)."""
    max_restarts: int = 4
    max_task_retries: int = 4
    poll_s: float = 0.2
    """How often the driver forwards progress and stop requests while a task runs."""
    torch_threads: int | None = None
    """torch threads per actor; None: where every node of the cluster is this machine, its cores shared among the
    actors (two actors with two threads each on two cores run 3.6× slower than one); elsewhere Ray's own (one
    per CPU the actor holds)."""
    niceness: int = 0
    """The device actors' scheduling niceness. Ray starts its workers at 15, below every other process on the
    node; on a node whose CPUs also serve the raylet, the GCS or this server, a device actor at 15 ran the same
    task 5-30 % slower than the local executor's slot does at 0."""
    rescale_s: float = 10.0
    """With actors and gpus_per_actor left to the cluster: how often a submit counts its GPUs again, so GPU
    workers that join later (a head started before its worker group) get actors, and a CPU actor retires."""


@dataclass(frozen=True)
class FolderPackage:
    """One stored model or recording folder as files, so an actor on any node can mirror it."""

    kind: str
    """models or recordings: the store folder it belongs in."""
    id: str
    files: dict[str, bytes]
    """Path relative to the folder → content."""

    @classmethod
    def read(cls, kind: str, folder: Path) -> "FolderPackage":
        files = {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*"))
                 if path.is_file() and not path.is_symlink() and path.name not in _SKIPPED_FILES}
        return cls(kind, folder.name, files)

    def install(self, root: Path) -> None:
        final = root / self.kind / self.id
        if final.exists():
            return
        staging = root / self.kind / f".incoming-{self.id}-{uuid.uuid4().hex[:8]}"
        for name, blob in self.files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
        staging.rename(final)


def module_bytes(imported: Any) -> int:
    """Bytes of a converted model's parameters and buffers (shared tensors counted once)."""
    seen: dict[int, int] = {}
    for tensor in imported.module.state_dict(keep_vars=True).values():
        seen[tensor.data_ptr()] = tensor.numel() * tensor.element_size()
    return sum(seen.values())


@dataclass
class BytesBoundedLibrary(ModelLibrary):
    """ModelLibrary whose cache of converted models is bounded by bytes instead of a count."""

    cache_bytes: int = 4 << 30
    _sizes: dict = field(default_factory=dict, init=False, repr=False)

    def _remember(self, imported: Any) -> None:
        size = module_bytes(imported)
        with self._lock:
            self._cache[imported.id] = imported
            self._cache.move_to_end(imported.id)
            self._sizes[imported.id] = size
            while len(self._cache) > 1 and sum(self._sizes.get(key, 0) for key in self._cache) > self.cache_bytes:
                evicted, _ = self._cache.popitem(last=False)
                self._sizes.pop(evicted, None)

    @property
    def cached_ids(self) -> list[str]:
        with self._lock:
            return list(self._cache)


class DeviceWorker:
    """The body of one device actor: a private store mirror, a model cache and the local runner.

    Methods may run concurrently (a threaded actor): `run` holds the device, while
    `notes` and `stop` answer the driver between optimizer steps. The runner itself always
    runs on one thread of the actor's own, whichever of Ray's threads took the call: torch
    on a second thread keeps a second OpenMP team, which slows every later small op (see
    JobQueue).
    """

    def __init__(self, limits: ServiceLimits, device: str, cache_bytes: int, torch_threads: int | None = None) -> None:
        from kinetoscope.server.allocator import retain_freed_memory  # noqa: PLC0415

        from .job_service import local_runner  # noqa: PLC0415 - imported where the actor lives

        # As `kinetoscope serve` does for its own device slots: without it every optimizer step gets its large
        # blocks back as fresh pages from the kernel, and an actor ran the same task 5-10 % slower than the server.
        self.retains_freed_memory = retain_freed_memory()
        device = _usable(device)
        self.root = Path(tempfile.mkdtemp(prefix="kinetoscope-ray-"))
        self.library = BytesBoundedLibrary(ModelStore(self.root), sandbox=None, cache_size=1 << 30, cache_bytes=cache_bytes)
        self.runner = local_runner(self.library, limits, RecordingStore(self.root), device)
        self.device = device
        self._device_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kinetoscope-device")
        if torch_threads is not None:
            import torch  # noqa: PLC0415

            self._device_thread.submit(torch.set_num_threads, torch_threads).result()
        self.instance = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._stops: dict[str, int] = {}
        """Token → the steps the task had reported when its stop arrived."""
        self._notes: dict[str, list[StepNote]] = {}

    def describe(self) -> dict:
        import ray  # noqa: PLC0415

        import torch  # noqa: PLC0415

        return {"device": self.device, "node": ray.get_runtime_context().get_node_id(), "instance": self.instance,
                "cached": self.library.cached_ids, "retains_freed_memory": self.retains_freed_memory, "niceness": os.nice(0),
                "torch_threads": self._device_thread.submit(torch.get_num_threads).result()}

    def run(self, token: str, spec: TaskSpec, packages: list) -> dict:
        """Runs one task; returns {state, blob, error, seconds, steps_after_stop, instance, notes} (state done, failed
        or stopped). The task's step notes come with the reply, so the driver needs no last `notes` call, and
        the actor keeps none of them once it answered."""
        import ray  # noqa: PLC0415

        from kinetoscope.server.engine import Cancelled  # noqa: PLC0415

        began = time.monotonic()
        with self._lock:
            self._notes[token] = []
        try:
            for kind, folder, ref in packages:
                if not (self.root / kind / folder).exists():  # fetched once per actor; cached by id
                    ray.get(ref).install(self.root)
            blob = self._device_thread.submit(
                self.runner, spec, lambda: self._stopped(token), lambda note: self._note(token, note)).result()
            reply = {"state": "done", "blob": blob, "error": ""}
        except Cancelled as exc:
            reply = {"state": "stopped", "blob": None, "error": str(exc), "steps_after_stop": self._steps_after_stop(token)}
        except Exception as exc:  # noqa: BLE001 - a failed task is reported to the driver, never raised in the actor
            reply = {"state": "failed", "blob": None, "error": f"{type(exc).__name__}: {exc}"}
        with self._lock:
            self._stops.pop(token, None)
            notes = self._notes.pop(token, [])
        return {**reply, "seconds": time.monotonic() - began, "instance": self.instance, "notes": notes}

    def notes(self, token: str, since: int) -> tuple[str, list[StepNote]]:
        """(this actor's instance id, the task's step notes from `since` on); a new instance id means a restart."""
        with self._lock:
            return self.instance, list(self._notes.get(token, [])[since:])

    def stop(self, token: str) -> None:
        with self._lock:
            self._stops.setdefault(token, len(self._notes.get(token, ())))

    def _steps_after_stop(self, token: str) -> int | None:
        """Step notes the task reported after its stop arrived (one per optimizer step with progress_every 1)."""
        with self._lock:
            if token not in self._stops:
                return None
            return len(self._notes.get(token, ())) - self._stops[token]

    def _stopped(self, token: str) -> bool:
        with self._lock:
            return token in self._stops

    def _note(self, token: str, note: StepNote) -> None:
        with self._lock:
            self._notes.setdefault(token, []).append(note)


def _usable(device: str) -> str:
    """cuda where torch sees the GPU Ray assigned; cpu (with a warning) where the node only claims one."""
    if device != "cuda":
        return device
    import torch  # noqa: PLC0415

    if torch.cuda.is_available():
        return device
    _LOGGER.warning("this Ray node advertises a GPU that torch cannot use; the actor runs on the CPU")
    return "cpu"


class RayExecutor(QueuedExecutor):
    """Tasks in FIFO order on the cluster's device actors; one driver thread per actor hands it the next task."""

    def __init__(self, store: ModelStore, recordings: RecordingStore | None, limits: ServiceLimits,
                 options: RayOptions = RayOptions()) -> None:
        super().__init__()
        self.ray = import_ray()
        self.store, self.recordings, self.options = store, recordings, options
        self.limits = limits
        self._owns_ray = connect(options.address, num_cpus=options.actors)
        self._packages: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._packages_lock = threading.Lock()
        self.actors: list[Any] = []
        self.devices: list[str] = []
        """What each actor was created for: cuda (one GPU) or cpu."""
        self._retired: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._counted_at = time.monotonic()
        gpus = self._cluster_gpus()
        per_actor = options.gpus_per_actor if options.gpus_per_actor is not None else (1 if gpus >= 1 else 0)
        count = options.actors or (int(gpus // per_actor) if per_actor else 1)
        self.torch_threads = options.torch_threads or self._local_threads(max(1, count))
        with self._cond:
            for _ in range(max(1, count)):
                self._add_actor(per_actor)
        _LOGGER.info("Ray executor: %d %s actor(s)", len(self.actors), self.devices[0])

    @property
    def active_actors(self) -> list[Any]:
        """The actors that take new tasks (a retired CPU actor finishes its task and ends)."""
        with self._cond:
            return [actor for n, actor in enumerate(self.actors) if n not in self._retired]

    # -- the Executor interface
    def submit(self, spec: TaskSpec, on_step: Callable[[StepNote], None] | None = None,
               on_start: Callable[[], None] | None = None) -> TaskFuture:
        self._rescale()
        return super().submit(spec, on_step, on_start)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stops running tasks (outcome `shutdown`, to run again after a restart), drops queued ones, ends the actors."""
        self._stop_tasks()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001 - the cluster may already be gone
                pass
        if self._owns_ray:
            self.ray.shutdown()

    # -- actors
    def _local_threads(self, actors: int) -> int | None:
        """This machine's cores shared among `actors`, where every live node of the cluster is this machine."""
        try:
            here = self.ray.util.get_node_ip_address()
            nodes = [node for node in self.ray.nodes() if node.get("Alive")]
        except Exception:  # noqa: BLE001 - a cluster that cannot say: Ray's own thread count
            return None
        if not nodes or any(node.get("NodeManagerAddress") != here for node in nodes):
            return None
        return max(1, (os.cpu_count() or 1) // actors)

    def _cluster_gpus(self) -> int:
        return int(self.ray.cluster_resources().get("GPU", 0))

    def _add_actor(self, gpus: float) -> None:
        """A device actor and the driver thread that feeds it (under the condition's lock)."""
        options = self.options
        remote = self.ray.remote(DeviceWorker).options(
            num_cpus=1, num_gpus=gpus, max_restarts=options.max_restarts, max_task_retries=options.max_task_retries,
            max_concurrency=4, runtime_env={"env_vars": {"RAY_worker_niceness": str(options.niceness)}})
        device = "cuda" if gpus else "cpu"
        self.actors.append(remote.remote(self.limits, device, options.cache_bytes, self.torch_threads))
        self.devices.append(device)
        slot = len(self.actors) - 1
        thread = threading.Thread(target=self._work, args=(slot,), name=f"kinetoscope-ray-{slot}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _rescale(self) -> None:
        """One GPU actor per GPU the cluster has now; CPU actors retire once a GPU actor exists."""
        if self.options.actors is not None or self.options.gpus_per_actor is not None:
            return
        if time.monotonic() - self._counted_at < self.options.rescale_s:
            return
        self._counted_at = time.monotonic()
        try:
            gpus = self._cluster_gpus()
        except Exception:  # noqa: BLE001 - the cluster is busy; count again on a later submit
            return
        with self._cond:
            if self._stopping:
                return
            have = sum(1 for n, device in enumerate(self.devices) if device == "cuda" and n not in self._retired)
            for _ in range(gpus - have):
                self._add_actor(1)
            if gpus:
                for n, device in enumerate(self.devices):
                    if device == "cpu" and n not in self._retired:
                        self._retired.add(n)
                        _LOGGER.info("Ray executor: %d GPU actor(s); the CPU actor retires", gpus)
            self._cond.notify_all()

    # -- driver threads
    def _work(self, slot: int) -> None:
        while (future := self._take(lambda: slot not in self._retired)) is not None:
            try:
                outcome = self._run(self.actors[slot], future)
            except Exception as exc:  # noqa: BLE001 - whatever the cluster raised fails this task, not the thread
                outcome = TaskOutcome("failed", error=f"{type(exc).__name__}: {exc}")
            finally:
                self._release(future)
            future.set_outcome(outcome)
        with self._cond:
            retired = slot in self._retired and not self._stopping
        if retired:  # a stopping executor kills every actor in shutdown
            try:
                self.ray.kill(self.actors[slot])
            except Exception:  # noqa: BLE001 - already gone
                pass

    def _run(self, actor: Any, future: TaskFuture) -> TaskOutcome:
        ray = self.ray
        spec = future.spec
        packages = self._refs(spec)
        token = uuid.uuid4().hex
        if future.on_start is not None:
            future.on_start()
        began = time.monotonic()
        result = actor.run.remote(token, spec, packages)
        instance, seen, stop_sent = "", 0, False
        while True:
            ready, _ = ray.wait([result], timeout=self.options.poll_s)
            if ready:
                break
            if future.stop_requested and not stop_sent:
                actor.stop.remote(token)
                stop_sent = True  # sent again after a restart, below
            try:
                now, notes = ray.get(actor.notes.remote(token, seen), timeout=30)
            except Exception:  # noqa: BLE001 - the actor is restarting; the retried task reports again
                notes, now = [], instance
            if now != instance:
                if instance and future.stop_requested:
                    actor.stop.remote(token)
                instance, seen = now, 0
                continue
            seen += len(notes)
            self._deliver(future, notes)
        try:
            reply = ray.get(result)
        except ray.exceptions.RayActorError as exc:
            return TaskOutcome("failed", error=f"the device actor died and stayed down: {exc}".splitlines()[0],
                               seconds=time.monotonic() - began)
        self._deliver(future, reply["notes"][seen if reply["instance"] == instance else 0:])
        state = future.stop_reason if reply["state"] == "stopped" else reply["state"]
        return TaskOutcome(state, reply["blob"], reply["error"], reply["seconds"], reply.get("steps_after_stop"))

    @staticmethod
    def _deliver(future: TaskFuture, notes: list[StepNote]) -> None:
        if future.on_step is not None:
            for note in notes:
                future.on_step(note)

    def _refs(self, spec: TaskSpec) -> list[tuple[str, str, Any]]:
        """(kind, id, ObjectRef) of the task's model and recording, each put into the cluster once."""
        wanted = [("models", self.store.get(spec.model_id).folder)]
        recording = pb.MaximizeRequest.FromString(spec.request).recording
        if recording and self.recordings is not None:
            wanted.append(("recordings", self.recordings.get(recording).folder))
        refs = []
        with self._packages_lock:
            for kind, folder in wanted:
                key = (kind, folder.name)
                if key not in self._packages:
                    self._packages[key] = self.ray.put(FolderPackage.read(kind, folder))
                self._packages.move_to_end(key)
                refs.append((kind, folder.name, self._packages[key]))
        return refs
