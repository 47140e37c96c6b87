"""What the CLI shows while it waits: a one-line status, and progress bars whose ETA starts at the first real step.

The first step of a job pays one-off costs (loading the model, building the native
loop, compiling, starting a worker) that later steps do not; a rate measured across
them predicts hours for a half-minute job. So a bar says "preparing" until the first
step is reported and only then starts its clock.

Both draw on stderr only when it is a terminal (or KINETOSCOPE_PROGRESS=1), and leave
nothing behind: what remains on the screen is what the command printed.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """KINETOSCOPE_PROGRESS=1/0 forces it on or off; otherwise on exactly when stderr is a terminal."""
    forced = os.environ.get("KINETOSCOPE_PROGRESS", "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    return sys.stderr.isatty()


def each(items: Iterable[T], desc: str, unit: str, enabled: bool | None = None) -> Iterable[T]:
    """`items`, with a bar counting them on stderr: for loops whose every item takes seconds (decoding a video)."""
    enabled = progress_enabled() if enabled is None else enabled
    return tqdm(items, desc=desc, unit=unit, file=sys.stderr, leave=False, disable=not enabled, dynamic_ncols=True,
                mininterval=0.25)


class Status:
    """A transient line on stderr, e.g. "importing x.onnx: starting the import worker …", cleared on exit."""

    def __init__(self, prefix: str, enabled: bool | None = None) -> None:
        self.prefix = prefix
        self.enabled = progress_enabled() if enabled is None else enabled
        self._width = 0

    def say(self, text: str) -> None:
        if not self.enabled:
            return
        line = f"{self.prefix}: {text}"
        sys.stderr.write("\r" + line.ljust(self._width) + ("\n" if not sys.stderr.isatty() else ""))
        sys.stderr.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self.enabled and self._width and sys.stderr.isatty():
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()
        self._width = 0

    def __enter__(self) -> "Status":
        return self

    def __exit__(self, *exc) -> None:
        self.clear()


class _Bar:
    """A tqdm bar on stderr that draws only when progress is shown, with the step of the running work beside it."""

    def __init__(self, enabled: bool | None, **bar) -> None:
        self.enabled = progress_enabled() if enabled is None else enabled
        self.bar = tqdm(file=sys.stderr, leave=False, disable=not self.enabled, dynamic_ncols=True, mininterval=0.25,
                        **bar)

    def _show(self, step, prefix: str = "") -> None:
        """Shows "[prefix ]step i/n" from a Progress message (`step` None keeps the last), redrawing at most every
        `mininterval`: a job reports every step, faster than a terminal needs."""
        if step is not None:
            self.bar.set_postfix_str(f"{prefix}step {step.step + 1}/{step.iterations}", refresh=False)
        if self.bar._time() - self.bar.last_print_t >= self.bar.mininterval:
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StepProgress(_Bar):
    """A bar over units × settings fed by Maximize's progress events; "preparing …" until the first step.

    `bar.n` is the samples done, counting the current chunk's samples by the fraction of
    their steps taken. At the first event the bar's clock and origin move to that
    moment, so the rate and ETA describe only the steps themselves.
    """

    def __init__(self, total: int, desc: str, preparing: str, enabled: bool | None = None) -> None:
        super().__init__(enabled, total=total, desc=f"{desc}: preparing ({preparing})", unit="unit",
                         bar_format="{desc} [{elapsed}]")
        self.desc = desc
        self.started = False

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        total = event.samples_total or self.bar.total
        fraction = (event.step + 1) / max(event.iterations, 1)
        position = min(float(total), event.chunk_start + len(event.activation) * fraction)
        if not self.started:
            self.started = True
            self.bar.set_description_str(self.desc, refresh=False)
            self.bar.bar_format = None
            self.bar.total = total
            self.bar.initial = self.bar.n = round(position, 2)
            self.bar.start_t = self.bar.last_print_t = self.bar._time()  # the clock starts at the first real step
        self.bar.n = round(position, 2)
        self._show(event)


class JobProgress(_Bar):
    """A bar over a stored job's tasks, fed by its Watch events: finished tasks, and the running task's step."""

    def __init__(self, total: int, desc: str, enabled: bool | None = None) -> None:
        super().__init__(enabled, total=total, desc=desc, unit="task")

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        counts = event.tasks
        self.bar.n = counts.done + counts.failed + counts.cancelled
        running = event.progress if event.WhichOneof("event") == "progress" else None
        self._show(running, f"task {running.task} " if running is not None else "")


class BatchProgress(_Bar):
    """A bar over a sweep's batches: each saved batch advances it; the job's running step shows beside it."""

    def __init__(self, total: int, done: int, label: str, enabled: bool | None = None) -> None:
        super().__init__(enabled, total=total, initial=done, desc="sweep", unit="batch")
        self.label = label

    def __call__(self, progress) -> None:
        """Feed it the job's Progress messages."""
        if self.enabled:
            self._show(progress, f"{self.label} ")

    def saved(self) -> None:
        self.bar.update()
