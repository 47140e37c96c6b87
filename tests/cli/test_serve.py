"""`kinetoscope serve` as README prints it: its flags, a separate process reached by the CLI and the Python client."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from kinetoscope.client.client import Client
from kinetoscope.server import serve_options
from kinetoscope.server.serve_options import ServeOptions
from kinetoscope.server.service import ServiceLimits

from .console import KINETOSCOPE, TOKEN, cli_environment, kinetoscope

SERVE_FLAGS = ("--address", "--store", "--device", "--token", "--tls-cert", "--tls-key", "--jobs-per-device", "--queue",
               "--max-upload-mib", "--import-memory-mib", "--import-timeout", "--no-import-isolation", "--log-level",
               "--max-jobs-per-token", "--max-tasks-per-job", "--ray")


def test_console_script_is_installed_next_to_the_interpreter() -> None:
    assert KINETOSCOPE.is_file(), f"{KINETOSCOPE} missing: install kinetoscope into this environment"


@pytest.mark.parametrize("command", [[str(KINETOSCOPE), "serve", "--help"],
                                     [sys.executable, "-m", "kinetoscope.server.main", "--help"]])
def test_both_entry_points_list_every_serve_flag(command, tmp_path) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=cli_environment(tmp_path))
    assert done.returncode == 0 and done.stderr == ""
    missing = [flag for flag in SERVE_FLAGS if flag not in done.stdout]
    assert missing == []


def test_serve_defaults_are_the_service_limits() -> None:
    limits = ServiceLimits()
    assert (serve_options.JOBS_PER_DEVICE, serve_options.JOB_QUEUE_SIZE) == (limits.jobs_per_device, limits.job_queue_size)
    assert serve_options.MAX_UPLOAD_MIB << 20 == limits.max_upload_bytes
    assert serve_options.IMPORT_MEMORY_MIB << 20 == limits.import_memory_bytes
    assert serve_options.IMPORT_TIMEOUT_S == limits.import_timeout_s
    assert (serve_options.MAX_JOBS_PER_TOKEN, serve_options.MAX_TASKS_PER_JOB) == (limits.max_jobs_per_token,
                                                                                   limits.max_tasks_per_job)
    from kinetoscope.server.main import DEFAULT_ADDRESS

    assert serve_options.DEFAULT_ADDRESS == DEFAULT_ADDRESS


def test_console_script_and_module_parse_serve_flags_alike() -> None:
    from kinetoscope.client.cli import build_parser
    from kinetoscope.server.main import build_parser as serve_parser

    argv = ["--address", "0.0.0.0:6000", "--store", "/tmp/s", "--device", "cpu", "--token", "t", "--jobs-per-device", "2",
            "--queue", "3", "--max-upload-mib", "64", "--import-memory-mib", "512", "--import-timeout", "30",
            "--no-import-isolation", "--log-level", "warning"]
    from_module = ServeOptions.from_args(serve_parser().parse_args(argv))
    from_script = ServeOptions.from_args(build_parser().parse_args(["serve", *argv]))
    assert from_module == from_script
    assert dataclasses.asdict(from_module) | {"store": None} == dataclasses.asdict(ServeOptions(
        address="0.0.0.0:6000", device="cpu", token="t", jobs_per_device=2, queue=3, max_upload_mib=64,
        import_memory_mib=512, import_timeout=30, isolate_imports=False, log_level="WARNING"))
    # the globals given before the command reach the server too
    before = ServeOptions.from_args(build_parser().parse_args(["--store", "/tmp/s", "--token", "t", "serve"]))
    assert (str(before.store), before.token) == ("/tmp/s", "t")


def test_serve_answers_the_cli_and_the_python_client(served, shared_store) -> None:
    models = kinetoscope("--server", served.address, "--token", TOKEN, "models", "--json", home=shared_store.home)
    assert models.returncode == 0, models.stderr
    assert [m["id"] for m in json.loads(models.stdout)] == [shared_store.model_id]
    # global flags typed after the command work the same
    layers = kinetoscope("layers", "small", "--server", served.address, "--token", TOKEN, "--json", home=shared_store.home)
    assert layers.returncode == 0, layers.stderr
    assert json.loads(layers.stdout)[-1]["name"] == "logits"
    with Client(served.address, token=TOKEN) as client:
        info, catalog = client.get_model("small")
    assert info.id == shared_store.model_id and len(catalog) == len(json.loads(layers.stdout))


def test_serve_refuses_a_call_without_the_token(served, shared_store) -> None:
    done = kinetoscope("--server", served.address, "models", home=shared_store.home)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.startswith("kinetoscope models: the server at") and "--token" in done.stderr
    wrong = kinetoscope("--server", served.address, "--token", "nope", "models", home=shared_store.home)
    assert wrong.returncode != 0 and "refused the token" in wrong.stderr


@pytest.mark.parametrize(("argv", "word"), [
    (["--address", "nowhere"], "HOST:PORT"),
    (["--tls-cert", "cert.pem"], "--tls-key"),
    (["--queue", "-1"], "--queue"),
])
def test_serve_flag_errors_are_one_line(argv, word, tmp_path) -> None:
    done = kinetoscope("serve", *argv, home=tmp_path, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.strip()] == [done.stderr.strip()]
    assert done.stderr.startswith("kinetoscope serve: ") and word in done.stderr


def test_serve_with_ray_but_without_ray_installed_says_what_to_install(tmp_path) -> None:
    import importlib.util

    if importlib.util.find_spec("ray") is not None:
        pytest.skip("ray is installed here")
    done = kinetoscope("serve", "--address", "127.0.0.1:0", "--ray", "auto", "--store", str(tmp_path / "store"),
                       home=tmp_path / "home", timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("kinetoscope serve:") and "kinetoscope[ray]" in done.stderr
