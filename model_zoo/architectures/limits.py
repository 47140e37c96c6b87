"""The smallest clip each architecture's geometry admits, checked before anything is built.

The rule is the same for every architecture: no convolution or pooling window may be
larger than its (padded) input. Below that a layer has nothing to slide over, and a
ceil-mode pool would take a window that lies mostly past the input's end. Each minimum
here is the least extent for which that holds at every layer; tests check it against
the modules themselves. The rule is monotone for every zoo architecture, so a minimum
is all an input needs to clear.
"""

from __future__ import annotations

from dataclasses import dataclass


class ZooSizeError(ValueError):
    """An input extent, width or class count a zoo architecture cannot take; names what it needs."""


@dataclass(frozen=True)
class InputLimits:
    """Least `frames` (flow fields L, or clip length T) and `size` (pixels), each with the layer that sets it."""

    min_frames: int = 1
    min_size: int = 1
    frames_reason: str = ""
    size_reason: str = ""

    def problems(self, frames: int, size: int) -> list[str]:
        """What `frames` × `size` falls short of, as `--flag ≥ N (why), got M` phrases; empty when it fits."""
        found = []
        if frames < self.min_frames:
            found.append(_phrase("--frames", self.min_frames, self.frames_reason, frames))
        if size < self.min_size:
            found.append(_phrase("--size", self.min_size, self.size_reason, size))
        return found


def _phrase(flag: str, minimum: int, reason: str, got: int) -> str:
    because = f" ({reason})" if reason else ""
    return f"{flag} ≥ {minimum}{because}; got {got}"


def ceil_pooled(extent: int, kernel: int, stride: int) -> int:
    """Output length of an unpadded ceil-mode pool (Caffe's rounding) over `extent` ≥ `kernel`."""
    return -(-(extent - kernel) // stride) + 1


def check_model_args(name: str, limits: InputLimits, frames: int, size: int, classes: int, width: float) -> None:
    """Raise ZooSizeError, one line naming every minimum missed, unless `name` can be built this way."""
    problems = limits.problems(frames, size)
    if classes < 1:
        problems.append(f"--classes ≥ 1; got {classes}")
    if not width > 0:
        problems.append(f"--width > 0 (a channel multiplier such as 0.25); got {width}")
    if problems:
        raise ZooSizeError(f"{name} needs " + ", and ".join(problems))
