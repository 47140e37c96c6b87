"""Building the C loops: a failing compiler is reported, the switch turns them off, and a library is
built once per source and cached."""

from __future__ import annotations

import pytest

from kinetoscope.server.engine import native_build
from kinetoscope.server.engine.native import NativeUpdate
from kinetoscope.server.engine.native_statistics import NativeStatistics

LIBRARIES = {"update": NativeUpdate, "statistics": NativeStatistics}


@pytest.mark.parametrize("name", LIBRARIES)
def test_a_compiler_that_fails_is_reported(name, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KINETOSCOPE_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    with pytest.raises(RuntimeError, match="could not build"):
        LIBRARIES[name].build()
    assert not list(tmp_path.rglob("*.so"))
    monkeypatch.setenv(native_build.DISABLE, "0")
    with pytest.raises(RuntimeError, match="disabled"):
        LIBRARIES[name].build()


@pytest.mark.parametrize("name", LIBRARIES)
def test_the_library_is_built_once_and_cached(name, tmp_path, monkeypatch) -> None:
    if not LIBRARIES[name].available():
        pytest.skip("no C compiler")
    monkeypatch.setenv("KINETOSCOPE_CACHE", str(tmp_path))
    first = LIBRARIES[name].build()
    stamp = first.stat().st_mtime_ns
    assert LIBRARIES[name].build() == first and first.stat().st_mtime_ns == stamp
    assert first.parent == tmp_path / "native" and first.stat().st_size > 0
    assert first.name.startswith(LIBRARIES[name].source.stem), "each source has its own library"


def test_an_unavailable_library_is_none_with_its_reason(monkeypatch) -> None:
    monkeypatch.setenv(native_build.DISABLE, "0")
    library = native_build.NativeLibrary("channel_statistics.c", lambda loaded: loaded, "test pass")
    assert library.get() is None and not library.available()
    assert "disabled" in library.error()
