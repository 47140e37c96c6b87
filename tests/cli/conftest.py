"""One scratch home, one store with the trained two-stream model imported once, one `kinetoscope serve` on it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from .console import TRAINED, RunningServer, kinetoscope, start_server

INPUTS = ("--input", "rgb=1x3x32x32:image", "--input", "flow=1x20x32x32:stacked_flow")


@dataclass(frozen=True)
class SharedStore:
    home: Path
    store: Path
    model_id: str
    name: str = "small"


@pytest.fixture(scope="session")
def cli_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-home")


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory, cli_home) -> SharedStore:
    store = tmp_path_factory.mktemp("cli-store")
    done = kinetoscope("--store", str(store), "import", str(TRAINED), "--name", "small", *INPUTS, "--json", home=cli_home)
    assert done.returncode == 0, done.stderr
    return SharedStore(cli_home, store, json.loads(done.stdout)["id"])


@pytest.fixture(scope="session")
def served(shared_store) -> RunningServer:
    server = start_server(shared_store.store, shared_store.home)
    yield server
    assert server.stop() == 0, "".join(server.log)
