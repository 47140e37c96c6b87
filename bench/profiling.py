"""Where a missed target's time goes: the operators that cost the most, from torch.profiler.

A missed ratio in RESULTS.md comes with this evidence, so that the reason is read off a
profile of the slower side rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile


@dataclass(frozen=True)
class OpCost:
    name: str
    self_ms: float
    calls: int


def top_ops(run: Callable[[], object], count: int = 6) -> tuple[float, list[OpCost]]:
    """Total self CPU time (ms) of `run` and its `count` most expensive operators by self CPU time."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        run()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events) / 1e3
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return total, [OpCost(e.key, e.self_cpu_time_total / 1e3, e.count) for e in events[:count]]


def describe(run: Callable[[], object], label: str, count: int = 6) -> str:
    """One line: `label` profiled, total self CPU ms and the top operators with their share."""
    total, ops = top_ops(run, count)
    parts = ", ".join(f"{op.name} {op.self_ms:.1f} ms ×{op.calls} ({op.self_ms / max(total, 1e-9):.0%})" for op in ops)
    return f"torch.profiler, {label}: {total:.1f} ms self CPU; top: {parts}"


def op_table(run: Callable[[], object]) -> dict[str, OpCost]:
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        run()
    return {e.key: OpCost(e.key, e.self_cpu_time_total / 1e3, e.count) for e in prof.key_averages()}


def describe_extra(slow: Callable[[], object], slow_units: int, fast: Callable[[], object], fast_units: int,
                   label: str, count: int = 8) -> str:
    """The operators the slow side spends more self CPU time in than the fast side, per unit of work (e.g. a step)."""
    a, b = op_table(slow), op_table(fast)
    extra = []
    for key, op in a.items():
        base = b.get(key)
        ms = op.self_ms / slow_units - (base.self_ms / fast_units if base else 0.0)
        calls = op.calls / slow_units - (base.calls / fast_units if base else 0.0)
        if ms > 0:
            extra.append((ms, calls, key))
    extra.sort(reverse=True)
    total = sum(op.self_ms for op in a.values()) / slow_units - sum(op.self_ms for op in b.values()) / fast_units
    listed = ", ".join(f"{key} +{ms:.2f} ms (+{calls:.0f} calls)" for ms, calls, key in extra[:count])
    return f"torch.profiler, {label}: {total:+.2f} ms self CPU per unit; most extra: {listed}"
