"""Repetitions taken while other processes leave the CPU alone, and the load they saw.

On a shared 2-core machine, two busy cores elsewhere make a 2-thread OpenMP team wait a
scheduler slice at every barrier, which can slow a small network by 10–100×; timings
taken then say nothing about the code measured, so they are detected and repeated.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from benchlib import busy_cpu_seconds, own_cpu_seconds

QUIET_CORES = 0.25
"""CPU (in cores) other processes may use while a repetition runs before it is repeated."""


@dataclass
class Budget:
    """Seconds all guards of one process may spend waiting for quiet and repeating disturbed repetitions.

    On a machine that stays busy, waiting and repeating would never end; once the budget
    is spent, repetitions are kept as they come and the load they saw is noted.
    """

    seconds: float = 600.0
    spent: float = 0.0

    def left(self) -> float:
        return max(0.0, self.seconds - self.spent)


BUDGET = Budget()

T = TypeVar("T")


class ForeignLoad:
    """CPU used by other processes during a span, in cores (Linux /proc/stat; None elsewhere). This process's own
    descendants (a server it started) count as its own."""

    def __init__(self) -> None:
        self.available = Path("/proc/stat").exists()
        self.hz = os.sysconf("SC_CLK_TCK") if self.available else 100

    def start(self) -> tuple[float, float, float] | None:
        if not self.available:
            return None
        return time.perf_counter(), own_cpu_seconds(self.hz), busy_cpu_seconds(self.hz)

    def stop(self, mark: tuple[float, float, float] | None) -> float | None:
        if mark is None:
            return None
        wall = time.perf_counter() - mark[0]
        own = own_cpu_seconds(self.hz) - mark[1]
        busy = busy_cpu_seconds(self.hz) - mark[2]
        return max(0.0, (busy - own) / max(wall, 1e-9))

    def wait_quiet(self, limit: float) -> float | None:
        """Wait (at most `limit` seconds) until other processes leave the CPU; return their last load."""
        if not self.available:
            return None
        deadline = time.perf_counter() + limit
        while True:
            mark = self.start()
            time.sleep(0.5)
            load = self.stop(mark)
            if load is None or load < QUIET_CORES or time.perf_counter() >= deadline:
                return load


@dataclass
class Guard:
    """Runs one repetition of a measurement again while other processes loaded the CPU."""

    monitor: ForeignLoad
    wait: float
    retries: int
    repeated: int = 0
    loads: list[float] = field(default_factory=list)

    def run(self, measure: Callable[[], T]) -> T:
        attempt = 0
        while True:
            if self.wait > 0 and BUDGET.left() > 0:
                began = time.perf_counter()
                self.monitor.wait_quiet(min(self.wait, BUDGET.left()))
                BUDGET.spent += time.perf_counter() - began
            mark = self.monitor.start()
            began = time.perf_counter()
            value = measure()
            load = self.monitor.stop(mark)
            if load is None:
                return value
            if load < QUIET_CORES or attempt == self.retries or BUDGET.left() <= 0:
                self.loads.append(load)
                return value
            BUDGET.spent += time.perf_counter() - began
            self.repeated += 1
            attempt += 1

    def notes(self) -> list[str]:
        if not self.loads:
            return []
        notes = [f"Other processes used at most {max(self.loads):.2f} cores (median {statistics.median(self.loads):.2f})"
                 f" during the kept repetitions; {self.repeated} repetition(s) were run again because they"
                 f" used more than {QUIET_CORES} cores."]
        if max(self.loads) >= QUIET_CORES:
            notes.append("At least one kept repetition still ran beside busy processes after its retries; "
                         "its figures may be slower than the code alone.")
        return notes


def guard_for(smoke: bool, wait: float) -> Guard:
    """No waiting and no retries in a smoke run (its figures mean nothing); otherwise three retries."""
    return Guard(ForeignLoad(), wait=0.0 if smoke else wait, retries=0 if smoke else 3)
