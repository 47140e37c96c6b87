"""Hand-written C loops next to this module, built once per machine with the system's C compiler.

A library is compiled on first use (about a second), cached on disk under a key made
of its source, the flags, the compiler and the CPU's flags, and loaded with ctypes.
Where there is no compiler, or `KINETOSCOPE_NATIVE=0`, `NativeLibrary.get` returns
None and callers take their numpy or torch path, which computes the same numbers.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable, Generic, TypeVar

_LOGGER = logging.getLogger(__name__)
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fPIC", "-shared", "-std=c11")
"""-fno-math-errno lets sqrtf vectorize; no -ffast-math, which would drop the NaN and infinity checks."""
OPENMP = "-fopenmp"
"""Tried first; without it (a compiler lacking OpenMP) a loop runs on one thread."""
DISABLE = "KINETOSCOPE_NATIVE"
"""Set to 0 to use the numpy and torch paths everywhere."""

Bound = TypeVar("Bound")


def enabled() -> bool:
    return os.environ.get(DISABLE, "1") != "0"


class NativeLibrary(Generic[Bound]):
    """One C source, built and loaded once per process and shared by every caller.

    `bind` takes the loaded library and returns what callers use (typically its
    functions with their ctypes signatures set).
    """

    def __init__(self, source: str, bind: Callable[[ctypes.CDLL], Bound], purpose: str) -> None:
        self.source = Path(__file__).with_name(source)
        self.bind, self.purpose = bind, purpose
        self._lock = threading.Lock()
        self._bound: Bound | None = None
        self._error: str | None = None
        self._tried = False

    def get(self) -> Bound | None:
        """The bound library, or None (the reason is in `error`)."""
        if self._tried:
            return self._bound
        with self._lock:
            if not self._tried:
                try:
                    self._bound = self.bind(ctypes.CDLL(str(self.build())))
                except Exception as exc:  # no compiler, no writable cache, a loader error: the other path works
                    self._error = f"{type(exc).__name__}: {exc}".strip()
                    _LOGGER.warning("the native %s is unavailable (%s); using the numpy/torch path", self.purpose,
                                    self._error.splitlines()[0])
                self._tried = True
        return self._bound

    def available(self) -> bool:
        return self.get() is not None

    def error(self) -> str | None:
        self.get()
        return self._error

    def build(self) -> Path:
        """The shared library for this source, compiler and CPU, compiled unless already cached."""
        return build(self.source)


def build(source_path: Path) -> Path:
    if not enabled():
        raise RuntimeError(f"disabled by {DISABLE}=0")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise RuntimeError("no C compiler (cc, gcc or clang) on PATH; set CC to use one")
    source = source_path.read_bytes()
    # -march=native: a library built on one CPU may not run on another sharing the cache
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), compiler.encode(), _cpu_signature()])).hexdigest()[:16]
    target = cache_dir() / f"{source_path.stem}-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        errors = ""
        for extra in ([OPENMP], []):
            result = subprocess.run([compiler, *FLAGS, *extra, str(source_path), "-o", str(built), "-lm"],
                                    capture_output=True, text=True, timeout=300)
            if result.returncode == 0:
                break
            errors = result.stderr.strip()
        else:
            raise RuntimeError(f"{compiler} could not build {source_path.name}: {errors[-2000:]}")
        os.replace(built, target)  # atomic: a concurrent build leaves one complete library
    return target


def cache_dir() -> Path:
    root = os.environ.get("KINETOSCOPE_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache",
                                                                "kinetoscope")
    return Path(root) / "native"


def _cpu_signature() -> bytes:
    try:
        with open("/proc/cpuinfo", "rb") as info:
            return next((line for line in info if line.startswith(b"flags")), b"") + sys.platform.encode()
    except OSError:
        import platform

        return f"{platform.machine()} {platform.processor()} {sys.platform}".encode()
