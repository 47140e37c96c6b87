"""The engine benchmark's figures: per-case medians, the RESULTS.md tables and the verdicts with their reasons."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from benchlib import machine_line
from suite import Verdict, at_least, at_most

if TYPE_CHECKING:
    from engine_step import Case, Timings

STEP_TARGET = at_most(1.15)
"""An engine step may cost at most this many bare forward+backward passes."""
GAIN_TARGET = at_least(0.9)
"""Batching must give the engine at least this share of the bare network's own gain."""
PARTS = ("jitter", "fused update")
"""The fused update: the jitter undone on the gradient, R_B and R_TV gradients, Adam, projection and the next
jittered input (engine/fused_update.c on the CPU, engine/step.py elsewhere)."""
SINGLE = 16
"""One-unit calls per repetition: their rate is the one-at-a-time baseline of every batching gain."""


def gain(batch: int, one_at_a_time: float, batched: float) -> float:
    """Units per second at `batch` units per call over one unit per call, from the wall times of SINGLE
    one-unit calls (or passes) and of one call at `batch` making as many steps."""
    return batch * one_at_a_time / (SINGLE * batched)


@dataclass(frozen=True)
class Row:
    device: str
    case: "Case"
    timings: "Timings"

    @property
    def batches(self) -> list[int]:
        return sorted(self.timings.engine_steps)

    @property
    def name(self) -> str:
        return f"{self.device} {self.case.model} {self.case.label}"

    def step_ms(self, batch: int) -> float:
        return statistics.median(self.timings.engine_steps[batch]) * 1e3

    def raw_ms(self, batch: int) -> float:
        return statistics.median(self.timings.raw[batch]) * 1e3

    def step_ratio(self, batch: int) -> float:
        return statistics.median(self.timings.step_ratios[batch])

    def rate(self, batch: int) -> float:
        """Unit-steps per second of whole calls: SINGLE one-unit calls for batch 1, one call otherwise."""
        units = SINGLE if batch == 1 else batch
        return units * self.case.iterations / statistics.median(self.timings.calls[batch])

    def engine_gain(self, batch: int) -> float:
        return self.rate(batch) / self.rate(1)

    def raw_gain(self, batch: int) -> float:
        """Passes per second at this batch over passes per second at batch 1, each from the wall time
        of as many passes as the engine's calls make steps: the same work as the engine's gain, with
        the same exposure to a stalled machine (a context switch here costs a pass 20-40 ms)."""
        totals = self.timings.raw_totals
        return gain(batch, statistics.median(totals[1]), statistics.median(totals[batch]))

    def share(self, batch: int) -> float:
        """The median over repetitions of each one's engine gain over its bare gain: the machine's speed
        drifts between repetitions (by up to 1.7× on a shared VM), and a repetition's timings see the
        same speed, as the step ratios' two sides do."""
        calls, raw = self.timings.calls, self.timings.raw_totals
        shares = [gain(batch, one, batched) / gain(batch, raw_one, raw_batched)
                  for one, batched, raw_one, raw_batched in zip(calls[1], calls[batch], raw[1], raw[batch])]
        return statistics.median(shares)

    def part_ms(self, batch: int, name: str) -> float:
        return statistics.median(self.timings.parts[batch][name]) * 1e3

    def breakdown(self, batch: int) -> str:
        extra = self.step_ms(batch) - self.raw_ms(batch)
        parts = {name: self.part_ms(batch, name) for name in PARTS}
        listed = ", ".join(f"{name} {ms:.2f}" for name, ms in parts.items())
        return (f"at batch {batch} a step costs {extra:.2f} ms more than the bare pass "
                f"({self.step_ms(batch):.2f} vs {self.raw_ms(batch):.2f}); the pieces alone: {listed} ms; "
                f"rest of the loop {extra - sum(parts.values()):.2f} ms")


def step_table(rows: list[Row]) -> list[str]:
    lines = [
        "| device | model | objective | batch | engine step (ms) | bare fwd+bwd (ms) | ratio | target |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        for batch in row.batches:
            ratio = row.step_ratio(batch)
            lines.append(
                f"| {row.device} | {row.case.model} | {row.case.label} | {batch} | {row.step_ms(batch):.2f} | "
                f"{row.raw_ms(batch):.2f} | {ratio:.2f} | {STEP_TARGET} {STEP_TARGET.verdict(ratio)} |"
            )
    return lines


def gain_table(rows: list[Row]) -> list[str]:
    lines = [
        "| device | model | objective | units/call | engine, 1 unit/call (unit-steps/s) | engine, batched (unit-steps/s) "
        "| engine gain | bare gain | engine/bare | target |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        for batch in row.batches[1:]:
            share = row.share(batch)
            lines.append(
                f"| {row.device} | {row.case.model} | {row.case.label} | {batch} | {row.rate(1):.0f} | {row.rate(batch):.0f} | "
                f"{row.engine_gain(batch):.2f}× | {row.raw_gain(batch):.2f}× | {share:.2f} | "
                f"{GAIN_TARGET} {GAIN_TARGET.verdict(share)} |"
            )
    return lines


def parts_table(rows: list[Row]) -> list[str]:
    lines = [
        "| device | model | objective | batch | engine − bare (ms) | " + " | ".join(f"{p} (ms)" for p in PARTS)
        + " | rest of the loop (ms) |",
        "|---|---|---|---:|---:|" + "---:|" * len(PARTS) + "---:|",
    ]
    for row in rows:
        for batch in row.batches:
            extra = row.step_ms(batch) - row.raw_ms(batch)
            parts = [row.part_ms(batch, name) for name in PARTS]
            lines.append(
                f"| {row.device} | {row.case.model} | {row.case.label} | {batch} | {extra:.2f} | "
                + " | ".join(f"{value:.2f}" for value in parts) + f" | {extra - sum(parts):.2f} |"
            )
    return lines


def verdicts(rows: list[Row], evidence: dict[tuple[str, str, str], Callable[[int], str]]) -> list[Verdict]:
    """Step ratios at every batch and batching shares; a missed one carries its breakdown and a profile."""
    found = []
    for row in rows:
        profile = evidence.get((row.device, row.case.model, row.case.label))
        for batch in row.batches:
            ratio = row.step_ratio(batch)
            reason = ""
            if not STEP_TARGET.met(ratio):
                reason = row.breakdown(batch) + (f". {profile(batch)}" if profile else "")
            found.append(Verdict("1 engine step / bare fwd+bwd", f"{row.name}, batch {batch}", ratio, STEP_TARGET, reason))
        for batch in row.batches[1:]:
            share = row.share(batch)
            reason = ""
            if not GAIN_TARGET.met(share):
                reason = (f"engine gain {row.engine_gain(batch):.2f}× against a bare gain of {row.raw_gain(batch):.2f}×: "
                          f"the step ratio is {row.step_ratio(batch):.2f} at batch {batch} and {row.step_ratio(1):.2f} "
                          f"at batch 1, so the engine's own work grows faster with the batch than the network's; "
                          + row.breakdown(batch))
            found.append(Verdict(f"2 batching gain share ({batch} units/call)", row.name, share, GAIN_TARGET, reason))
    return found


def section(rows: list[Row], notes: list[str], command: str, threads: int) -> str:
    body = [
        "## Engine",
        "",
        f"`{command}` — {machine_line(threads)}.",
        "",
        "Engine step: the interval between two consecutive `on_step` calls of `maximize` (jitter, forward,",
        "objective, backward, the fused update, bookkeeping), median over all steps after the first few",
        "of each call, with the update in the native loop as in any CPU run (built in a warm-up call,",
        "outside the timing). Bare fwd+bwd: the same truncated graph (`truncate(model.module, [layer])`)",
        "at the same batch, inputs with `requires_grad`, `out.sum().backward()`. Ratios are medians of",
        "per-repetition ratios; repetitions interleave the two sides. The process keeps freed memory for",
        "reuse (`server/allocator.py`, as `kinetoscope serve` does), which spares the engine's steps the",
        "page faults of blocks glibc would otherwise return to the kernel; the bare side gains nothing from it.",
        "",
        *step_table(rows),
        "",
        "Batching: units per second of one `maximize` call holding 16 or 64 units (samples = units ×",
        "settings) against one-unit calls (16 of them, whole calls: set-up and the final forward",
        "included), beside the bare network's gain: the wall time of as many bare passes as those calls",
        "make steps (16 × iterations at batch 1, iterations at the batch), so that both sides do the same",
        "work and meet the same stalls. The gains are from medians over all repetitions; engine/bare is the",
        "median of each repetition's own engine gain over its bare gain (one repetition's calls and passes",
        "run back to back). The step ratios' bare passes are timed apart, as before: a set of 20 passes",
        "(4 for VGG) after each call.",
        "",
        *gain_table(rows),
        "",
        "Where the extra time of a step goes: the engine's pieces timed alone on all inputs at",
        "that batch: the jitter (the input the network sees; the previous update wrote it) and the",
        "fused update (the jitter undone on the gradient, R_B and R_TV gradients, Adam, projection,",
        "next step's jittered input: `engine/fused_update.c`);",
        "the rest is the loop itself (the objective, its backward into the graph, bookkeeping) and",
        "what the pieces cost together beyond their sum.",
        "",
        *parts_table(rows),
        "",
        *notes,
    ]
    return "\n".join(body).rstrip() + "\n"
