"""The atlas writer on a real session with the zoo's trained two-stream model (see conftest.py)."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from kinetoscope.client.atlas import write_atlas
from kinetoscope.client.atlas.cli import add_atlas_arguments, find_results, run_atlas
from kinetoscope.client.client import Client
from kinetoscope.client.commands import UserError
from kinetoscope.motion import flow_fields, motion_across_settings

from .conftest import FUSION_UNITS, GAMMAS, LOGIT_UNITS, Source


class Page(HTMLParser):
    """Tags with attributes, the text, and the rows of the table with id `units`."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.rows: list[dict[str, str | None]] = []
        self.headers: list[str] = []
        self._in_units = self._in_th = False
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "table":
            self._in_units = attributes.get("id") == "units"
        elif tag == "tr" and self._in_units and "data-labels" in attributes:
            self.rows.append(attributes)
        elif tag == "th" and self._in_units:
            self._in_th = True
            self.headers.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_th = False
        elif tag == "table":
            self._in_units = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_th:
            self.headers[-1] += data

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def _references(page: Page) -> list[str]:
    return [attrs[key] for _, attrs in page.tags for key in ("src", "href") if attrs.get(key)]


def test_site_has_a_page_per_layer_with_results_and_per_maximized_unit(atlas: Path) -> None:
    site = atlas.parent
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert pages == sorted(["index.html", "layers/conv_fusion.html", "layers/logits.html",
                            *(f"units/conv_fusion/c{u:04d}.html" for u in FUSION_UNITS),
                            *(f"units/logits/c{u:04d}.html" for u in LOGIT_UNITS)])
    for path in site.rglob("*.html"):
        for reference in _references(Page(path)):
            if reference.startswith("data:"):
                continue
            assert "://" not in reference and not reference.startswith("/"), (path, reference)
            target = (path.parent / reference).resolve()
            assert target.is_file() and target.stat().st_size > 0, (path, reference)
            assert site.resolve() in target.parents


def test_model_page_is_the_catalog(atlas: Path, source: Source) -> None:
    page = Page(atlas)
    rows = [attrs for attrs in page.all("tr") if "data-labels" in attrs]
    assert len(rows) == len(source.layers) == 24
    assert {row["data-labels"] for row in rows} == {"appearance", "motion", "fusion"}
    links = {attrs["href"] for attrs in page.all("a")}
    assert links == {"layers/conv_fusion.html", "layers/logits.html"}
    text = " ".join(page.text)
    assert "10×26×26" in text and "26×26" in text  # conv_fusion's field on flow (T×H×W) and on rgb
    assert "cyan_disc_down_accelerate" in text


def test_layer_page_sorts_by_real_measures(atlas: Path, source: Source) -> None:
    page = Page(atlas.parent / "layers" / "conv_fusion.html")
    measures = source.analysis["layers"]["conv_fusion"]
    assert len(page.rows) == len(measures) == 64  # maximized units and units known from the analysis alone
    assert [int(r["data-channel"]) for r in page.rows] == list(range(64))
    assert page.headers[:3] == ["unit", "γ = 0", "γ = 10"]
    for header in ("selectivity", "top class", "label", "reliance", "reliance rgb", "reliance flow",
                   "preferred speed", "sparseness", "recorded max", "recorded mean", "max activation"):
        assert header in page.headers
    cells = [attrs for attrs in page.all("td") if attrs.get("data-value")]
    selectivity = [float(c["data-value"]) for c in cells if float(c["data-value"]) in
                   {m["selectivity"] for m in measures}]
    assert len(selectivity) >= 64 and len(set(selectivity)) > 10  # the real, varied index is in the page
    thumbs = [attrs["src"] for attrs in page.all("img")]
    assert len(thumbs) == len(FUSION_UNITS) * len(GAMMAS) * 2
    assert sum(src.endswith(".gif") for src in thumbs) == len(FUSION_UNITS) * len(GAMMAS)
    labels = {attrs["value"] for attrs in page.all("option")} - {""}
    assert labels == {m["label"] for m in measures} | {m["reliance_label"] for m in measures}


def test_unit_page_plays_each_gamma_and_draws_the_charts(atlas: Path, source: Source) -> None:
    path = atlas.parent / "units" / "conv_fusion" / "c0001.html"
    page = Page(path)
    videos = page.all("video")
    assert len(videos) == len(GAMMAS)  # the flow per γ; rgb is an image
    for video in videos:
        assert {"autoplay", "loop", "muted", "playsinline"} <= set(video)
        with av.open(str((path.parent / video["src"]).resolve())) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and stream.frames == 10  # ten stacked flow fields
            assert (stream.width, stream.height) == (128, 128)
    images = [attrs["src"] for attrs in page.all("img")]
    charts = [src for src in images if src.endswith(("_classes.png", "_speed.png"))]
    assert len(charts) == 2
    for chart in charts:
        width, height = Image.open(path.parent / chart).size
        assert width >= 400 and height >= 300
    stats = source.recording.layers["conv_fusion"]
    text = " ".join(page.text)
    for clip_id, value in zip(stats.top_ids[1], stats.top_values[1]):
        assert f"clip {clip_id}" in text
    clip_pictures = [src for src in images if "/clips/" in src]
    assert len(clip_pictures) == 2 * len(stats.top_ids[1])  # rgb PNG and flow GIF per top clip
    assert "selectivity" in text and f"{source.analysis['layers']['conv_fusion'][1]['selectivity']:.4g}" in text


def test_logit_units_are_named_by_their_class(atlas: Path, source: Source) -> None:
    text = " ".join(Page(atlas.parent / "units" / "logits" / "c0005.html").text)
    assert "logits · class 5" in text and source.model_info.class_names[5] in text


def test_results_alone_make_a_site_without_measures(source: Source, tmp_path: Path) -> None:
    index = write_atlas(tmp_path / "site", source.model_info, source.layers, source.results[:1])
    page = Page(index.parent / "layers" / "conv_fusion.html")
    assert len(page.rows) == len(FUSION_UNITS)
    assert page.headers == ["unit", "γ = 0", "γ = 10", "motion consistency", "speed ratio γmax/γ0", "max activation"]
    assert not list((index.parent / "media").rglob("*_classes.png"))
    assert {attrs["href"] for attrs in Page(index).all("a")} == {"layers/conv_fusion.html"}


def test_every_measure_is_optional_and_unknown_ones_are_shown(source: Source, tmp_path: Path) -> None:
    analysis = {"layers": {"conv_fusion": [{"channel": 0, "selectivity": 0.25}, {"channel": 2, "novelty": 3.5},
                                           {"selectivity": 1.0}]}}  # the last has no channel: ignored
    index = write_atlas(tmp_path / "site", source.model_info, source.layers, source.results[:1], analysis=analysis)
    page = Page(index.parent / "layers" / "conv_fusion.html")
    assert page.headers == ["unit", "γ = 0", "γ = 10", "selectivity", "novelty", "motion consistency",
                            "speed ratio γmax/γ0", "max activation"]
    values = [attrs.get("data-value") for attrs in page.all("td") if attrs.get("class") == "num"]
    assert "0.25" in values and "3.5" in values
    unit = " ".join(Page(index.parent / "units" / "conv_fusion" / "c0002.html").text)
    assert "novelty" in unit and "3.5" in unit


def _motion(result, unit: int):
    """The unit's motion across γ, measured here straight from the result's flow input."""
    spec = next(s for s in result.inputs if s.name == "flow")
    return motion_across_settings(flow_fields(result.arrays["flow"][unit], spec.kind, spec.layout), result.gammas)


def _cells(page: Page, header: str) -> dict[int, str | None]:
    """Per channel, the `data-value` of the layer table's column `header` (None for an empty cell)."""
    column = page.headers.index(header)
    values, row = {}, -1
    in_body, cell = False, 0
    for tag, attrs in page.tags:
        if tag == "tbody":
            in_body = True
        elif tag == "tr" and in_body and "data-channel" in attrs:
            row, cell = int(attrs["data-channel"]), 0
        elif tag == "td" and row >= 0:
            if cell == column:
                values[row] = attrs.get("data-value")
            cell += 1
    return values


def test_layer_pages_rank_units_by_how_their_motion_changes_with_gamma(atlas: Path, source: Source) -> None:
    fusion, logits = source.results
    for layer, result, units in (("conv_fusion", fusion, FUSION_UNITS), ("logits", logits, LOGIT_UNITS)):
        page = Page(atlas.parent / "layers" / f"{layer}.html")
        consistency, ratio = _cells(page, "motion consistency"), _cells(page, "speed ratio γmax/γ0")
        for u, channel in enumerate(units):
            expected = _motion(result, u)
            assert 0.0 <= expected.consistency <= 1.0 and expected.speed_ratio > 0
            assert float(consistency[channel]) == pytest.approx(expected.consistency, rel=1e-12)
            assert float(ratio[channel]) == pytest.approx(expected.speed_ratio, rel=1e-12)
        assert {c for c, v in consistency.items() if v is not None} == set(units)  # analysis-only units: empty


def test_unit_page_lists_the_motion_per_gamma_and_charts_it(atlas: Path, source: Source) -> None:
    path = atlas.parent / "units" / "logits" / f"c{LOGIT_UNITS[0]:04d}.html"
    page = Page(path)
    expected = _motion(source.results[1], 0)
    text = " ".join(page.text)
    assert "Motion across γ" in text and "motion consistency" in text and f"{expected.consistency:.4g}" in text
    numbers = [float(attrs["data-value"]) for attrs in page.all("td") if attrs.get("data-value")]
    for gamma, magnitude, direction, coherence in zip(GAMMAS, expected.magnitude, expected.direction,
                                                      expected.coherence):
        assert gamma in numbers
        assert any(v == pytest.approx(magnitude, rel=1e-12) for v in numbers)
        assert any(v == pytest.approx(math.degrees(direction), rel=1e-12) for v in numbers)
        assert any(v == pytest.approx(coherence, rel=1e-12) for v in numbers)
    arrows = [attrs for attrs in page.all("span") if attrs.get("class") == "arrow"]
    assert [a["style"] for a in arrows] == [f"transform: rotate({math.degrees(d):.1f}deg)" for d in expected.direction]
    chart = next(attrs["src"] for attrs in page.all("img") if attrs["src"].endswith("_motion.png"))
    width, height = Image.open(path.parent / chart).size
    assert width >= 400 and height >= 300


def test_motion_columns_need_a_flow_input_at_two_gammas(source: Source, tmp_path: Path) -> None:
    from kinetoscope.client.render.result import Result  # noqa: PLC0415

    fusion = source.results[0]
    one_gamma = Result(fusion.inputs, {k: v[:, :1] for k, v in fusion.arrays.items()}, fusion.units, fusion.gammas[:1],
                       fusion.kappas[:1], fusion.activation[:, :1], fusion.optimized[:, :1], fusion.class_names,
                       fusion.targets)
    flow_index = [s.name for s in fusion.inputs].index("flow")
    optimized = fusion.optimized.copy()
    optimized[:, :, flow_index] = False
    appearance_only = Result(fusion.inputs, fusion.arrays, fusion.units, fusion.gammas, fusion.kappas,
                             fusion.activation, optimized, fusion.class_names, fusion.targets)
    for name, result, header in (("one", one_gamma, ["unit", "γ = 0", "max activation"]),
                                 ("rgb", appearance_only, ["unit", "γ = 0", "γ = 10", "max activation"])):
        index = write_atlas(tmp_path / name, source.model_info, source.layers, [result])
        assert Page(index.parent / "layers" / "conv_fusion.html").headers == header
        unit = " ".join(Page(index.parent / "units" / "conv_fusion" / "c0000.html").text)
        assert "Motion across γ" not in unit and "motion consistency" not in unit
        assert not list((index.parent / "media").rglob("*_motion.png"))


def test_units_the_model_cannot_have_are_noted(source: Source, tmp_path: Path) -> None:
    from kinetoscope.client.render.result import Result  # noqa: PLC0415

    other = source.results[0]
    renamed = Result(other.inputs, other.arrays, other.units, other.gammas, other.kappas, other.activation,
                     other.optimized, other.class_names,
                     tuple(tuple(type(t)(t.kind, "mixed_5c", t.channel) for t in terms) for terms in other.targets))
    no_targets = Result(other.inputs, other.arrays, other.units, other.gammas, other.kappas, other.activation,
                        other.optimized, other.class_names, ())
    index = write_atlas(tmp_path / "site", source.model_info, source.layers, [renamed, no_targets])
    text = " ".join(Page(index).text)
    assert f"{len(FUSION_UNITS)} maximized unit(s) are not shown: they name layers" in text
    assert f"{len(FUSION_UNITS)} maximized unit(s) are not shown: a sum of terms" in text
    assert not (index.parent / "layers" / "conv_fusion.html").exists()


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_atlas_arguments(parser)
    return parser.parse_args(list(argv))


def test_command_finds_results_recursively_and_writes_the_site(source: Source, tmp_path: Path, capsys) -> None:
    assert [p.parent.name for p in find_results(source.result_dir)] == ["fusion", "logits"]
    analysis = tmp_path / "analysis.json"
    analysis.write_text(json.dumps(source.analysis), encoding="utf-8")
    np.savez(tmp_path / "clips.npz", **source.clips)
    with Client(None, store=source.store) as client:
        code = run_atlas(_args("two_stream_small", "--results", str(source.result_dir), "--recording", "synthetic",
                               "--analysis", str(analysis), "--clips", str(tmp_path / "clips.npz"),
                               "--out", str(tmp_path / "site"), "--json"), client)
        assert code == 0
        document = json.loads(capsys.readouterr().out)
        assert document["pages"] == 3 + len(FUSION_UNITS) + len(LOGIT_UNITS)
        assert Path(document["index"]) == tmp_path / "site" / "index.html"
        assert len(list((tmp_path / "site" / "media" / "clips").iterdir())) > 0

        for argv, message in (
            (("--results", str(tmp_path / "missing")), "does not exist"),
            (("--results", str(tmp_path / "site")), "no result.npz under"),
            (("--results", str(source.result_dir), "--analysis", str(tmp_path / "clips.npz")), "is not a JSON document"),
            (("--results", str(source.result_dir), "--clips", str(tmp_path / "clips.npz")), "give --recording too"),
        ):
            with pytest.raises(UserError, match=message):
                run_atlas(_args("two_stream_small", *argv, "--out", str(tmp_path / "other")), client)


def test_importing_the_atlas_leaves_torch_and_matplotlib_out() -> None:
    code = ("import sys, kinetoscope.client.atlas, kinetoscope.client.atlas.cli; "
            "print([m for m in ('torch', 'matplotlib') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
