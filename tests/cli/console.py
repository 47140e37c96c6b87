"""Running the installed `kinetoscope` console script as a user does: a separate process, a scratch home."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import kinetoscope.model_zoo as zoo

KINETOSCOPE = Path(sys.executable).parent / "kinetoscope"
TRAINED = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
SERVING = re.compile(r"serving on (\S+:\d+)")
TOKEN = "s3cret-test-token"

_USER_SETTINGS = ("KINETOSCOPE_SERVER", "KINETOSCOPE_TOKEN", "KINETOSCOPE_PROGRESS", "GRPC_VERBOSITY", "GRPC_TRACE",
                  "PYTHONWARNINGS", "TORCH_CPP_LOG_LEVEL")


def cli_environment(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment without the user's kinetoscope settings, with a scratch KINETOSCOPE_HOME."""
    env = {key: value for key, value in os.environ.items() if key not in _USER_SETTINGS}
    env.update(KINETOSCOPE_HOME=str(home), OMP_NUM_THREADS="2", **extra)
    return env


def kinetoscope(*argv: str, home: Path, cwd: Path | None = None, timeout: float = 300,
                **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(KINETOSCOPE), *argv], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=cli_environment(home, **extra_env))


@dataclass
class RunningServer:
    process: subprocess.Popen
    address: str
    log: list[str]

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_server(store: Path, home: Path, *extra: str, token: str = TOKEN, timeout: float = 120) -> RunningServer:
    """`kinetoscope serve --address 127.0.0.1:0 --token T --store DIR` until it prints where it listens."""
    process = subprocess.Popen(
        [str(KINETOSCOPE), "serve", "--address", "127.0.0.1:0", "--token", token, "--store", str(store), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cli_environment(home))
    log: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log.append(line)
        if found := SERVING.search(line):
            threading.Thread(target=lambda: log.extend(process.stdout), daemon=True).start()  # keep the pipe drained
            return RunningServer(process, found.group(1), log)
    process.kill()
    raise AssertionError(f"kinetoscope serve did not come up:\n{''.join(log)}{process.stdout.read()}")


@dataclass
class Resumed:
    """What a client saw of a job whose server was killed with SIGKILL mid-job and started again on the same store."""

    finished: set[int]
    """Tasks reported finished before the kill."""
    last_offset: int
    """Offset of the last event the client read before the kill."""
    events: list
    """Every event of the job, read from offset 0 after the restart."""
    info: object
    tasks: list
    logs: list[str]
    """Both servers' output."""


def kill_mid_job_and_restart(store: Path, home: Path, request, *serve: str, timeout: float = 300) -> Resumed:
    """Imports the trained model, submits `request`, SIGKILLs the server once two tasks have finished, starts it
    again with the same `serve` options and follows the job to its end."""
    from kinetoscope.client.client import Client  # noqa: PLC0415 - the client only where a test talks to a server

    server = start_server(store, home, *serve)
    try:
        with Client(server.address, token=TOKEN) as client:
            client.import_model(TRAINED, name="small", inputs=["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"])
            job = client.submit_job(request).id
            finished: set[int] = set()
            for event in client.watch_job(job, timeout=timeout):
                if event.HasField("finished"):
                    finished.add(event.finished.task)
                if len(finished) == 2:
                    break
            last_offset = event.offset
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(30)
    finally:
        server.stop()
    logs = ["".join(server.log)]
    server = start_server(store, home, *serve)
    try:
        with Client(server.address, token=TOKEN) as client:
            events = list(client.watch_job(job, timeout=timeout))
            info, tasks = client.get_job(job)
    finally:
        server.stop()
    logs.append("".join(server.log))
    return Resumed(finished, last_offset, events, info, tasks, logs)
