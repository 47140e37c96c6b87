"""Every zoo architecture at every documented clip size: it exports and imports with parity, or it refuses.

The grid is frames {the natural small case, 8, 16, 32} × size {32, 64, 112, 224}; frames
is the number L of flow fields for two-stream networks (small case 1) and the clip length
for 3D ones (small case 2, the least motion). A refusal is a ZooSizeError (a ValueError)
that names the minimum and comes before any module is built. The minimums themselves are
checked against the modules: at the minimum and at the grid's sizes no window is larger
than its input, one below it some window is; the slow run checks every size up to a full
period of the pooling above the minimum.
"""

from __future__ import annotations

import dataclasses

import onnx
import pytest
import torch
from torch import nn

from kinetoscope.model_zoo.architectures import ARCHITECTURES, ArchitectureInfo, ZooSizeError
from kinetoscope.model_zoo.export import export_model, zoo_listing
from kinetoscope.server.importer import import_model

CLASSES = 5
WIDTH = 1 / 16
SIZES = (32, 64, 112, 224)

# (least frames, least size): published here so that a change to an architecture's geometry shows up
MINIMUMS = {
    "vgg16_two_stream": (1, 32),
    "resnet50_st": (1, 5),
    "bn_inception_tsn": (1, 11),
    "inception_v3_two_stream": (1, 75),
    "c3d": (9, 17),
    "i3d": (1, 1),
    "r2plus1d_18": (1, 1),
}

# Slow cells: every 224² and 32-frame export, and 16 flow fields through the deep two-stream graphs,
# whose export and import cost ~1–2.5 s each whatever the input (L only widens the flow stream's conv1).
_DEEP_TWO_STREAM = {"resnet50_st", "bn_inception_tsn", "inception_v3_two_stream"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Width-1/16 models are too small for two threads to help; on two shared cores they only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _two_stream(info: ArchitectureInfo) -> bool:
    return "flow" in info.input_names


def _grid() -> list:
    cells = []
    for name in sorted(ARCHITECTURES):
        small = 1 if _two_stream(ARCHITECTURES[name]) else 2
        for frames in (small, 8, 16, 32):
            for size in SIZES:
                fits = frames >= MINIMUMS[name][0] and size >= MINIMUMS[name][1]
                slow = fits and (size == 224 or frames == 32 or (name in _DEEP_TWO_STREAM and frames == 16))
                marks = [pytest.mark.slow] if slow else []
                cells.append(pytest.param(name, frames, size, fits, id=f"{name}-f{frames}-s{size}", marks=marks))
    return cells


def _never_built(*args) -> nn.Module:
    raise AssertionError("the model was built although its input size is refused")


@pytest.mark.filterwarnings("ignore")  # I3D's asymmetric SAME pads export as a small Pad subgraph
@pytest.mark.parametrize("name,frames,size,fits", _grid())
def test_grid_cell_exports_with_parity_or_refuses(name: str, frames: int, size: int, fits: bool, tmp_path, monkeypatch) -> None:
    info = ARCHITECTURES[name]
    path = tmp_path / f"{name}.onnx"
    if not fits:
        monkeypatch.setitem(ARCHITECTURES, name, dataclasses.replace(info, build=_never_built))
        with pytest.raises(ZooSizeError) as refused:
            export_model(name, path, classes=CLASSES, frames=frames, size=size, width=WIDTH)
        min_frames, min_size = MINIMUMS[name]
        message = str(refused.value)
        assert message.startswith(f"{name} needs ") and "\n" not in message
        if frames < min_frames:
            assert f"--frames ≥ {min_frames} (" in message and f"got {frames}" in message
        if size < min_size:
            assert f"--size ≥ {min_size} (" in message and f"got {size}" in message
        assert isinstance(refused.value, ValueError) and not path.exists()
        return
    export_model(name, path, classes=CLASSES, frames=frames, size=size, width=WIDTH)
    declared = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in onnx.load(path).graph.input}
    assert declared == {n: [1, *shape] for n, shape in info.input_shapes(frames, size).items()}
    imported = import_model(path)
    assert imported.parity.max_rel_err <= 1e-4
    assert imported.layer("logits").channels == CLASSES


def test_registry_publishes_the_minimums() -> None:
    assert {name: (i.limits.min_frames, i.limits.min_size) for name, i in ARCHITECTURES.items()} == MINIMUMS
    listed = {entry["name"]: (entry["min_frames"], entry["min_size"]) for entry in zoo_listing()}
    assert listed == MINIMUMS


def test_c3d_refuses_eight_frames_naming_its_pooling() -> None:
    with pytest.raises(ZooSizeError, match=r"^c3d needs --frames ≥ 9 \(pool2–pool5 halve time 4 times and pool5 needs 2 steps\); got 8$"):
        ARCHITECTURES["c3d"].check_size(8, 112)
    with pytest.raises(ZooSizeError, match=r"--frames ≥ 9 .*; got 4, and --size ≥ 17 .*; got 16$"):
        ARCHITECTURES["c3d"].check_size(4, 16)
    ARCHITECTURES["c3d"].check_size(9, 17)  # the least clip C3D takes


@pytest.mark.parametrize("classes,width,needs", [(0, 0.25, "--classes ≥ 1; got 0"), (5, 0.0, "--width > 0"), (5, -1.0, "--width > 0")])
def test_bad_class_count_or_width_is_refused(classes: int, width: float, needs: str, tmp_path) -> None:
    with pytest.raises(ZooSizeError, match=needs):
        export_model("r2plus1d_18", tmp_path / "m.onnx", classes=classes, frames=2, size=32, width=width)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_no_frames_is_refused(name: str) -> None:
    with pytest.raises(ZooSizeError, match=r"--frames ≥ \d+.*; got 0"):
        ARCHITECTURES[name].check_size(0, 224)


# ---- the minimums against the modules (meta device: shapes only, no memory, no compute) ----

_WINDOWED = (nn.Conv2d, nn.Conv3d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool2d, nn.AvgPool3d)


def _per_dim(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _oversized_windows(info: ArchitectureInfo, frames: int, size: int, built_for: tuple[int, int] | None = None) -> list[str]:
    """Layers whose window is larger than their padded input (or the torch error), for a meta-device forward.

    `built_for` builds the model for another (frames, size) than it is fed, for an input below
    what the constructor accepts (C3D sizes fc6 for its clip): the windows are checked before
    the head would fail.
    """
    found: list[str] = []

    def check(name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            extents = args[0].shape[2:]
            dims = len(extents)
            kernel, pad = _per_dim(module.kernel_size, dims), _per_dim(module.padding, dims)
            dilation = _per_dim(getattr(module, "dilation", 1), dims)
            for n, k, p, d in zip(extents, kernel, pad, dilation):
                if n + 2 * p < d * (k - 1) + 1:
                    found.append(f"{name}: {n} + 2·{p} < {k}")
        return hook

    with torch.device("meta"):
        net = info.build(CLASSES, *(built_for or (frames, size)), 1 / 64).eval()
        inputs = info.example_inputs(frames, size)
    handles = [m.register_forward_pre_hook(check(n)) for n, m in net.named_modules() if isinstance(m, _WINDOWED)]
    try:
        logits = net(*inputs)
        if tuple(logits.shape) != (1, CLASSES):
            found.append(f"logits shaped {tuple(logits.shape)}")
    except (RuntimeError, ValueError) as exc:
        found.append(f"forward: {exc}")
    finally:
        for handle in handles:
            handle.remove()
    return found


def _sizes_to_check(min_size: int, every: bool) -> list[int]:
    """The minimum and the grid's sizes above it; with `every`, each size up to a full period of the pooling."""
    if every:
        return list(range(min_size, min_size + 32))  # five stride-2 halvings repeat with period 32
    return [min_size, *(s for s in SIZES if s > min_size)]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("every", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["grid", "every"])
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_minimum_size_is_tight(name: str, every: bool) -> None:
    min_frames, min_size = MINIMUMS[name]
    frames = max(min_frames, 9)
    for size in _sizes_to_check(min_size, every):
        assert _oversized_windows(ARCHITECTURES[name], frames, size) == [], size
    if min_size > 1:
        assert _oversized_windows(ARCHITECTURES[name], frames, min_size - 1, built_for=(frames, min_size))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("every", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["grid", "every"])
@pytest.mark.parametrize("name", [n for n in sorted(ARCHITECTURES) if not _two_stream(ARCHITECTURES[n])])
def test_minimum_clip_length_is_tight(name: str, every: bool) -> None:
    min_frames, min_size = MINIMUMS[name]
    lengths = range(min_frames, min_frames + 16) if every else [min_frames, *(f for f in (8, 16, 32) if f > min_frames)]
    for frames in lengths:
        assert _oversized_windows(ARCHITECTURES[name], frames, min_size) == [], frames
    if min_frames > 1:
        assert _oversized_windows(ARCHITECTURES[name], min_frames - 1, min_size, built_for=(min_frames, min_size))


def test_bn_inception_reductions_match_on_odd_grids() -> None:
    """At 112² inception_3c halves 14 → 7 and inception_4e halves 7 → 4: the pass-through pads like the convolutions."""
    from kinetoscope.model_zoo.architectures.bn_inception import BNInception

    with torch.device("meta"):
        net = BNInception(3, CLASSES, 1 / 64, size=112)
        assert net(torch.zeros(1, 3, 112, 112)).shape == (1, CLASSES)
    assert (net.inception_3c.pool.padding, net.inception_3c.pool.ceil_mode) == (0, True)  # Caffe's pool on the even grid
    assert (net.inception_4e.pool.padding, net.inception_4e.pool.ceil_mode) == (1, False)
    torch.manual_seed(0)
    published = BNInception(3, CLASSES, 1 / 16)  # 224²: Caffe's pooling at both reductions, as TSN trained it
    for module in (published.inception_3c, published.inception_4e):
        assert (module.pool.padding, module.pool.ceil_mode) == (0, True)
