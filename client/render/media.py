"""Writing display frames to PNG, animated GIF and H.264 MP4.

Optimized inputs are small (often 32-112 px), so every file is enlarged with
nearest-neighbour by a whole factor: pixels stay crisp and visible. MP4 uses
yuv420p with even dimensions, the only form every browser decodes. Pillow and
PyAV are imported inside the writers so that importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MIN_SIDE = 128
DEFAULT_FPS = 8.0


def upscale_factor(height: int, width: int, min_side: int = MIN_SIDE) -> int:
    """The smallest whole factor that makes the short side at least `min_side` and both sides even."""
    factor = max(1, -(-min_side // max(1, min(height, width))))
    if (height * factor) % 2 or (width * factor) % 2:
        factor += factor % 2  # an even factor makes any side even
    return factor


def upscale(frames: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """Enlarges frames [T, H, W, 3] (or one frame [H, W, 3]) by nearest-neighbour repetition."""
    height, width = frames.shape[-3], frames.shape[-2]
    factor = upscale_factor(height, width, min_side)
    if factor == 1:
        return frames
    return np.repeat(np.repeat(frames, factor, axis=-3), factor, axis=-2)


def _as_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T,H,W,3], got {frames.dtype} {frames.shape}")
    return frames


def write_png(path: str | Path, frame: np.ndarray, min_side: int = MIN_SIDE) -> Path:
    """One frame [H, W, 3] (or the first of [T, H, W, 3]) as a PNG."""
    from PIL import Image  # noqa: PLC0415

    path = Path(path)
    Image.fromarray(upscale(_as_frames(frame)[0], min_side)).save(path, format="PNG")
    return path


def write_strip(path: str | Path, frames: np.ndarray, min_side: int = MIN_SIDE, gap: int = 2) -> Path:
    """All frames side by side in one PNG, for print and for a glance at the whole clip."""
    from PIL import Image  # noqa: PLC0415

    frames = upscale(_as_frames(frames), min_side)
    count, height, width, _ = frames.shape
    sheet = np.full((height, count * width + (count - 1) * gap, 3), 255, dtype=np.uint8)
    for index, frame in enumerate(frames):
        start = index * (width + gap)
        sheet[:, start:start + width] = frame
    path = Path(path)
    Image.fromarray(sheet).save(path, format="PNG")
    return path


def write_gif(path: str | Path, frames: np.ndarray, fps: float = DEFAULT_FPS, min_side: int = MIN_SIDE) -> Path:
    """An endlessly looping GIF with one palette for all frames, so colours do not flicker.

    Pillow merges identical consecutive frames into one longer frame; timing is kept.
    """
    from PIL import Image  # noqa: PLC0415

    frames = upscale(_as_frames(frames), min_side)
    palette = Image.fromarray(frames.reshape(-1, frames.shape[2], 3)).quantize(256, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    path = Path(path)
    images[0].save(
        path, format="GIF", save_all=True, append_images=images[1:],
        duration=max(20, round(1000 / fps)), loop=0, optimize=False, disposal=1,
    )
    return path


def write_mp4(path: str | Path, frames: np.ndarray, fps: float = DEFAULT_FPS, min_side: int = MIN_SIDE) -> Path:
    """H.264 in MP4 (yuv420p, even sides, index at the front) that Chromium and Firefox play inline."""
    import av  # noqa: PLC0415

    frames = upscale(_as_frames(frames), min_side)
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:  # only when min_side is 0 and a side is odd
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        height, width = frames.shape[1:3]
    path = Path(path)
    rate = max(1, round(fps))
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "12", "preset": "medium", "tune": "animation"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
