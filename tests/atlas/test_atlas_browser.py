"""The atlas in headless Chromium from file://: every page loads cleanly, media play, sorting works, links resolve.

Selenium drives Debian's Chromium through Debian's chromedriver (both from
.ci/install-chromium.sh); without them the test is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tests.render.test_browser import CHROMIUM, CHROMIUM_FLAGS

from .conftest import DEMO_FUSION, DEMO_GAMMAS, DEMO_LOGITS, FUSION_UNITS, LOGIT_UNITS

CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
                       reason="/usr/bin/chromium or /usr/bin/chromedriver is missing; run .ci/install-chromium.sh"),
]

# Waits (in page time) until every image has decoded and every video can play, then reports.
_MEDIA = """
const done = arguments[arguments.length - 1];
const started = performance.now();
function report() {
  const images = [...document.images], videos = [...document.querySelectorAll("video")];
  const ready = images.every(i => i.complete) && videos.every(v => v.readyState >= 2 || v.error);
  if (!ready && performance.now() - started < 10000) { setTimeout(report, 50); return; }
  done({
    images: images.map(i => ({src: i.src, width: i.naturalWidth})),
    videos: videos.map(v => ({src: v.src, ready: v.readyState, time: v.currentTime, error: v.error && v.error.code})),
  });
}
report();
"""
_TIMES = "return [...document.querySelectorAll('video')].map(v => v.currentTime);"
_COLUMN = """
const table = document.getElementById(arguments[0]);
const index = [...table.tHead.rows[0].cells].findIndex(th => th.textContent.trim() === arguments[1]);
return [...table.tBodies[0].rows].filter(r => !r.hidden).map(r => r.cells[index].dataset.value || "");
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('profile')}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _local(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme == "file", url
    return Path(unquote(parsed.path))


def check_site(browser, index: Path, unit_pages: int, videos: int) -> Path:
    """Walks every page from the model page: loads cleanly, media decode and play, links resolve, tables sort."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    site = index.parent.resolve()
    pages = {p.resolve() for p in site.rglob("*.html")}
    layer_pages = sorted((site / "layers").glob("*.html"))
    assert len(pages) == 1 + len(layer_pages) + unit_pages
    seen: set[Path] = set()
    queue = [index.resolve()]
    counts = {"images": 0, "videos": 0}
    while queue:
        page = queue.pop()
        if page in seen:
            continue
        seen.add(page)
        browser.get(page.as_uri())
        media = browser.execute_async_script(_MEDIA)
        broken = [i["src"] for i in media["images"] if i["width"] == 0]
        unready = [v for v in media["videos"] if v["ready"] < 2]
        assert not broken and not unready, (page, broken, unready)
        if media["videos"]:
            before = browser.execute_script(_TIMES)
            time.sleep(0.8)
            after = browser.execute_script(_TIMES)
            assert all(b > a for a, b in zip(before, after)), (page, before, after)
        counts["images"] += len(media["images"])
        counts["videos"] += len(media["videos"])
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == [], (page, errors)
        for link in browser.find_elements(By.CSS_SELECTOR, "a[href]"):
            target = _local(link.get_attribute("href"))  # the browser resolves the relative link
            assert target.resolve() in pages, (page, link.get_attribute("href"))
            queue.append(target.resolve())
    assert seen == pages  # every page is reachable from the model page
    assert counts["videos"] == videos

    for layer_page in layer_pages:  # every layer's table sorts by selectivity, both ways
        browser.get(layer_page.as_uri())
        original = [float(v) for v in browser.execute_script(_COLUMN, "units", "selectivity")]
        header = browser.find_element(By.XPATH, "//table[@id='units']//th[normalize-space()='selectivity']")
        header.click()
        descending = [float(v) for v in browser.execute_script(_COLUMN, "units", "selectivity")]
        assert descending == sorted(original, reverse=True), layer_page
        assert descending != original or original == sorted(original, reverse=True), layer_page
        header.click()
        assert [float(v) for v in browser.execute_script(_COLUMN, "units", "selectivity")] == sorted(original)
        assert header.get_attribute("aria-sort") == "ascending"
    return site


def test_the_demos_atlas_loads_plays_sorts_and_links(demo_atlas: Path, browser) -> None:
    """The atlas made by the demo's own code path, with fewer units: every check a user's browser would make."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.ui import Select  # noqa: PLC0415

    units = len(DEMO_LOGITS) + len(DEMO_FUSION)
    site = check_site(browser, demo_atlas, units, units * len(DEMO_GAMMAS))  # the flow at each γ on each unit page

    browser.get((site / "layers" / "conv_fusion.html").as_uri())
    original = [float(v) for v in browser.execute_script(_COLUMN, "units", "selectivity")]
    assert len(original) == 64 and original != sorted(original, reverse=True)  # so sorting must reorder the rows

    column = "speed ratio γmax/γ0"
    browser.get((site / "layers" / "logits.html").as_uri())
    ratios = [float(v) for v in browser.execute_script(_COLUMN, "units", column) if v]
    assert len(ratios) == len(DEMO_LOGITS)
    browser.find_element(By.XPATH, f"//table[@id='units']//th[normalize-space()='{column}']").click()
    assert [float(v) for v in browser.execute_script(_COLUMN, "units", column) if v] == sorted(ratios, reverse=True)

    browser.get((site / "layers" / "conv_fusion.html").as_uri())
    Select(browser.find_element(By.CSS_SELECTOR, "select[data-filter='units']")).select_by_value("distributed")
    labels = browser.execute_script(
        "return [...document.querySelectorAll('#units tbody tr')].filter(r => !r.hidden).map(r => r.dataset.labels)")
    assert 0 < len(labels) < 64 and all("distributed" in label.split() for label in labels)
    Select(browser.find_element(By.CSS_SELECTOR, "select[data-filter='units']")).select_by_value("")
    search = browser.find_element(By.CSS_SELECTOR, "input[data-filter='units']")
    search.send_keys("channel 1")
    visible = browser.execute_script(
        "return [...document.querySelectorAll('#units tbody tr')].filter(r => !r.hidden).map(r => r.dataset.channel)")
    assert sorted(visible, key=int) == ["1", *map(str, range(10, 20))]
    assert browser.find_element(By.CSS_SELECTOR, "[data-count='units']").text == f"{len(visible)} of 64 shown"


def test_atlas_with_clips_and_analysis_document_loads(atlas: Path, browser) -> None:
    """The atlas from result files, a recording with its clips and an analysis document given by hand."""
    check_site(browser, atlas, len(FUSION_UNITS) + len(LOGIT_UNITS), len(FUSION_UNITS + LOGIT_UNITS) * 2)


@pytest.mark.slow  # the whole demo: 4 to over 10 minutes on two cores, by load
@pytest.mark.timeout(2400)
def test_kinetoscope_demo_writes_an_atlas_that_loads_plays_sorts_and_links(tmp_path: Path, browser) -> None:
    from tests.cli.console import kinetoscope  # noqa: PLC0415

    done = kinetoscope("demo", "--out", "out", home=tmp_path / "home", cwd=tmp_path, timeout=2100)
    assert done.returncode == 0, done.stderr
    assert "atlas: out/atlas/index.html" in done.stdout.splitlines()
    # ten class logits and six conv_fusion channels, the flow at four γ on each unit page
    check_site(browser, tmp_path / "out" / "atlas" / "index.html", 16, 16 * 4)
