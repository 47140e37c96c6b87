"""The recording accumulators' update as one hand-written C pass (`channel_statistics.c`).

Why by hand: a chunk of per-clip maxima updates six statistics (maximum, sum,
histogram, top k, per-class maximum, per-class sum and count), and numpy makes about twenty passes over it for
them, each with its own temporary. For four layers of the zoo's small two-stream model
that came to 5.5 ms per 1024 clips, and to about twice that right after onnxruntime's
session, as in a recording: 5-10 % of the forward pass. The C pass reads each value
once and takes about 1 ms for the same work. `statistics.py` keeps the numpy version,
which the tests hold this one to and which runs where there is no C compiler.
"""

from __future__ import annotations

import ctypes
from typing import NamedTuple

from .native_build import NativeLibrary

_pointer, _int64 = ctypes.c_void_p, ctypes.c_int64


class ChannelKernels(NamedTuple):
    finite_range: ctypes._CFuncPtr
    """(values, count, low_high[2] float64) -> finite values among them; low_high gets their range."""
    channel_update: ctypes._CFuncPtr
    """One chunk [n, c] into the accumulators; returns the entries now kept per channel in the top k."""


def _bind(library: ctypes.CDLL) -> ChannelKernels:
    finite_range = library.kt_finite_range
    finite_range.argtypes = [_pointer, _int64, _pointer]
    finite_range.restype = _int64
    update = library.kt_channel_update
    update.argtypes = [_pointer, _int64, _int64, _pointer, _pointer,  # values, n, c, index, labels
                       _pointer, _pointer, _pointer,  # maximum, sum, chunk_sum
                       _pointer, _int64, _pointer,  # edges, bins, counts
                       _pointer, _pointer, _int64, _int64, _pointer,  # top values, top index, k, kept, bar
                       _pointer, _int64, _pointer, _pointer]  # per_class max, classes, per_class sum, count
    update.restype = _int64
    return ChannelKernels(finite_range, update)


NativeStatistics = NativeLibrary("channel_statistics.c", _bind, "recording statistics")
"""The compiled kernels, built on first use and shared by every recorder."""
