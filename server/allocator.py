"""Let the C allocator keep freed memory for reuse instead of handing it back to the kernel at once.

Every optimizer step frees and allocates again the same large blocks: activations,
gradients, the inputs' gradients. glibc serves blocks above an adaptive threshold with
mmap and returns them to the kernel on free, so each step can get them back as fresh
pages, zeroed by the kernel one page fault at a time. Measured on the small two-stream
model, 64 samples a step: about 4,400 page faults a step and 36.9 ms, against 0.5 and
34.0 ms with this setting. The price is that the process keeps up to `RETAINED` bytes
of freed memory mapped: its resident size stays near its high-water mark.

`kinetoscope serve` and the benchmarks call this at start; in-process users of the
engine may call it too. KINETOSCOPE_MALLOC=0 leaves the allocator alone.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

_LOGGER = logging.getLogger(__name__)
RETAINED = 1 << 30
"""Blocks up to this size come from the heap, and up to this much free memory stays with the process."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def retain_freed_memory(limit: int = RETAINED) -> bool:
    """Ask glibc malloc to keep freed blocks of up to `limit` bytes; True where it took the setting.

    Elsewhere (macOS, musl) this does nothing and returns False."""
    if os.environ.get("KINETOSCOPE_MALLOC", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    taken = bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))
    _LOGGER.debug("malloc keeps freed blocks up to %d bytes: %s", limit, taken)
    return taken
