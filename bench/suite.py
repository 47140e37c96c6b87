"""What every benchmark of the suite hands back to `run_all.py`: its options, its verdicts and its RESULTS.md section.

Each benchmark module has `run(options) -> Report`; the suite runs them one after the
other in one process, so every ratio in RESULTS.md comes from the same machine state,
the same library versions and the same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Options:
    """How hard to measure: `smoke` is a seconds-long run on tiny sizes that checks the code paths, never the figures."""

    smoke: bool = False
    repeats: int | None = None
    """Repetitions per case; None lets each benchmark take its own default."""
    wait: float = 60.0
    """Seconds to wait for other processes to leave the CPU before a repetition (0 never waits)."""
    threads: int = 2
    gpu: bool = True
    """Measure on CUDA too when a GPU is present."""

    def reps(self, full: int, smoke: int = 2) -> int:
        return self.repeats or (smoke if self.smoke else full)

    def devices(self) -> list[torch.device]:
        cuda = self.gpu and torch.cuda.is_available()
        return [torch.device("cpu")] + ([torch.device("cuda")] if cuda else [])


@dataclass(frozen=True)
class Target:
    """A bound a ratio must meet: `figure <= value` (at_most) or `figure >= value`."""

    value: float
    at_most: bool

    def met(self, figure: float) -> bool:
        return figure <= self.value if self.at_most else figure >= self.value

    def verdict(self, figure: float) -> str:
        """What a results table says of `figure`: met or MISSED."""
        return "met" if self.met(figure) else "MISSED"

    def __str__(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.value:g}"


def at_most(value: float) -> Target:
    return Target(value, True)


def at_least(value: float) -> Target:
    return Target(value, False)


@dataclass(frozen=True)
class Verdict:
    """One ratio of the suite: what was compared, the figure, its target (None: reported only) and, when missed, why."""

    benchmark: str
    case: str
    figure: float
    target: Target | None = None
    reason: str = ""
    unit: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.figure)

    def status(self) -> str:
        return "reported" if self.target is None else self.target.verdict(self.figure)

    def line(self) -> str:
        target = f"; target {self.target}: {self.status()}" if self.target else ""
        return f"ratio {self.benchmark} | {self.case}: {self.figure:.3f}{self.unit}{target}"


@dataclass
class Report:
    """A benchmark's RESULTS.md section (starting with its `## ` title) and its verdicts."""

    title: str
    text: str
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
