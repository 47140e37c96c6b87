"""What can stop a sweep: each error's message says what the user can do about it."""

from __future__ import annotations


class SweepError(ValueError):
    """Something the user can fix before the sweep can run; the message says what."""


class SpecError(SweepError):
    """A spec that cannot run: every problem found, each prefixed with `SPEC:LINE: key`."""


class SweepConflict(SweepError):
    """The output folder holds results of a different spec, which must not be mixed in."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a kill) between batches: what is saved stays valid for a rerun."""
