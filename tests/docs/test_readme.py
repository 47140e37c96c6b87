"""README.md and docs/*.md as an executable contract: every ```sh line and every ```python block runs.

Each ```sh block runs line by line (bash, in a scratch folder, the installed venv first
on PATH, a scratch KINETOSCOPE_HOME) and each line must exit 0 without a traceback;
a line with --json must print one JSON document. A file's ```python blocks run in
order as one script, like a notebook session. The scratch folder links the checkout's
.venv, Makefile, pyproject.toml, model_zoo/ and docs/, so paths in the text resolve.

Markers: HTML comments, visible in the Markdown source, directly above a block, one
per comment. They are the only way to change or skip what runs:

  <!-- doc-test: model.onnx = zoo i3d --width 0.125 --frames 8 --size 32 -->
        the file the text names is exported from the zoo first (`zoo export` flags)
  <!-- doc-test: two_stream.onnx = trained two_stream_small -->
        ... or copied from model_zoo/trained/
  <!-- doc-test: clips/ = videos -->
        ... or a folder of short videos, two classes of two clips each
  <!-- doc-test: "16x224x224" -> "8x32x32" -->
        text replaced in the block before it runs (smaller shapes, fewer units)
  <!-- doc-test: "REC_ID" -> output /recording ([0-9a-f]{16})/ -->
        replaced by what an earlier line of the block printed (the regex's group)
  <!-- doc-test: expect "kinetoscope layers" /^layer\\s+shape/ -->
        lines starting with the quoted text must print output matching the regex
  <!-- doc-test: background "kinetoscope serve" until "serving on" -->
        the line runs in the background until it prints the text, then gets SIGTERM
  <!-- doc-test: slow "make demo" -->
        lines starting with the text run only in the slow run (pytest -m slow)
  <!-- doc-test: skip "make test": runs this very suite -->
        lines starting with the text never run; the reason is required
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
LINKED = (".venv", "Makefile", "pyproject.toml", "model_zoo", "docs")
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*doc-test:\s*(.*?)\s*-->\s*$")
MAKE_FILE = re.compile(r"^(\S+)\s*=\s*(zoo|trained|videos)\b\s*(.*)$")
REPLACE = re.compile(r'^"(.+?)"\s*->\s*(?:"(.*)"|output\s+/(.+)/)$')
EXPECT = re.compile(r'^expect\s+"(.+?)"\s+/(.+)/$')
BACKGROUND = re.compile(r'^background\s+"(.+?)"\s+until\s+"(.+?)"$')
SLOW = re.compile(r'^slow\s+"(.+?)"$')
SKIP = re.compile(r'^skip\s+"(.+?)":\s*\S.*$')


@dataclass
class Block:
    doc: Path
    line: int
    language: str
    text: str
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    replace: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    expect: list[tuple[str, str]] = field(default_factory=list)
    background: dict[str, str] = field(default_factory=dict)
    slow: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)

    def apply(self, marker: str) -> None:
        if found := MAKE_FILE.match(marker):
            self.files[found[1]] = (found[2], found[3])
        elif found := REPLACE.match(marker):
            self.replace.append((found[1], found[2], found[3]))
        elif found := EXPECT.match(marker):
            self.expect.append((found[1], found[2]))
        elif found := BACKGROUND.match(marker):
            self.background[found[1]] = found[2]
        elif found := SLOW.match(marker):
            self.slow.append(found[1])
        elif found := SKIP.match(marker):
            self.skip.append(found[1])
        else:
            raise ValueError(f"unknown doc-test marker {marker!r}; the test's docstring lists them")


def blocks(doc: Path) -> list[Block]:
    """The ```sh and ```python blocks of a Markdown file, each with the markers just above it."""
    found: list[Block] = []
    pending: list[str] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if marker := MARKER.match(lines[i]):
            pending.append(marker[1])
        elif fence := FENCE.match(lines[i]):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if fence[1] in ("sh", "python"):
                block = Block(doc, i + 1, fence[1], "\n".join(lines[i + 1:end]))
                for marker_text in pending:
                    block.apply(marker_text)
                found.append(block)
            elif pending:
                raise ValueError(f"{doc.name}:{i + 1}: doc-test markers above a ```{fence[1]} block, which does not run")
            pending = []
            i = end
        elif lines[i].strip():
            if pending:
                raise ValueError(f"{doc.name}:{i + 1}: doc-test markers must stand directly above a block")
        i += 1
    return found


def cases() -> list:
    params = []
    for doc in DOCS:
        found = blocks(doc)
        shell = [b for b in found if b.language == "sh"]
        for block in shell:
            name = f"{doc.name}:{block.line}"
            params.append(pytest.param(block, False, id=name))
            if block.slow:
                params.append(pytest.param(block, True, id=f"{name}-slow", marks=pytest.mark.slow))
        python = [b for b in found if b.language == "python"]
        if python:
            params.append(pytest.param(python, False, id=f"{doc.name}:python"))
    return params


def scratch(tmp_path: Path) -> dict[str, str]:
    for name in LINKED:
        if (REPO / name).exists():
            (tmp_path / name).symlink_to(REPO / name)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KINETOSCOPE_", "GRPC_")) and key != "PYTHONWARNINGS"}
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "KINETOSCOPE_HOME": str(tmp_path / "home"),
            "OMP_NUM_THREADS": "2"}


def make_file(tmp_path: Path, name: str, kind: str, args: str, env: dict[str, str]) -> None:
    target = tmp_path / name
    if kind == "zoo":
        done = subprocess.run(["kinetoscope", "zoo", "export", *shlex.split(args), "--out", name], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    elif kind == "trained":
        shutil.copy(REPO / "model_zoo" / "trained" / f"{args.strip()}.onnx", target)
    else:
        write_videos(target)


def write_videos(folder: Path) -> None:
    """Two classes, two clips each: a red square moving right, a blue one moving down (12 frames, 48×48)."""
    import av

    for label, (colour, step) in {"right": ((220, 30, 30), (0, 3)), "down": ((30, 30, 220), (3, 0))}.items():
        (folder / label).mkdir(parents=True)
        for clip in range(2):
            with av.open(str(folder / label / f"{clip}.mp4"), "w") as container:
                stream = container.add_stream("mpeg4", rate=12)
                stream.width = stream.height = 48
                stream.pix_fmt = "yuv420p"
                for t in range(12):
                    frame = np.zeros((48, 48, 3), np.uint8)
                    y, x = 8 + step[0] * t + clip, 8 + step[1] * t + clip
                    frame[y:y + 12, x:x + 12] = colour
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                container.mux(stream.encode())


def run_line(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def run_background(line: str, until: str, cwd: Path, env: dict[str, str]) -> str:
    process = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    seen = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and (text := process.stdout.readline()):
            seen.append(text)
            if until in text:
                break
        assert any(until in text for text in seen), f"`{line}` never printed {until!r}:\n{''.join(seen)}"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, f"`{line}` exited {code} after SIGTERM:\n{''.join(seen)}"
    return "".join(seen)


def commands(block: Block) -> list[str]:
    """The block's lines as bash runs them: continuation lines joined, blank and comment-only lines dropped."""
    joined = block.text.replace("\\\n", " ")
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_markers_parse_in_every_doc() -> None:
    found = [block for doc in DOCS for block in blocks(doc)]
    assert any(block.doc.name == "README.md" and block.language == "python" for block in found)
    assert all(block.skip or block.language != "sh" or commands(block) for block in found)


@pytest.mark.parametrize(("block", "slow"), cases())
def test_doc_block_runs(block, slow, tmp_path) -> None:
    env = scratch(tmp_path)
    if isinstance(block, list):  # a document's Python blocks, as one session
        for part in block:
            for name, (kind, args) in part.files.items():
                make_file(tmp_path, name, kind, args, env)
        script = "\n\n".join(part.text for part in block)
        for part in block:
            for old, new, _ in part.replace:
                script = script.replace(old, new)
        done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        return
    for name, (kind, args) in block.files.items():
        make_file(tmp_path, name, kind, args, env)
    printed = ""
    for line in commands(block):
        if any(line.startswith(prefix) for prefix in block.skip):
            continue
        if not slow and any(line.startswith(prefix) for prefix in block.slow):
            continue
        for old, new, pattern in block.replace:
            if old in line:
                if pattern is not None:
                    found = re.search(pattern, printed)
                    assert found, f"no earlier output matches /{pattern}/ for {old!r}"
                    new = found[1]
                line = line.replace(old, new)
        until = next((text for prefix, text in block.background.items() if line.startswith(prefix)), None)
        if until is not None:
            printed += run_background(line, until, tmp_path, env)
            continue
        done = run_line(line, tmp_path, env)
        assert done.returncode == 0, f"`{line}` exited {done.returncode}:\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"`{line}`:\n{done.stderr}"
        if "--json" in line.split("#")[0]:
            json.loads(done.stdout)
        for prefix, pattern in block.expect:
            if line.startswith(prefix):
                assert re.search(pattern, done.stdout, re.MULTILINE), f"`{line}` printed:\n{done.stdout}"
        printed += done.stdout + done.stderr
