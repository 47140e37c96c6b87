"""The site's one stylesheet and one script, written once to `assets/`.

The script sorts a `table.sortable` when a header is clicked (numbers by value, from
each cell's `data-value`; empty cells last either way) and filters its rows by a text
box and a label menu. It reads only the page itself: no requests, so `file://` works.
"""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = "assets"
STYLE_FILE = f"{ASSETS_DIR}/atlas.css"
SCRIPT_FILE = f"{ASSETS_DIR}/atlas.js"

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fafafa; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 20px 0 6px; }
nav.crumbs { font-size: 13px; margin-bottom: 8px; color: #666; }
nav.crumbs a, nav.pager a { margin-right: 6px; }
nav.pager { float: right; font-size: 13px; }
p.note, .muted { color: #777; }
table { border-collapse: collapse; margin-top: 8px; }
th, td { border: 1px solid #ddd; padding: 4px 6px; vertical-align: middle; background: #fff; text-align: left; }
thead th { position: sticky; top: 0; background: #f0f0f0; font-weight: 600; z-index: 1; }
table.sortable thead th:not(.nosort) { cursor: pointer; user-select: none; }
table.sortable thead th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
table.sortable thead th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.thumbs { white-space: nowrap; }
td.thumbs img { width: 56px; height: auto; image-rendering: pixelated; margin-right: 2px; vertical-align: middle;
  background: #000; }
.absent { display: inline-block; width: 56px; font-size: 10px; color: #999; text-align: center; }
.controls { margin: 8px 0; display: flex; gap: 8px; align-items: center; }
.controls input[type=search] { width: 16em; }
.label { padding: 0 5px; border-radius: 3px; font-size: 12px; background: #eee; }
.label.class-specific { background: #fde0dc; }
.label.distributed { background: #e3ecf7; }
.views { display: flex; flex-wrap: wrap; gap: 12px; }
figure.view { margin: 0; padding: 6px; background: #fff; border: 1px solid #ddd; }
figure.view .media { display: flex; gap: 6px; }
figure.view img, figure.view video { width: 160px; height: auto; image-rendering: pixelated; display: block;
  background: #000; }
figure.view .absent { width: 160px; aspect-ratio: 1; display: flex; align-items: center; justify-content: center;
  background: #eee; }
figcaption { font-size: 12px; color: #444; margin-top: 4px; }
.clips { display: flex; flex-wrap: wrap; gap: 8px; }
.clips figure { margin: 0; }
.clips img { width: 96px; height: auto; image-rendering: pixelated; display: block; }
.charts img { max-width: 100%; height: auto; margin-right: 12px; vertical-align: top; }
.arrow { display: inline-block; font-size: 18px; line-height: 1; color: #d62728; }
dl.numbers { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dl.numbers dt { color: #555; }
dl.numbers dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-word; }
"""

SCRIPT = r"""
"use strict";
(function () {
  function value(row, index) {
    const cell = row.cells[index];
    if (!cell) return "";
    return (cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent).trim();
  }
  function isNumber(text) { return text !== "" && isFinite(Number(text)); }
  function compare(a, b, descending) {
    if (a === "" || b === "") return (a === "") - (b === "");  // empty cells last either way
    const sign = descending ? -1 : 1;
    if (isNumber(a) && isNumber(b)) return sign * (Number(a) - Number(b));
    if (isNumber(a) !== isNumber(b)) return isNumber(a) ? -1 : 1;
    return sign * a.localeCompare(b, undefined, {numeric: true});
  }
  function sortBy(table, header) {
    const headers = [...table.tHead.rows[0].cells];
    const index = headers.indexOf(header);
    const current = header.getAttribute("aria-sort");
    const numeric = header.dataset.type === "number";
    const descending = current === "none" || !current ? numeric : current === "ascending";
    headers.forEach(h => { if (!h.classList.contains("nosort")) h.setAttribute("aria-sort", "none"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    const body = table.tBodies[0];
    const rows = [...body.rows].map((row, order) => ({row, order, key: value(row, index)}));
    rows.sort((x, y) => compare(x.key, y.key, descending) || x.order - y.order);
    rows.forEach(item => body.appendChild(item.row));
  }
  function applyFilters(table) {
    const text = document.querySelector(`input[data-filter="${table.id}"]`);
    const label = document.querySelector(`select[data-filter="${table.id}"]`);
    const needle = text ? text.value.trim().toLowerCase() : "";
    const wanted = label ? label.value : "";
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      const labels = (row.dataset.labels || "").split(" ");
      const visible = (!needle || row.textContent.toLowerCase().includes(needle)) &&
                      (!wanted || labels.includes(wanted));
      row.hidden = !visible;
      shown += visible ? 1 : 0;
    }
    const count = document.querySelector(`[data-count="${table.id}"]`);
    if (count) count.textContent = `${shown} of ${table.tBodies[0].rows.length} shown`;
  }
  for (const table of document.querySelectorAll("table.sortable")) {
    for (const header of table.tHead.rows[0].cells) {
      if (header.classList.contains("nosort")) continue;
      header.tabIndex = 0;
      header.setAttribute("aria-sort", "none");
      header.addEventListener("click", () => sortBy(table, header));
      header.addEventListener("keydown", event => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, header); }
      });
    }
    for (const control of document.querySelectorAll(`[data-filter="${table.id}"]`)) {
      for (const type of ["input", "change"]) control.addEventListener(type, () => applyFilters(table));
    }
    applyFilters(table);
  }
})();
"""


def write_assets(out_dir: Path) -> None:
    """Writes the stylesheet and the script every page links to."""
    (out_dir / ASSETS_DIR).mkdir(parents=True, exist_ok=True)
    (out_dir / STYLE_FILE).write_text(STYLE.lstrip(), encoding="utf-8")
    (out_dir / SCRIPT_FILE).write_text(SCRIPT.lstrip(), encoding="utf-8")
