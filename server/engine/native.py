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

import numpy as np
import torch

from .geometry import canonical_view
from .native_build import NativeLibrary, enabled


def _bind(library: ctypes.CDLL) -> ctypes.CDLL:
    updates = library.kt_fused_updates
    updates.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]
    updates.restype = ctypes.c_int
    return library


NativeUpdate = NativeLibrary("fused_update.c", _bind, "optimizer update")
"""The compiled loop (`kt_fused_updates`), built on first use and shared by every run."""


def supports(x: torch.Tensor, layout: str, kind: str | None) -> bool:
    """Whether the loop can step this input: float32 on the CPU, every H×W plane contiguous
    (not so for channel-last layouts)."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or not x.is_contiguous():
        return False
    view = canonical_view(x, layout, kind)
    return view.stride()[3:] == (view.shape[4], 1) and enabled()


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
        if not NativeUpdate.available():
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
        self._tensors = (exp_avg, exp_avg_sq, active, kappa, gamma, schedule)  # kept alive: the loop holds addresses
        self._dims = np.array([*view.shape, *view.stride()[:3]], dtype=np.int64)
        self._planes = np.empty(b * k, dtype=np.float64)
        self.penalty = torch.empty(b)
        """The last call's [B] penalty λ_B R_B + λ_TV R_TV at x (overwritten by the next call)."""
        avg, avg_sq, active, kappa, gamma = (pointer(t) for t in self._tensors[:5])
        self._fixed = (avg, avg_sq, self._dims.ctypes.data, kappa, gamma, active, self._planes.ctypes.data,
                       self.penalty.data_ptr())
        """Addresses that stay the same from step to step (numpy's `.ctypes` costs microseconds a call)."""
        self._steps, self._shape, self._stride = steps, x.shape, x.stride()
        self._known = _Identities((x, out))
        self._alive: torch.Tensor | None = None
        self._shifts = None if schedule is None else (schedule.data_ptr(), b * 2 * schedule.element_size())
        self._scalar_row = (self._scalars.ctypes.data, self._scalars.strides[0])

    def __call__(self, x: torch.Tensor, out: torch.Tensor, grad: torch.Tensor, feed: torch.Tensor | None,
                 alive: torch.Tensor, step: int) -> torch.Tensor:
        """Step `x` into `out` and the moments in place, undoing this step's shifts on `grad`;
        with `feed`, write `out` rolled by the next step's shifts into it. Returns `penalty`."""
        UpdateGroup(len(self.penalty), 1)([(self, self.arguments(x, out, grad, feed, alive, step))])
        return self.penalty

    def trust(self, *buffers: torch.Tensor) -> None:
        """Checks buffers the loop will write every step (the next inputs) once, so that `arguments`
        passes them on an identity test."""
        for tensor in buffers:
            self._check_buffer(tensor)
            self._known.add(tensor)

    def _check_buffer(self, tensor: torch.Tensor) -> None:
        """A buffer the loop reads or writes with the input's layout."""
        if tensor.shape != self._shape or tensor.stride() != self._stride or tensor.device.type != "cpu":
            raise ValueError(f"expected tensors shaped {tuple(self._shape)} laid out alike")

    def arguments(self, x: torch.Tensor, out: torch.Tensor, grad: torch.Tensor, feed: torch.Tensor | None,
                  alive: torch.Tensor, step: int) -> tuple[int, ...]:
        """The loop's 16 addresses for one step (see `__call__`), checked; an `UpdateGroup` runs them.

        The buffers given at construction and the last `alive` seen pass on an identity test
        (each tensor check costs microseconds right after a backward pass); others are checked."""
        known = self._known
        for tensor in (x, out, feed):
            if tensor is not None and tensor not in known:
                self._check_buffer(tensor)
        if grad.shape != self._shape or grad.stride() != self._stride:
            raise ValueError(f"expected a gradient shaped {tuple(self._shape)} laid out as its input")
        if alive is not self._alive:
            if alive.shape != self.penalty.shape or alive.dtype != torch.bool or not alive.is_contiguous():
                raise ValueError(f"alive must be a [{len(self.penalty)}] bool tensor")
            self._alive = alive
        if not 0 <= step < self._steps or (feed is not None and (self._shifts is None or step + 1 >= self._steps)):
            raise ValueError(f"step {step} of {self._steps} has no {'next ' if feed is not None else ''}shifts")
        avg, avg_sq, dims, kappa, gamma, active, planes, penalty = self._fixed
        shifts = next_shifts = 0
        if self._shifts is not None:
            base, row = self._shifts
            shifts = base + step * row
            next_shifts = shifts + row if feed is not None else 0
        return (x.data_ptr(), grad.data_ptr(), out.data_ptr(), 0 if feed is None else feed.data_ptr(), avg, avg_sq,
                dims, self._scalar_row[0] + step * self._scalar_row[1], shifts, next_shifts,
                kappa, gamma, alive.data_ptr(), active, planes, penalty)


class UpdateGroup:
    """Several inputs' updates, each given with its `FusedUpdate.arguments`, run in one native
    call that also sums their penalties.

    One call per step instead of one per input: right after the backward pass each crossing
    from Python into C costs tens of microseconds, a visible share of a small network's step
    at batch 1. The table of addresses and the total live as long as the group, so a step
    converts nothing. The caller keeps the tensors behind the addresses alive until a call
    returns.
    """

    def __init__(self, batch: int, inputs: int) -> None:
        if not NativeUpdate.available():
            raise RuntimeError(f"the native optimizer update is unavailable: {NativeUpdate.error()}")
        self.table = np.zeros((inputs, 16), dtype=np.uintp)
        self.total = np.zeros(batch, dtype=np.float32)
        """The last call's [B] sum of the inputs' penalties (overwritten by the next call)."""
        self._call = NativeUpdate.get().kt_fused_updates
        self._addresses = (self.table.ctypes.data, self.total.ctypes.data)

    def __call__(self, steps: list[tuple[FusedUpdate, tuple[int, ...]]]) -> np.ndarray:
        batch = len(self.total)
        if len(steps) > len(self.table) or any(len(update.penalty) != batch for update, _ in steps):
            raise ValueError(f"a group steps at most {len(self.table)} inputs of {batch} samples each")
        for row, (_, arguments) in enumerate(steps):
            self.table[row] = arguments
        table, total = self._addresses
        if self._call(len(steps), table, total, batch, torch.get_num_threads()) != 0:
            raise MemoryError("the native optimizer update could not allocate its plane buffers")
        return self.total


class _Identities:
    """Membership by identity (`in` on a tuple of tensors would compare them elementwise)."""

    def __init__(self, tensors) -> None:
        self.ids = {id(t) for t in tensors}
        self.tensors = tuple(tensors)  # kept alive, so that their ids stay theirs

    def __contains__(self, tensor) -> bool:
        return id(tensor) in self.ids

    def add(self, tensor) -> None:
        self.ids.add(id(tensor))
        self.tensors += (tensor,)


def pointer(tensor: torch.Tensor) -> int:
    if not tensor.is_contiguous() or tensor.device.type != "cpu":
        raise ValueError("the native update reads contiguous CPU tensors")
    return tensor.data_ptr()
