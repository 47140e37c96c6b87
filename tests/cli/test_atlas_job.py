"""`kinetoscope atlas MODEL --job ID` through the installed console script: a detached sweep stored as a job on the
shared `kinetoscope serve`, then the atlas built from the job's results alone."""

from __future__ import annotations

import json
import re

import numpy as np

from .console import TOKEN, kinetoscope


def test_atlas_from_a_stored_job(served, shared_store, tmp_path) -> None:
    remote = ["--server", served.address, "--token", TOKEN]
    (tmp_path / "spec.toml").write_text('iterations = 3\nseed = 3\nsettings = [{kappa = 1, gamma = 0}]\n'
                                        '[[models]]\nmodel = "small"\n[[jobs]]\nlayer = "conv_fusion"\nunits = "0-1"\n'
                                        'batch = 1\n[[jobs]]\nlayer = "logits"\nunits = "4"\n')
    done = kinetoscope(*remote, "sweep", "spec.toml", "--out", "sw", "--detach", "--json", home=shared_store.home,
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)["job"]
    watched = kinetoscope(*remote, "jobs", "watch", job, "--json", home=shared_store.home)
    assert watched.returncode == 0 and json.loads(watched.stdout)["state"] == "SUCCEEDED", watched.stderr

    built = kinetoscope(*remote, "atlas", "small", "--job", job, "--out", "site", "--json", home=shared_store.home,
                        cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    document = json.loads(built.stdout)
    # model page, two layer pages, one page per maximized unit (two fusion channels, in two tasks, and one logit)
    assert document["pages"] == 1 + 2 + 3 and document["index"] == "site/index.html"
    assert sorted(p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site" / "units").rglob("*.html")) == [
        "units/conv_fusion/c0000.html", "units/conv_fusion/c0001.html", "units/logits/c0004.html"]
    page = (tmp_path / "site" / "layers" / "conv_fusion.html").read_text(encoding="utf-8")
    assert page.count('href="../units/conv_fusion/c000') >= 2
    assert not list((tmp_path / "sw").rglob("*.npz"))  # the results came from the job on the server, not a local sweep

    # with --results the fetched job stays on disk in the sweep layout, with the activations the job reached
    kept = kinetoscope(*remote, "atlas", "small", "--job", job, "--results", "fetched", "--out", "site2", "--json",
                       home=shared_store.home, cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    with np.load(tmp_path / "fetched/small/conv_fusion/result.npz") as merged:
        assert merged["flow"].shape == (2, 1, 20, 32, 32) and np.all(np.isfinite(merged["activation"]))
    assert json.loads(kept.stdout)["results"] == ["fetched/small/conv_fusion/result.npz", "fetched/small/logits/result.npz"]

    missing = kinetoscope(*remote, "atlas", "small", "--job", "0123456789abcdef", "--out", "site3", home=shared_store.home,
                          cwd=tmp_path)
    assert missing.returncode != 0 and re.match(r"kinetoscope atlas: no job", missing.stderr), missing.stderr
    assert "Traceback" not in missing.stderr
