"""The optimizer update of one input as one hand-written C loop (`fused_update.c`).

Why by hand: per element the update reads the pixel, its six spatiotemporal
neighbours, the gradient and both moments, and writes the moments and the result.
torch.compile's C++ code for the same function (`step.update_input`) makes several
passes with masked loads for the padded differences; on a [16, 20, 32, 32] flow batch
it took 0.95 ms, plus 0.2 ms to undo the jitter on the gradient and 0.2 ms to jitter
the next input, against 0.33 ms for this loop doing all three (2 threads). On a small
network that difference is a tenth of a forward and backward pass. The loop is built
once per machine with the system's C compiler (about a second), cached on disk, and
loaded with ctypes; where there is no compiler, or an input's H×W planes are not
contiguous (channel-last layouts), the torch path in `step.py` does the same arithmetic.
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

import numpy as np
import torch

from .geometry import canonical_view

_LOGGER = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("fused_update.c")
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fPIC", "-shared", "-std=c11")
"""-fno-math-errno lets sqrtf vectorize; no -ffast-math, which would drop the NaN and infinity checks."""
OPENMP = "-fopenmp"
"""Tried first; without it (a compiler lacking OpenMP) the loop runs on one thread."""
DISABLE = "KINETOSCOPE_NATIVE"
"""Set to 0 to use the torch path everywhere."""


class NativeUpdate:
    """The compiled loop: built and loaded once per process, shared by every run."""

    _lock = threading.Lock()
    _function = None
    _error: str | None = None
    _tried = False

    @classmethod
    def function(cls):
        """The loaded `kt_fused_update`, or None (the reason is in `error`)."""
        if cls._tried:
            return cls._function
        with cls._lock:
            if not cls._tried:
                try:
                    cls._function = _load()
                except Exception as exc:  # no compiler, no writable cache, a loader error: the torch path works
                    cls._error = f"{type(exc).__name__}: {exc}".strip()
                    _LOGGER.warning("the native optimizer update is unavailable (%s); using the torch path",
                                    cls._error.splitlines()[0])
                cls._tried = True
        return cls._function

    @classmethod
    def available(cls) -> bool:
        return cls.function() is not None

    @classmethod
    def error(cls) -> str | None:
        cls.function()
        return cls._error


def supports(x: torch.Tensor, layout: str, kind: str | None) -> bool:
    """Whether the loop can step this input: float32 on the CPU, every H×W plane contiguous
    (not so for channel-last layouts)."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or not x.is_contiguous():
        return False
    view = canonical_view(x, layout, kind)
    return view.stride()[3:] == (view.shape[4], 1) and os.environ.get(DISABLE, "1") != "0"


class FusedUpdate:
    """The native loop bound to one input's buffers for a run: what stays the same from
    step to step (shapes, strides, constants, the addresses of the moments, the shift
    schedule) is checked and converted once, as right after a network's forward pass each
    Python-level operation costs tens of microseconds, a visible share of a small network's step.

    `x` and `out` are the input's two value buffers (a step reads one and writes the
    other); `scalars` [steps, 9] float32 holds (α, B, λ_B, λ_TV, β1, β2, ε, Adam's step
    size, √(1 − β2^t)) per step; `schedule` [steps, B, 2] int64 the jitter's shifts
    (None: the input never moves).
    """

    def __init__(self, x: torch.Tensor, out: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                 active: torch.Tensor, kappa: torch.Tensor, gamma: torch.Tensor, layout: str, kind: str | None,
                 scalars: np.ndarray, schedule: torch.Tensor | None = None) -> None:
        function = NativeUpdate.function()
        if function is None:
            raise RuntimeError(f"the native optimizer update is unavailable: {NativeUpdate.error()}")
        if not (supports(x, layout, kind) and out.stride() == x.stride() and exp_avg.is_contiguous()
                and exp_avg_sq.is_contiguous()):
            raise ValueError("the native update needs contiguous float32 CPU tensors with contiguous H×W planes")
        view = canonical_view(x, layout, kind)
        b, k = view.shape[:2]
        moments = tuple(view.shape)
        if exp_avg.shape != moments or exp_avg_sq.shape != moments:
            raise ValueError(f"the native update takes moments shaped {moments}")
        # the loop reads one entry per sample of each: a shorter tensor would be read past its end
        for name, tensor, dtype in (("active", active, torch.bool), ("kappa", kappa, torch.float32),
                                    ("gamma", gamma, torch.float32)):
            if tensor.shape != (b,) or tensor.dtype != dtype:
                raise ValueError(f"{name} must be a [{b}] {dtype} tensor, not {tuple(tensor.shape)} {tensor.dtype}")
        self._scalars = np.ascontiguousarray(scalars, dtype=np.float32)
        steps = len(self._scalars)
        if self._scalars.shape != (steps, 9):
            raise ValueError(f"scalars must be [steps, 9], not {self._scalars.shape}")
        if schedule is not None and (schedule.shape != (steps, b, 2) or schedule.dtype != torch.int64
                                     or not schedule.is_contiguous() or schedule.device.type != "cpu"):
            raise ValueError(f"schedule must be a contiguous [{steps}, {b}, 2] int64 CPU tensor")
        self._function = function
        self._tensors = (exp_avg, exp_avg_sq, active, kappa, gamma, schedule)  # kept alive: the loop holds addresses
        self._dims = np.array([*view.shape, *view.stride()[:3]], dtype=np.int64)
        self._planes = np.empty(b * k, dtype=np.float64)
        self.penalty = torch.empty(b)
        """The last call's [B] penalty λ_B R_B + λ_TV R_TV at x (overwritten by the next call)."""
        self._fixed = [pointer(t) for t in self._tensors[:5]]
        self._steps, self._shape = steps, x.shape
        self._shifts = None if schedule is None else (schedule.data_ptr(), b * 2 * schedule.element_size())
        self._scalar_row = (self._scalars.ctypes.data, self._scalars.strides[0])

    def __call__(self, x: torch.Tensor, out: torch.Tensor, grad: torch.Tensor, feed: torch.Tensor | None,
                 alive: torch.Tensor, step: int) -> torch.Tensor:
        """Step `x` into `out` and the moments in place, undoing this step's shifts on `grad`;
        with `feed`, write `out` rolled by the next step's shifts into it. Returns `penalty`."""
        if grad.shape != self._shape or grad.stride() != x.stride() or x.shape != self._shape:
            raise ValueError(f"expected tensors shaped {tuple(self._shape)} laid out alike")
        if alive.shape != self.penalty.shape or alive.dtype != torch.bool:
            raise ValueError(f"alive must be a [{len(self.penalty)}] bool tensor")
        if not 0 <= step < self._steps or (feed is not None and (self._shifts is None or step + 1 >= self._steps)):
            raise ValueError(f"step {step} of {self._steps} has no {'next ' if feed is not None else ''}shifts")
        avg, avg_sq, active, kappa, gamma = self._fixed
        shifts = next_shifts = None
        if self._shifts is not None:
            base, row = self._shifts
            shifts = base + step * row
            next_shifts = shifts + row if feed is not None else None
        status = self._function(
            x.data_ptr(), grad.data_ptr(), out.data_ptr(), None if feed is None else feed.data_ptr(), avg, avg_sq,
            self._dims.ctypes.data, self._scalar_row[0] + step * self._scalar_row[1], shifts, next_shifts,
            kappa, gamma, alive.data_ptr(), active, self._planes.ctypes.data, self.penalty.data_ptr(),
            torch.get_num_threads(),
        )
        if status != 0:
            raise MemoryError("the native optimizer update could not allocate its plane buffers")
        return self.penalty


def pointer(tensor: torch.Tensor) -> int:
    if not tensor.is_contiguous() or tensor.device.type != "cpu":
        raise ValueError("the native update reads contiguous CPU tensors")
    return tensor.data_ptr()


def _load():
    library = ctypes.CDLL(str(_build()))
    function = library.kt_fused_update
    function.argtypes = [ctypes.c_void_p] * 16 + [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def _build() -> Path:
    """The shared library for this source, compiler and CPU, compiled unless already cached."""
    if os.environ.get(DISABLE, "1") == "0":
        raise RuntimeError(f"disabled by {DISABLE}=0")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise RuntimeError("no C compiler (cc, gcc or clang) on PATH; set CC to use one")
    source = SOURCE.read_bytes()
    # -march=native: a library built on one CPU may not run on another sharing the cache
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), compiler.encode(), _cpu_signature()])).hexdigest()[:16]
    target = _cache_dir() / f"fused_update-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        errors = ""
        for extra in ([OPENMP], []):
            result = subprocess.run([compiler, *FLAGS, *extra, str(SOURCE), "-o", str(built), "-lm"],
                                    capture_output=True, text=True, timeout=300)
            if result.returncode == 0:
                break
            errors = result.stderr.strip()
        else:
            raise RuntimeError(f"{compiler} could not build {SOURCE.name}: {errors[-2000:]}")
        os.replace(built, target)  # atomic: a concurrent build leaves one complete library
    return target


def _cache_dir() -> Path:
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
