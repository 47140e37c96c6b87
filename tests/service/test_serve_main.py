"""`kinetoscope serve` as a process: binds 127.0.0.1, answers health, stops cleanly on SIGTERM; bad flags are refused."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kinetoscope.server.main import build_parser, main


def test_serve_runs_until_sigterm(tmp_path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kinetoscope.server.main", "--address", "127.0.0.1:0", "--store", str(tmp_path), "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.match(r"kinetoscope serving on 127\.0\.0\.1:(\d+)", line)
        assert match, line + process.stderr.read()
        with grpc.insecure_channel(f"127.0.0.1:{match[1]}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_defaults_bind_localhost() -> None:
    args = build_parser().parse_args([])
    assert args.address == "127.0.0.1:50051" and args.device == "auto"


def test_tls_flags_go_together(tmp_path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--tls-cert", str(tmp_path / "cert.pem")])
    assert exit_.value.code == 2


def test_admission_flags_reach_the_limits_and_bad_ones_are_refused(capsys) -> None:
    from kinetoscope.server.serve_options import ServeOptions
    from kinetoscope.server.service import ServiceLimits

    args = build_parser().parse_args(["--imports", "3", "--import-queue", "0", "--queue", "5", "--jobs-per-device", "2"])
    options = ServeOptions.from_args(args)
    assert (options.imports, options.import_queue, options.queue, options.jobs_per_device) == (3, 0, 5, 2)
    assert options.problem() is None
    defaults = ServeOptions()
    limits = ServiceLimits()
    assert (defaults.imports, defaults.import_queue) == (limits.max_concurrent_imports, limits.import_queue_size)
    assert "--import-queue takes 0 or more" in ServeOptions(import_queue=-1).problem()
    assert "--imports takes a positive number" in ServeOptions(imports=0).problem()


def test_ray_workers_goes_with_ray_and_is_positive() -> None:
    from kinetoscope.server.serve_options import ServeOptions

    options = ServeOptions.from_args(build_parser().parse_args(["--ray", "auto", "--ray-workers", "2"]))
    assert (options.ray, options.ray_workers) == ("auto", 2)
    assert "--ray-workers goes with --ray" in ServeOptions(ray_workers=2).problem()
    assert "--ray-workers takes a positive number" in ServeOptions(ray="auto", ray_workers=0).problem()
