"""Running a sweep: the batches not yet done go to the server as one stored job, saved as each task finishes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import grpc

from ..progress import BatchProgress
from .errors import SweepError, SweepInterrupted
from .files import digest
from .galleries import render_galleries
from .manifest import MANIFEST, MANIFEST_VERSION, is_done, open_manifest, save_batch
from .plan import Batch, Plan, folder_name, plan_sweep
from .spec import SweepSpec

if TYPE_CHECKING:
    from ..client import Client


def sweep_request(spec: SweepSpec, batches: list[Batch]):
    """The batches as a JobService sweep: one SweepLayer per batch, tied to its model, so each becomes one task."""
    from kinetoscope.v1 import kinetoscope_pb2 as pb  # noqa: PLC0415

    options = pb.MaximizeOptions(seed=spec.seed)
    if spec.iterations is not None:
        options.iterations = spec.iterations
    layers = [pb.SweepLayer(layer=b.layer, channels=list(b.units), kind=pb.Target.Kind.Value(b.kind.upper()),
                            batch=len(b.units), model=b.model_id) for b in batches]
    return pb.SubmitJobRequest(name=f"sweep {spec.path.name}", sweep=pb.SweepRequest(
        models=list(dict.fromkeys(b.model_id for b in batches)), layers=layers,
        settings=[pb.RegularizerSetting(kappa=k, gamma=g) for k, g in spec.settings], options=options))



def follow_job(client: "Client", job: str, on_event: Callable, *, on_result: Callable | None = None,
               retries: int = 5) -> None:
    """Watches `job` to its end, re-attaching from the last event's offset when the connection drops.

    `on_result(task, result)`: each task's results, on the same stream, as it is reported done."""
    from ..client import JobResultsCollector  # noqa: PLC0415

    collector = JobResultsCollector(client, job) if on_result is not None else None
    position, failures = 0, 0
    while True:
        try:
            for event in client.watch_job(job, position, results=collector is not None):
                if collector is not None:
                    done = collector.feed(event)
                    if done is not None:
                        on_result(*done)
                    if event.WhichOneof("event") == "result":
                        continue
                position, failures = event.offset + 1, 0
                on_event(event)
            return
        except grpc.RpcError as exc:
            failures += 1
            if exc.code() != grpc.StatusCode.UNAVAILABLE or failures > retries:
                raise
            time.sleep(min(2.0, 0.2 * 2 ** failures))
            if collector is not None:
                collector.restart()


def _run_batches(client: "Client", spec: SweepSpec, out: Path, manifest: dict[str, Any], pending: list[Batch],
                 total: int, show_progress: bool, job: str) -> None:
    by_task = {(b.model_id, b.layer, b.units): b for b in pending}
    with BatchProgress(total, total - len(pending), f"job {job}", enabled=show_progress) as bar:

        def on_event(event) -> None:
            if event.WhichOneof("event") == "progress":
                bar(event.progress)

        def on_result(task, result) -> None:
            batch = by_task.get((task.model, task.layer, task.channels))
            if batch is not None and not is_done(out, manifest, batch):
                save_batch(out, manifest, batch, result)
                bar.saved()

        follow_job(client, job, on_event, on_result=on_result)
    info, tasks = client.get_job(job)
    if info.state != "SUCCEEDED":
        failed = next((t.error for t in tasks if t.error), info.error)
        raise SweepError(f"job {job} ended {info.state}" + (f": {failed}" if failed else "")
                         + f"; the finished batches are saved in {out} (`kinetoscope jobs show {job}` has the details)")



# -- the whole sweep


@dataclass(frozen=True)
class SweepSummary:
    out: Path
    batches: int
    skipped: int
    results: tuple[Path, ...]
    galleries: tuple[Path, ...]
    job: str | None = None
    """The server's job that ran the batches (None when every batch was already saved)."""

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "out": str(self.out), "batches": self.batches, "skipped": self.skipped, "ran": self.batches - self.skipped,
                "galleries": [str(p) for p in self.galleries], "results": [str(p) for p in self.results],
                "manifest": str(self.out / MANIFEST)}

    def describe(self) -> str:
        lines = [f"sweep {self.out}: {self.batches} batches, {self.batches - self.skipped} run, {self.skipped} already done"]
        return "\n".join(lines + [f"gallery: {index}" for index in self.galleries])


def run_sweep(client: "Client", spec: SweepSpec, out: Path | None = None, *, restart: bool = False,
              show_progress: bool = True, detach: bool = False) -> SweepSummary:
    """Validates everything, submits the batches not yet done as one job, saves each as it finishes, then merges and
    renders each layer. `detach`: returns once the job is submitted (summary.job names it)."""
    out = Path(out) if out is not None else spec.out_dir()
    plan = plan_sweep(client, spec)
    out.mkdir(parents=True, exist_ok=True)
    manifest = open_manifest(out, spec, plan, restart)
    pending = [batch for batch in plan.batches if not is_done(out, manifest, batch)]
    job = client.submit_job(sweep_request(spec, pending)).id if pending else None
    if detach:
        return SweepSummary(out, len(plan.batches), len(plan.batches) - len(pending), (), (), job)
    try:
        if job is not None:
            _run_batches(client, spec, out, manifest, pending, len(plan.batches), show_progress, job)
    except KeyboardInterrupt:
        done = sum(is_done(out, manifest, batch) for batch in plan.batches)
        raise SweepInterrupted(f"interrupted: {done} of {len(plan.batches)} batches are saved in {out}; job {job} "
                               "goes on on the server; run the same command again to resume") from None
    made = render_galleries(out, plan, manifest)
    return SweepSummary(out, len(plan.batches), len(plan.batches) - len(pending),
                        tuple(r for r, _ in made), tuple(i for _, i in made), job)


def write_job_results(client: "Client", job: str, out: Path) -> SweepSummary:
    """A stored job's finished tasks in the sweep folder layout: OUT/<model>/<layer>/units-A-B.npz, each layer merged
    into result.npz and rendered into index.html, with manifest.json and progress.jsonl as a sweep writes them."""
    info, tasks = client.get_job(job)
    names = {model: client.get_model(model)[0].name for model in info.models}
    folders = {model: folder_name(name if list(names.values()).count(name) == 1 else model) for model, name in names.items()}
    batches = {t.index: Batch(folders[t.model], t.model, t.layer, f"{folders[t.model]}/{folder_name(t.layer)}", t.kind,
                              t.channels) for t in tasks if t.state == "DONE"}
    out.mkdir(parents=True, exist_ok=True)
    params = {"iterations": info.iterations, "settings": [list(s) for s in info.settings]}
    manifest: dict[str, Any] = {"version": MANIFEST_VERSION, "job": job, "params": params,
                                "params_hash": digest(json.dumps(params, sort_keys=True)),
                                "models": {}, "batches": {}, "galleries": {}}
    old = out / MANIFEST
    if old.is_file():
        try:
            known = json.loads(old.read_text(encoding="utf-8"))
        except ValueError:
            known = {}
        if known.get("job") == job:
            manifest.update({key: known.get(key, {}) for key in ("models", "batches", "galleries")})
    skipped = 0
    pending = [index for index, batch in batches.items() if not is_done(out, manifest, batch)]
    if pending:
        for task, result in client.job_results(job, tasks=pending):
            save_batch(out, manifest, batches[task.index], result)
    skipped = len(batches) - len(pending)
    plan = Plan(dict(folders.items()), tuple(batches.values()))
    made = render_galleries(out, Plan({f: m for m, f in folders.items()}, plan.batches), manifest) if batches else []
    return SweepSummary(out, len(batches), skipped, tuple(r for r, _ in made), tuple(i for _, i in made), job)
