"""Load: 8 clients x 25 mixed calls on loopback; each completes or is refused with RESOURCE_EXHAUSTED, none hangs,
and the server's memory comes back to its baseline."""

from __future__ import annotations

import collections
import gc
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from kinetoscope.v1 import kinetoscope_pb2 as pb
from tests.service.helpers import TRAINED, channel_objectives, declarations, upload

from .hostile import conv_model
from .process import launch
from .record_stream import clip_requests

CLIENTS, CALLS = 8, 25
KINDS = ("import", "list", "maximize", "record", "cancel")
DEADLINE_S = 300
"""Per call: far above any call's real duration, so a call that reaches it has hung."""


def _maximize(iterations: int) -> pb.MaximizeRequest:
    return pb.MaximizeRequest(model="small", objectives=channel_objectives("conv_fusion", [1]),
                              options=pb.MaximizeOptions(iterations=iterations))


def _one_call(server, kind: str, client: int, index: int) -> str:
    try:
        if kind == "import":
            weight = np.random.default_rng(client * 1000 + index).normal(size=(4, 3, 3, 3)).astype(np.float32)
            server.models.ImportModel(upload(conv_model(weight).SerializeToString(), name=f"c{client}-{index}"),
                                      timeout=DEADLINE_S)
        elif kind == "list":
            server.models.ListModels(pb.ListModelsRequest(), timeout=DEADLINE_S)
        elif kind == "maximize":
            list(server.vis.Maximize(_maximize(4), timeout=DEADLINE_S))
        elif kind == "record":
            server.rec.Record(clip_requests("small", 2, seed=index), timeout=DEADLINE_S)
        else:
            stream = server.vis.Maximize(_maximize(5_000), timeout=DEADLINE_S)
            next(stream)  # the first progress event (or the refusal): the job is running
            stream.cancel()
            list(stream)
        return "OK"
    except grpc.RpcError as error:
        return error.code().name


def _import_children(pgid: int) -> int:
    """Live processes forked by the server's forkserver (each one import)."""
    processes = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                    state, ppid, group = stat.read().rsplit(")", 1)[1].split()[:3]
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    forkserver = b"forkserver" in cmdline.read()
            except (OSError, ValueError):
                continue
            if int(group) == pgid and state != "Z":
                processes[int(entry)] = (int(ppid), forkserver)
    servers = {pid for pid, (ppid, forkserver) in processes.items() if forkserver and ppid == pgid}
    return sum(1 for ppid, _ in processes.values() if ppid in servers)


@pytest.mark.slow
def test_eight_clients_of_mixed_calls(tmp_path) -> None:
    server = launch(tmp_path / "store", "--queue", "2", "--jobs-per-device", "1")
    try:
        server.models.ImportModel(upload(TRAINED.read_bytes(), name="small", inputs=declarations()), timeout=DEADLINE_S)
        for _ in range(2):  # warm: the model converted and cached, the forkserver up, a recording made
            list(server.vis.Maximize(_maximize(4), timeout=DEADLINE_S))
            server.rec.Record(clip_requests("small", 2), timeout=DEADLINE_S)
            server.models.ImportModel(upload(conv_model().SerializeToString(), name="warm"), timeout=DEADLINE_S)
        baseline = server.rss_bytes()
        peak = [baseline]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.1):
                peak[0] = max(peak[0], server.rss_bytes())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.monotonic()
        plan = [(KINDS[(client + i) % len(KINDS)], client, i) for client in range(CLIENTS) for i in range(CALLS)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(lambda job: (job[0], _one_call(server, *job)), plan, chunksize=CALLS))
        elapsed = time.monotonic() - began
        stop.set()
        sampler.join()
        time.sleep(2)
        gc.collect()
        after = server.rss_bytes()

        outcomes = collections.Counter(results)
        print(f"FIGURE load_outcomes={dict(sorted(outcomes.items()))}")
        print(f"FIGURE load_seconds={elapsed:.1f} rss_baseline_mib={baseline / 2**20:.0f} "
              f"rss_peak_mib={peak[0] / 2**20:.0f} rss_after_mib={after / 2**20:.0f}")
        assert len(results) == CLIENTS * CALLS
        for (kind, code), count in outcomes.items():
            allowed = {"OK", "RESOURCE_EXHAUSTED"} | ({"CANCELLED"} if kind == "cancel" else set())
            assert code in allowed, (kind, code, count)
        assert sum(n for (kind, code), n in outcomes.items() if code == "OK") > CLIENTS * CALLS // 3
        assert server.serving()
        assert after <= baseline * 1.5 + (64 << 20), (baseline, after)
        assert _import_children(server.process.pid) == 0
        names = {m.name for m in server.models.ListModels(pb.ListModelsRequest(), timeout=30).models}
        accepted = {f"c{client}-{i}" for (kind, client, i), (_, code) in zip(plan, results) if kind == "import" and code == "OK"}
        assert names == {"small", "warm"} | accepted  # every accepted import stored, nothing else
        assert not [p for p in (tmp_path / "store" / "models").iterdir() if p.name.startswith(".")]
    finally:
        server.stop()
