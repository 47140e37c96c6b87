"""`kinetoscope analyze` through the installed console script: record labelled synthetic clips, then read each unit's
selectivity, label, top class and stream reliance as a table and as the --json document."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kinetoscope.model_zoo.synthetic import SyntheticActions

from .console import TOKEN, kinetoscope


@pytest.fixture(scope="module")
def recorded(served, shared_store, tmp_path_factory) -> tuple[list[str], str]:
    remote = ["--server", served.address, "--token", TOKEN]
    folder = tmp_path_factory.mktemp("analyze")
    clips = SyntheticActions().batch(60, seed=11)  # six clips of each of ten classes
    np.savez(folder / "clips.npz", rgb=clips.rgb, flow=clips.flow, labels=clips.label)
    done = kinetoscope(*remote, "record", "small", "--clips", str(folder / "clips.npz"), "--layers", "logits,flow/conv3",
                       "--json", home=shared_store.home)
    assert done.returncode == 0, done.stderr
    return remote, json.loads(done.stdout)["recording"]


def test_analyze_json_is_the_documented_document(recorded, shared_store) -> None:
    remote, recording = recorded
    done = kinetoscope(*remote, "analyze", "small", "--recording", recording, "--permutations", "199", "--json",
                       home=shared_store.home)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["recording"] == recording and document["clips"] == 60 and document["permutations"] == 199
    assert list(document["layers"]) == ["logits", "flow/conv3"] and document["inputs"]["flow/conv3"] == ["flow"]
    names = document["class_names"]
    for unit in document["layers"]["logits"]:
        assert set(unit) >= {"channel", "selectivity", "top_class", "top_class_name", "label", "stream_reliance",
                             "p_value", "class_mean", "class_max", "speed"}
        assert unit["top_class"] == unit["channel"] and unit["top_class_name"] == names[unit["channel"]]
        assert unit["label"] == "class-specific" and unit["p_value"] == pytest.approx(1 / 200)
        assert set(unit["stream_reliance"]) == {"rgb", "flow"} and len(unit["speed"]["curve"]) == 5
    motion = [u for u in document["layers"]["flow/conv3"] if u["stream_label"] != "unresponsive"]
    assert motion and all(u["stream_reliance"]["rgb"] == 0.0 and u["stream_label"] == "motion" for u in motion)


def test_analyze_prints_a_table_per_unit(recorded, shared_store) -> None:
    remote, recording = recorded
    done = kinetoscope(*remote, "analyze", "small", "--recording", recording, "--layers", "logits", "--permutations", "199",
                       "--no-speed", home=shared_store.home)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split() == ["layer", "unit", "select.", "label", "top", "class", "reliance"]
    rows = [line.split() for line in lines[2:]]
    assert len(rows) == 10 and all(row[0] == "logits" and row[3] == "class-specific" for row in rows)
    assert [int(row[1]) for row in rows] == list(range(10))
    assert all("rgb" in line and "flow" in line for line in lines[2:])
