"""A shared server with the trained two-stream model imported, and fresh servers per test where state matters."""

from __future__ import annotations

import pytest

from .helpers import Running, import_trained, start


@pytest.fixture(scope="session")
def shared(tmp_path_factory) -> Running:
    running = start(tmp_path_factory.mktemp("shared-store"))
    running.model = import_trained(running)
    yield running
    running.stop()


@pytest.fixture
def fresh(tmp_path) -> Running:
    running = start(tmp_path / "store")
    yield running
    running.stop()
