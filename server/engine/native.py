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
from .optim.adam import AdamSchedule
from .regularizers import RegularizerWeights

_POINTER = ctypes.c_void_p


class NativeInput(ctypes.Structure):
    """`struct kt_input` of fused_update.c, field for field: one input's buffers and constants for one step."""

    _fields_ = [
        ("x", _POINTER), ("grad", _POINTER), ("x_out", _POINTER), ("feed", _POINTER),
        ("shifts", _POINTER), ("next_shifts", _POINTER), ("alive", _POINTER),
        ("step_size", ctypes.c_float), ("bias2_sqrt", ctypes.c_float),
        ("exp_avg", _POINTER), ("exp_avg_sq", _POINTER), ("kappa", _POINTER), ("gamma", _POINTER),
        ("active", _POINTER), ("plane_penalty", _POINTER), ("penalty", _POINTER),
        ("dims", ctypes.c_int64 * 5), ("strides", ctypes.c_int64 * 3),
        ("alpha", ctypes.c_float), ("bound", ctypes.c_float), ("lambda_b", ctypes.c_float), ("lambda_tv", ctypes.c_float),
        ("beta1", ctypes.c_float), ("beta2", ctypes.c_float), ("eps", ctypes.c_float),
    ]


def _bind(library: ctypes.CDLL) -> ctypes.CDLL:
    size = library.kt_input_size
    size.restype = ctypes.c_int64
    if size() != ctypes.sizeof(NativeInput):
        raise RuntimeError(f"struct kt_input is {size()} bytes in C but {ctypes.sizeof(NativeInput)} in native.py")
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
    schedule) is checked and written into the input's `NativeInput` once, as right after a
    network's forward pass each Python-level operation costs tens of microseconds, a visible
    share of a small network's step.

    `x` and `out` are the input's two value buffers (a step reads one and writes the
    other); `weights` the regularizers' constants; `schedule` Adam's per-step sizes (in the
    input's units) and bias corrections; `shifts` [steps, B, 2] int64 the jitter's shifts
    (None: the input never moves).
    """

    def __init__(self, x: torch.Tensor, out: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                 active: torch.Tensor, kappa: torch.Tensor, gamma: torch.Tensor, layout: str, kind: str | None,
                 weights: RegularizerWeights, schedule: AdamSchedule, shifts: torch.Tensor | None = None) -> None:
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
        steps = len(schedule)
        if shifts is not None and (shifts.shape != (steps, b, 2) or shifts.dtype != torch.int64
                                   or not shifts.is_contiguous() or shifts.device.type != "cpu"):
            raise ValueError(f"schedule must be a contiguous [{steps}, {b}, 2] int64 CPU tensor of shifts")
        self._step_sizes = np.asarray(schedule.step_sizes, dtype=np.float32).tolist()
        self._bias2_sqrt = np.asarray(schedule.bias2_sqrt, dtype=np.float32).tolist()
        self._planes = np.empty(b * k, dtype=np.float64)
        self.penalty = torch.empty(b)
        """The last call's [B] penalty λ_B R_B + λ_TV R_TV at x (overwritten by the next call)."""
        self._tensors = (exp_avg, exp_avg_sq, active, kappa, gamma, shifts)  # kept alive: the loop holds addresses
        adam = schedule.adam
        self.input = NativeInput(
            exp_avg=pointer(exp_avg), exp_avg_sq=pointer(exp_avg_sq), kappa=pointer(kappa), gamma=pointer(gamma),
            active=pointer(active), plane_penalty=self._planes.ctypes.data, penalty=self.penalty.data_ptr(),
            dims=(ctypes.c_int64 * 5)(*view.shape), strides=(ctypes.c_int64 * 3)(*view.stride()[:3]),
            alpha=weights.alpha, bound=weights.bound, lambda_b=weights.lambda_b, lambda_tv=weights.lambda_tv,
            beta1=adam.beta1, beta2=adam.beta2, eps=adam.eps,
        )
        """This input's `struct kt_input`: `arguments` rewrites only what changes from step to step."""
        self._steps, self._shape, self._stride = steps, x.shape, x.stride()
        self._known = _Identities((x, out))
        self._alive: torch.Tensor | None = None
        self._shifts = None if shifts is None else (shifts.data_ptr(), b * 2 * shifts.element_size())

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
                  alive: torch.Tensor, step: int) -> NativeInput:
        """This input's `NativeInput` for one step (see `__call__`), checked; an `UpdateGroup` runs it.

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
        shifts = next_shifts = None
        if self._shifts is not None:
            base, row = self._shifts
            shifts = base + step * row
            next_shifts = shifts + row if feed is not None else None
        native = self.input
        native.x, native.grad, native.x_out = x.data_ptr(), grad.data_ptr(), out.data_ptr()
        native.feed = None if feed is None else feed.data_ptr()
        native.shifts, native.next_shifts, native.alive = shifts, next_shifts, alive.data_ptr()
        native.step_size, native.bias2_sqrt = self._step_sizes[step], self._bias2_sqrt[step]
        return native


class UpdateGroup:
    """Several inputs' updates, each given with its `FusedUpdate.arguments`, run in one native
    call that also sums their penalties.

    One call per step instead of one per input: right after the backward pass each crossing
    from Python into C costs tens of microseconds, a visible share of a small network's step
    at batch 1. The table of struct addresses and the total live as long as the group, so a
    step converts nothing. The caller keeps the tensors behind the addresses alive until a
    call returns.
    """

    def __init__(self, batch: int, inputs: int) -> None:
        if not NativeUpdate.available():
            raise RuntimeError(f"the native optimizer update is unavailable: {NativeUpdate.error()}")
        self.table = np.zeros(inputs, dtype=np.uintp)
        self.total = np.zeros(batch, dtype=np.float32)
        """The last call's [B] sum of the inputs' penalties (overwritten by the next call)."""
        self._call = NativeUpdate.get().kt_fused_updates
        self._addresses = (self.table.ctypes.data, self.total.ctypes.data)

    def __call__(self, steps: list[tuple[FusedUpdate, NativeInput]]) -> np.ndarray:
        batch = len(self.total)
        if len(steps) > len(self.table) or any(len(update.penalty) != batch for update, _ in steps):
            raise ValueError(f"a group steps at most {len(self.table)} inputs of {batch} samples each")
        for row, (_, native) in enumerate(steps):
            self.table[row] = ctypes.addressof(native)
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
