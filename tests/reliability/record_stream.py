"""Record streams for the trained two-stream model: a header, then clips of random input."""

from __future__ import annotations

import threading
from typing import Iterator

import numpy as np

from kinetoscope import tensors
from kinetoscope.v1 import kinetoscope_pb2 as pb

SHAPES = {"rgb": (3, 32, 32), "flow": (20, 32, 32)}


def clip_requests(model: str, clips: int, *, layers=("conv_fusion",), seed: int = 0, pause_after: int | None = None,
                  release: threading.Event | None = None, sent: threading.Semaphore | None = None
                  ) -> Iterator[pb.RecordRequest]:
    """`clips` labelled clips; with `pause_after`, waits for `release` after that many (and signals `sent` per clip)."""
    rng = np.random.default_rng(seed)
    yield pb.RecordRequest(header=pb.RecordHeader(model=model, layers=list(layers), top_k=2))
    for i in range(clips):
        if pause_after is not None and i == pause_after and release is not None:
            release.wait()
        yield pb.RecordRequest(clip=pb.ClipStart(id=f"clip{i}", label=i % 10, has_label=True))
        for name, shape in SHAPES.items():
            array = rng.uniform(-100, 100, shape).astype(np.float32)
            for chunk in tensors.to_chunks(name, array):
                yield pb.RecordRequest(data=chunk)
        if sent is not None:
            sent.release()
