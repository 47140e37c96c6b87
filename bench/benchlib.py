"""What every benchmark script shares: the machine line, other processes' CPU use, RESULTS.md sections, zoo models."""

from __future__ import annotations

import datetime
import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import onnxruntime
import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(threads: int) -> str:
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{cpu_model()}, {os.cpu_count()} cores{gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({threads} thread{'' if threads == 1 else 's'}), onnxruntime {onnxruntime.__version__}; "
            f"{datetime.date.today().isoformat()}")


def busy_cpu_seconds(hz: int) -> float:
    """CPU seconds all processes have used since boot (Linux /proc/stat), idle and iowait left out."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / hz


def own_cpu_seconds(hz: int) -> float:
    """CPU seconds of this process and of its descendants (Linux /proc; the ended ones once waited for): the
    servers and commands a benchmark starts, and their Ray workers, are part of what it measures, not other
    processes' load."""
    parents, used = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # after "pid (comm) ": state, ppid, ..., utime (11), stime (12), then cutime and cstime (13, 14): the
        # process's own CPU and that of the children it has waited for (gone from the tree, not from its cost)
        fields = text[text.rindex(")") + 2:].split()
        pid = int(entry.name)
        parents[pid], used[pid] = int(fields[1]), sum(int(value) for value in fields[11:15])
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    own, total, stack = os.getpid(), 0, [os.getpid()]
    while stack:
        pid = stack.pop()
        total += used.get(pid, 0)
        stack.extend(children.get(pid, ()))
    if own in used:
        return total / hz
    ended = os.times()
    return time.process_time() + ended.children_user + ended.children_system


def timed(run: Callable[[], object]) -> float:
    """Wall seconds of one call of `run`."""
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def write_section(path: Path, title: str, text: str, threads: int) -> None:
    """Replace (or add) the `title` section of RESULTS.md, keeping every other section."""
    current = path.read_text() if path.exists() else f"# Benchmarks\n\nMachine: {machine_line(threads)}.\n"
    pattern = re.compile(rf"^{re.escape(title)}\s*$.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current, count=1)
    else:
        updated = current.rstrip() + "\n\n" + text
    path.write_text(updated.rstrip() + "\n")


@dataclass(frozen=True)
class ZooModel:
    """A zoo architecture at a width and input size, exported as `kinetoscope zoo export` would."""

    name: str
    width: float
    frames: int
    size: int

    @property
    def label(self) -> str:
        return f"{self.name} w{self.width:g} {self.frames}f {self.size}px"

    def export(self, folder: Path) -> Path:
        from kinetoscope.model_zoo.export import export_model

        return export_model(self.name, folder / f"{self.name}.onnx", frames=self.frames, size=self.size, width=self.width)
