"""`kinetoscope serve` as a separate process: start it on port 0, watch its memory, kill it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kinetoscope.v1 import kinetoscope_pb2_grpc as pb_grpc


@dataclass
class ServerProcess:
    """A server in its own process group (so its forkserver and import children can be found and ended too)."""

    process: subprocess.Popen
    port: int
    started_s: float
    """Seconds from launch to the first SERVING health reply."""
    log: list[str] = field(default_factory=list)
    channel: grpc.Channel = field(init=False)

    def __post_init__(self) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.models = pb_grpc.ModelServiceStub(self.channel)
        self.vis = pb_grpc.VisualizationServiceStub(self.channel)
        self.rec = pb_grpc.RecordingServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def serving(self) -> bool:
        reply = self.health.Check(health_pb2.HealthCheckRequest(), timeout=30)
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def rss_bytes(self) -> int:
        return _status_kib(self.process.pid, "VmRSS") * 1024

    def wait_for_log(self, pattern: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                if re.search(pattern, line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"the server never logged {pattern!r}; its log ends:\n" + "".join(self.log[-30:]))

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown code runs (calls in flight end UNAVAILABLE)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)

    def group_gone(self, timeout: float = 60) -> bool:
        """True once no process of the server's group (forkserver, import children) is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.group_gone(30):
            os.killpg(self.process.pid, signal.SIGKILL)


def launch(store: Path, *args: str, timeout: float = 120) -> ServerProcess:
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "kinetoscope.server.main", "--address", "127.0.0.1:0", "--store", str(store),
         "--device", "cpu", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    log: list[str] = []
    first = process.stdout.readline()
    while first and not first.startswith("kinetoscope serving on"):
        log.append(first)
        first = process.stdout.readline()
    match = re.match(r"kinetoscope serving on 127\.0\.0\.1:(\d+)", first)
    if not match:
        process.kill()
        raise AssertionError("the server did not start:\n" + "".join(log) + first + process.stdout.read())
    threading.Thread(target=_drain, args=(process, log), daemon=True).start()
    running = ServerProcess(process, int(match[1]), 0.0, log)
    deadline = time.monotonic() + timeout
    while not running.serving():
        if time.monotonic() > deadline:
            raise AssertionError("the server never reported SERVING")
        time.sleep(0.05)
    running.started_s = time.monotonic() - began
    return running


def _drain(process: subprocess.Popen, log: list[str]) -> None:
    for line in process.stdout:
        log.append(line)


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)
