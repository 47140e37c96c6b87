"""Import children that misbehave on purpose: what the sandbox must turn into clear errors."""

from __future__ import annotations

import ctypes
import os
import signal
import time


def segfault(job, blobs, report) -> dict:
    report("crash")
    ctypes.string_at(0)  # reads address 0: SIGSEGV
    return {}


def hang(job, blobs, report) -> dict:
    report("hang")
    time.sleep(3600)
    return {}


def hog_memory(job, blobs, report) -> dict:
    report("hog")
    held = []
    for _ in range(1024):
        held.append(bytearray(64 << 20))  # 64 MiB at a time, touched: past any limit the test sets
    return {"held": len(held)}


def killed(job, blobs, report) -> dict:
    report("killed")
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


def echo(job, blobs, report) -> dict:
    report("echo")
    return {"sizes": [len(b) for b in blobs], "pid": os.getpid(), "main": __import__("sys").modules["__main__"].__name__}


def bad_reply(job, blobs, report) -> dict:
    return {"not json": object()}
