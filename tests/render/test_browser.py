"""The gallery in a real browser: every <img> decodes and every <video> reaches a playable state.

Runs Debian's headless Chromium against the gallery served over HTTP on 127.0.0.1.
CI installs it with .ci/install-chromium.sh; without it the test is skipped.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kinetoscope.client.render import make_example_result, render_result

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
"""Headless, offline, no first-run or background traffic; callers add a fresh --user-data-dir."""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing; install it with .ci/install-chromium.sh"),
]

# Polls until every image and video has loaded (or 4 s of page time pass), then reports in the DOM.
_LOAD_REPORT = """
<pre id="load-report"></pre>
<script>
function loadReport() {
  const images = [...document.images], videos = [...document.querySelectorAll("video")];
  return {
    images: images.length,
    images_loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    videos: videos.length,
    videos_ready: videos.filter(v => v.readyState >= 2 && v.videoWidth > 0).length,
    broken: [...images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
             ...videos.filter(v => v.readyState < 2).map(v => v.src + " readyState=" + v.readyState +
                                                         (v.error ? " error=" + v.error.code : ""))],
    cells: document.querySelectorAll("td.cell").length,
  };
}
function poll(triesLeft) {
  const r = loadReport();
  if ((r.images_loaded === r.images && r.videos_ready === r.videos) || triesLeft <= 0) {
    document.getElementById("load-report").textContent = JSON.stringify(r);
  } else {
    setTimeout(() => poll(triesLeft - 1), 100);
  }
}
window.addEventListener("load", () => poll(40));
</script>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A folder served over HTTP on 127.0.0.1 (any free port) for the length of a test."""
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000", *extra, url],
        capture_output=True, text=True, timeout=120,
    )


def test_every_image_and_video_loads_in_chromium(served: tuple[Path, int], tmp_path: Path) -> None:
    root, port = served
    index = render_result(make_example_result(tmp_path / "result.npz", gammas=(10, 1, 0)), root)
    html = index.read_text(encoding="utf-8")
    (root / "check.html").write_text(html.replace("</body>", _LOAD_REPORT + "</body>"), encoding="utf-8")

    done = _chromium(f"http://127.0.0.1:{port}/check.html", tmp_path / "profile", "--dump-dom")
    match = re.search(r'<pre id="load-report">([^<]+)</pre>', done.stdout)
    assert match, f"no load report in the page (exit {done.returncode}): {done.stderr[-2000:]}"
    report = json.loads(match.group(1))

    assert report["cells"] == 3 * 3
    assert report["videos"] == 2 * 3  # flow of the two fused units, three settings each
    assert report["images"] == 3 * 3 + 2 * 3  # appearance PNGs plus flow GIFs
    assert report["broken"] == []
    assert report["images_loaded"] == report["images"]
    assert report["videos_ready"] == report["videos"]
