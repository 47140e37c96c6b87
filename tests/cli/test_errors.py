"""Every mistake a user can make on the command line costs one line that says what to do, never a traceback.

Each case runs the installed console script as a separate process and asserts: a
non-zero exit, no traceback, exactly one non-empty stderr line starting with
`kinetoscope CMD:` (argparse's own usage errors keep their usage + error form), and a
word that names the problem. Most cases reach the shared `kinetoscope serve`, which
spares them the embedded server's start-up.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from .console import TOKEN, kinetoscope

S = "{server}"  # stands for --server ADDRESS --token TOKEN

# (case id, argv, the command the message names, a word the message must hold)
CASES = [
    ("import-missing-file", [S, "import", "{tmp}/missing.onnx"], "import", "not a file"),
    ("import-a-folder", [S, "import", "{tmp}"], "import", "not a file"),
    ("import-not-onnx", [S, "import", "{tmp}/garbage.onnx"], "import", "not an ONNX model"),
    ("import-unknown-op", [S, "import", "{tmp}/frobnicate.onnx"], "import", "Frobnicate"),
    ("import-bad-input-syntax", [S, "import", "{model}", "--input", "rgb=abc"], "import", "NAME=1x3x224x224"),
    ("import-unknown-input", [S, "import", "{model}", "--input", "depth=1x3x32x32:image"], "import", "depth"),
    ("import-unknown-kind", [S, "import", "{model}", "--input", "rgb=1x3x32x32:xray"], "import", "xray"),
    ("layers-unknown-model", [S, "layers", "nope"], "layers", "no model 'nope'"),
    ("maximize-unknown-model", [S, "maximize", "nope", "--layer", "logits", "--units", "0"], "maximize", "no model 'nope'"),
    ("maximize-unknown-layer", [S, "maximize", "small", "--layer", "conv99", "--units", "0"], "maximize", "no layer 'conv99'"),
    ("maximize-unit-out-of-range", [S, "maximize", "small", "--layer", "logits", "--units", "99"], "maximize", "outside 0..9"),
    ("maximize-empty-range", [S, "maximize", "small", "--layer", "logits", "--units", "5-2"], "maximize", "empty"),
    ("maximize-unknown-class", [S, "maximize", "small", "--layer", "logits", "--units", "zebra"], "maximize", "zebra"),
    ("maximize-no-units", [S, "maximize", "small", "--layer", "logits", "--units", ","], "maximize", "selects no units"),
    ("maximize-bad-gamma", [S, "maximize", "small", "--layer", "logits", "--units", "0", "--gamma", "fast"], "maximize", "--gamma"),
    ("maximize-nan-gamma", [S, "maximize", "small", "--layer", "logits", "--units", "0", "--gamma", "nan"], "maximize", "--gamma"),
    ("maximize-zero-iters", [S, "maximize", "small", "--layer", "logits", "--units", "0", "--iters", "0"], "maximize", "iterations"),
    ("maximize-missing-recording", [S, "maximize", "small", "--layer", "logits", "--units", "0", "--recording", "nosuch"],
     "maximize", "nosuch"),
    ("maximize-out-is-a-file", [S, "maximize", "small", "--layer", "logits", "--units", "0", "--out", "{tmp}/garbage.onnx"],
     "maximize", "is a file"),
    ("record-missing-npz", [S, "record", "small", "--clips", "{tmp}/missing.npz", "--layers", "logits"], "record", "not a file"),
    ("record-garbage-npz", [S, "record", "small", "--clips", "{tmp}/garbage.npz", "--layers", "logits"], "record", "cannot read"),
    ("record-npz-wrong-arrays", [S, "record", "small", "--clips", "{tmp}/wrong.npz", "--layers", "logits"], "record", "missing rgb"),
    ("record-no-layers", [S, "record", "small", "--clips", "{tmp}/clips.npz", "--layers", ","], "record", "--layers"),
    ("record-unknown-layer", [S, "record", "small", "--clips", "{tmp}/clips.npz", "--layers", "conv99"], "record", "conv99"),
    ("record-odd-bins", [S, "record", "small", "--clips", "{tmp}/clips.npz", "--layers", "logits", "--bins", "3"], "record", "bins"),
    ("record-missing-videos", [S, "record", "small", "--videos", "{tmp}/no-videos", "--layers", "logits"], "record", "no-videos"),
    ("analyze-unknown-model", [S, "analyze", "nope", "--recording", "unlabelled"], "analyze", "no model 'nope'"),
    ("analyze-unknown-recording", [S, "analyze", "small", "--recording", "nosuch"], "analyze", "no recording 'nosuch'"),
    ("analyze-unknown-layer", [S, "analyze", "small", "--recording", "unlabelled", "--layers", "conv99"], "analyze",
     "no layer 'conv99'"),
    ("analyze-clips-without-labels", [S, "analyze", "small", "--recording", "unlabelled"], "analyze", "no labelled clips"),
    ("analyze-negative-permutations", [S, "analyze", "small", "--recording", "unlabelled", "--permutations", "-5"],
     "analyze", "--permutations"),
    ("render-missing-result", ["render", "{tmp}/missing.npz"], "render", "not a file"),
    ("render-garbage-result", ["render", "{tmp}/garbage.npz"], "render", "cannot read"),
    ("render-not-a-result", ["render", "{tmp}/clips.npz"], "render", "units"),
    ("sweep-missing-spec", [S, "sweep", "{tmp}/missing.toml"], "sweep", "not a file"),
    ("sweep-bad-toml", [S, "sweep", "{tmp}/bad.toml"], "sweep", "TOML"),
    ("sweep-unknown-key", [S, "sweep", "{tmp}/unknown-key.toml"], "sweep", "iteratons"),
    ("zoo-unknown-architecture", ["zoo", "export", "alexnet", "--out", "{tmp}/x.onnx"], "zoo export", "alexnet"),
    ("zoo-too-small", ["zoo", "export", "c3d", "--out", "{tmp}/x.onnx", "--frames", "1", "--size", "8"], "zoo export", "--frames ≥"),
    ("zoo-missing-folder", ["zoo", "export", "i3d", "--out", "{tmp}/no/such/x.onnx"], "zoo export", "does not exist"),
    ("zoo-zero-width", ["zoo", "export", "i3d", "--out", "{tmp}/x.onnx", "--width", "0"], "zoo export", "--width"),
    ("server-not-answering", ["--server", "127.0.0.1:9", "models"], "models", "no kinetoscope server answers"),
    ("server-not-an-address", ["--server", "localhost", "models"], "models", "HOST:PORT"),
    ("server-without-token", ["--server", "{address}", "models"], "models", "requires a token"),
    ("server-wrong-token", ["--server", "{address}", "--token", "wrong", "models"], "models", "refused the token"),
    ("store-is-a-file", ["layers", "small", "--store", "{tmp}/garbage.onnx"], "layers", "is a file"),
    ("demo-out-is-a-file", ["demo", "--out", "{tmp}/garbage.onnx/x"], "demo", "is a file"),
    ("serve-bad-address", ["serve", "--address", "somewhere"], "serve", "HOST:PORT"),
    ("serve-missing-certificate", ["serve", "--address", "127.0.0.1:0", "--tls-cert", "{tmp}/no.pem", "--tls-key", "{tmp}/no.pem"],
     "serve", "no.pem"),
]

USAGE_CASES = [  # argparse's own: usage line + `kinetoscope CMD: error: ...`
    ("unknown-command", ["visualize"], "kinetoscope: error", "invalid choice"),
    ("maximize-without-layer", ["maximize", "small", "--units", "0"], "kinetoscope maximize: error", "--layer"),
    ("maximize-iters-not-a-number", ["maximize", "small", "--layer", "x", "--units", "0", "--iters", "many"],
     "kinetoscope maximize: error", "many"),
    ("record-clips-and-videos", ["record", "small", "--clips", "a.npz", "--videos", "v", "--layers", "x"],
     "kinetoscope record: error", "not allowed"),
    ("analyze-without-recording", ["analyze", "small"], "kinetoscope analyze: error", "--recording"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory, shared_store, served) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("wrong")
    (tmp / "garbage.onnx").write_bytes(b"\x08\x07garbage" * 10)
    (tmp / "garbage.npz").write_bytes(b"not a zip file at all")
    np.savez(tmp / "wrong.npz", video=np.zeros((2, 3), np.float32))
    rng = np.random.default_rng(0)
    np.savez(tmp / "clips.npz", rgb=rng.standard_normal((2, 3, 32, 32), np.float32),
             flow=rng.standard_normal((2, 20, 32, 32), np.float32))
    (tmp / "bad.toml").write_text("iterations = = 3\n")
    (tmp / "unknown-key.toml").write_text('iteratons = 3\n[[models]]\nmodel = "small"\n[[jobs]]\nlayer = "logits"\nunits = "0"\n')
    nodes = [helper.make_node("FrobnicateA", ["x"], ["y"], name="first")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (tmp / "frobnicate.onnx").write_bytes(model.SerializeToString())
    from .console import TRAINED

    done = kinetoscope("--server", served.address, "--token", TOKEN, "record", "small", "--clips", str(tmp / "clips.npz"),
                       "--layers", "logits", "--name", "unlabelled", home=shared_store.home, timeout=120)
    assert done.returncode == 0, done.stderr  # a recording whose clips carry no labels, for `analyze`

    return {"tmp": str(tmp), "model": str(TRAINED)}


def _argv(template: list[str], files: dict[str, str], address: str) -> list[str]:
    argv: list[str] = []
    for part in template:
        if part == S:
            argv += ["--server", address, "--token", TOKEN]
        else:
            argv.append(part.format(address=address, **files))
    return argv


def test_there_are_at_least_thirty_distinct_mistakes() -> None:
    assert len({case[0] for case in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize(("argv", "command", "word"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_mistake_is_one_line_that_names_it(argv, command, word, files, served, shared_store) -> None:
    done = kinetoscope(*_argv(argv, files, served.address), home=shared_store.home, cwd=files["tmp"], timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"kinetoscope {command}: "), lines[0]
    assert word in lines[0], lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize(("argv", "prefix", "word"), [case[1:] for case in USAGE_CASES], ids=[case[0] for case in USAGE_CASES])
def test_a_usage_mistake_gets_argparse_usage_and_no_traceback(argv, prefix, word, shared_store) -> None:
    done = kinetoscope(*argv, home=shared_store.home, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("usage: ")
    assert lines[-1].startswith(prefix) and word in lines[-1], lines[-1]


def test_debug_shows_the_traceback(files, shared_store) -> None:
    done = kinetoscope("--debug", "zoo", "export", "c3d", "--out", f"{files['tmp']}/x.onnx", "--frames", "1", "--size", "8",
                       home=shared_store.home, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr  # a user error stays one line even with --debug
    done = kinetoscope("--server", "127.0.0.1:9", "models", "--debug", home=shared_store.home, timeout=60)
    assert done.returncode != 0 and done.stderr.count("\n") >= 1
