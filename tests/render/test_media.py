"""Media files on disk decode to what was written: PNG pixels, GIF and MP4 frame counts."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from kinetoscope.client.render.media import upscale, upscale_factor, write_gif, write_mp4, write_png, write_strip


def _moving_square(frames: int = 5, size: int = 24) -> np.ndarray:
    clip = np.zeros((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        clip[t, 8:14, 2 + 3 * t:8 + 3 * t] = (255, 128, 255)
    return clip


@pytest.mark.parametrize(("height", "width", "factor"), [(32, 32, 4), (24, 24, 6), (15, 15, 10), (224, 224, 1), (299, 299, 2), (7, 8, 20)])
def test_upscale_factor_reaches_128_px_with_even_sides(height: int, width: int, factor: int) -> None:
    assert upscale_factor(height, width) == factor
    assert min(height, width) * factor >= 128 and (height * factor) % 2 == 0 and (width * factor) % 2 == 0


def test_upscale_is_nearest_neighbour() -> None:
    frame = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    big = upscale(frame, min_side=4)
    assert big.shape == (4, 4, 3)
    np.testing.assert_array_equal(big[:2, :2], np.broadcast_to(frame[0, 0], (2, 2, 3)))
    np.testing.assert_array_equal(big[2:, 2:], np.broadcast_to(frame[1, 1], (2, 2, 3)))


def test_png_decodes_to_the_upscaled_frame(tmp_path) -> None:
    frame = _moving_square(1)[0]
    path = write_png(tmp_path / "frame.png", frame)
    decoded = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(decoded, upscale(frame))
    assert decoded.shape == (144, 144, 3)


def test_strip_holds_every_frame(tmp_path) -> None:
    path = write_strip(tmp_path / "strip.png", _moving_square(5), gap=2)
    assert Image.open(path).size == (5 * 144 + 4 * 2, 144)


def test_gif_has_one_frame_per_field_and_loops(tmp_path) -> None:
    clip = _moving_square(5)
    path = write_gif(tmp_path / "flow.gif", clip, fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.info["loop"] == 0 and gif.info["duration"] == 100
        gif.seek(2)
        decoded = np.asarray(gif.convert("RGB"))
    np.testing.assert_array_equal(decoded, upscale(clip[2]))  # three colours fit the palette exactly


def test_mp4_is_h264_yuv420p_with_every_frame(tmp_path) -> None:
    clip = _moving_square(7, size=15)  # odd side: must still come out even
    path = write_mp4(tmp_path / "flow.mp4", clip, fps=8)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (150, 150)
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(decoded) == 7
    # lossy, but the square is where it was written
    expected = upscale(clip[3]).astype(int)
    assert np.abs(decoded[3].astype(int) - expected).mean() < 4


def test_mp4_index_comes_first_so_browsers_start_playing_at_once(tmp_path) -> None:
    data = write_mp4(tmp_path / "flow.mp4", _moving_square()).read_bytes()
    assert data[4:8] == b"ftyp" and 0 < data.find(b"moov") < data.find(b"mdat")


def test_writers_reject_float_frames(tmp_path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "x.png", np.zeros((4, 4, 3)))
