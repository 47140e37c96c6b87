"""Parameterizations (pixel, Fourier), the transform list, and which updater steps a run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinetoscope.server.engine import Channel, MaximizeConfig, Setting, maximize
from kinetoscope.server.engine.geometry import canonical
from kinetoscope.server.engine.param import FourierParam, PixelParam, make_param
from kinetoscope.server.engine.param.fourier import colour_matrix, spectrum_scale
from kinetoscope.server.engine.transforms import Compose, Jitter, standard_transforms
from kinetoscope.server.importer import InputSpec

from .test_loop import _layer, model  # noqa: F401 - the small two-stream model fixture

RGB = InputSpec("rgb", (1, 3, 8, 6), "image", (0.0, 255.0), "NCHW")
FLOW = InputSpec("flow", (1, 8, 6, 5), "stacked_flow", (-128.0, 127.0), "NCHW")
VIDEO = InputSpec("video", (1, 3, 4, 6, 5), "video", (0.0, 255.0), "NCTHW")
VIDEO_LAST = InputSpec("video", (1, 4, 6, 5, 3), "video", (0.0, 255.0), "NTHWC")


def _start(spec: InputSpec, batch: int = 2, scale: float = 20.0) -> torch.Tensor:
    return torch.randn((batch, *spec.shape[1:]), generator=torch.Generator().manual_seed(0)) * scale


@pytest.mark.parametrize("spec", [RGB, FLOW, VIDEO, VIDEO_LAST], ids=["rgb", "flow", "video", "video_last"])
def test_fourier_starts_where_pixels_start(spec: InputSpec) -> None:
    start = _start(spec)
    fourier = make_param("fourier", spec, start, bound=160.0)
    assert isinstance(fourier, FourierParam) and fourier.raw.shape[-1] == 2
    torch.testing.assert_close(fourier.values, start, rtol=1e-4, atol=1e-3)
    assert torch.equal(make_param("pixel", spec, start, bound=160.0).values, start)
    with pytest.raises(ValueError, match="pixel, fourier"):
        make_param("wavelet", spec, start, bound=160.0)


def test_fourier_values_stay_inside_the_bound_whatever_the_spectrum() -> None:
    fourier = FourierParam(VIDEO, _start(VIDEO), bound=10.0)
    fourier.set_raw(torch.randn(fourier.raw.shape, generator=torch.Generator().manual_seed(1)) * 100)
    fourier.advance()
    norms = canonical(fourier.values, VIDEO).square().sum(2).sqrt()
    assert norms.max() <= 10.0 * (1 + 1e-5) and norms.max() > 9.99


def test_the_spectrum_scale_falls_as_one_over_frequency_with_unit_rms() -> None:
    scale = spectrum_scale(4, 8, 8)
    assert scale.shape == (4, 8, 5)
    assert float(scale.square().mean()) == pytest.approx(1.0, rel=1e-5)
    # DC and the lowest frequency share the floor 1/max(K, H, W); doubling a frequency halves the weight
    assert scale[0, 0, 0] == pytest.approx(float(scale[0, 0, 1]), rel=1e-5)
    assert scale[0, 0, 1] == pytest.approx(2 * float(scale[0, 0, 2]), rel=1e-5)
    assert scale[1, 0, 0] == pytest.approx(float(scale[0, 2, 0]), rel=1e-5), "a frame step counts as a quarter period"


def test_colour_is_decorrelated_for_rgb_only() -> None:
    assert FourierParam(RGB, _start(RGB), 160.0).colour is not None
    assert FourierParam(VIDEO_LAST, _start(VIDEO_LAST), 160.0).colour is not None
    assert FourierParam(FLOW, _start(FLOW), 160.0).colour is None
    matrix = colour_matrix()
    assert float(matrix.norm(dim=0).max()) == pytest.approx(1.0)
    # one raw colour coefficient moves all three channels the same way: the luminance direction
    assert (matrix[:, 0] > 0).all()


def test_the_transform_list_composes_into_one_shift() -> None:
    one = Jitter(VIDEO_LAST, [(4, 4)] * 3)
    two = Jitter(VIDEO_LAST, [(2, 2), (2, 2), (1, 1)])
    composed = Compose(VIDEO_LAST, [one, two])
    schedule = composed.schedule(seed=3, steps=50)
    assert torch.equal(schedule, one.schedule(3, 50) + two.schedule(4, 50))
    assert composed.moves and not composed.shared and Compose(VIDEO_LAST, [one]).shared
    assert not Compose(VIDEO_LAST, []).moves
    assert [type(t) for t in standard_transforms(VIDEO_LAST, [(2, 2)])] == [Jitter]
    with pytest.raises(TypeError, match="shift"):
        Compose(VIDEO_LAST, [lambda x: x])


def test_an_empty_transform_list_is_no_jitter(model) -> None:  # noqa: F811
    unit = [Channel(_layer(model, "/fusion/Conv"), 1)]
    plain = maximize(model, unit, [Setting()], MaximizeConfig(iterations=6, jitter=False))
    listed = maximize(model, unit, [Setting()], MaximizeConfig(iterations=6), transforms=lambda spec, limits: [])
    jittered = maximize(model, unit, [Setting()], MaximizeConfig(iterations=6))
    np.testing.assert_array_equal(listed.results[0][0].inputs["rgb"], plain.results[0][0].inputs["rgb"])
    assert not np.array_equal(jittered.results[0][0].inputs["rgb"], plain.results[0][0].inputs["rgb"])


def test_fourier_maximizes_inside_the_bound_and_alone_as_in_a_batch(model) -> None:  # noqa: F811
    fusion = _layer(model, "/fusion/Conv")
    config = MaximizeConfig(iterations=24, param="fourier")
    crowd = maximize(model, [Channel(fusion, 0), Channel(fusion, 2)], [Setting(1, 0), Setting(1, 5)], config)
    alone = maximize(model, [Channel(fusion, 2)], [Setting(1, 5)], config)
    np.testing.assert_allclose(crowd.results[1][1].inputs["flow"], alone.results[0][0].inputs["flow"], atol=1e-3)
    pixels = maximize(model, [Channel(fusion, 2)], [Setting(1, 5)], MaximizeConfig(iterations=24))
    for row in crowd.results:
        for result in row:
            assert result.activations[-1] > result.activations[0], "the unit rises"
            assert np.sqrt((result.inputs["rgb"] ** 2).sum(0)).max() <= 160.0 * (1 + 1e-5)
    # the same seeded start, another path from it
    first = alone.results[0][0]
    assert first.activations[0] == pytest.approx(pixels.results[0][0].activations[0], rel=1e-4)
    assert not np.allclose(first.inputs["rgb"], pixels.results[0][0].inputs["rgb"])


def test_each_run_has_one_updater_and_fourier_is_never_native(model, monkeypatch) -> None:  # noqa: F811
    from kinetoscope.server.engine.optim import updater

    chosen = []
    original = updater.choose_updater

    def spy(*args, **kwargs):
        chosen.append(original(*args, **kwargs))
        return chosen[-1]

    monkeypatch.setattr("kinetoscope.server.engine.render.choose_updater", spy)
    unit = [Channel(_layer(model, "/fusion/Conv"), 0)]
    for param in ("pixel", "fourier"):
        maximize(model, unit, [Setting()], MaximizeConfig(iterations=2, param=param))
    maximize(model, unit, [Setting()], MaximizeConfig(iterations=2, compile=False))
    kinds = [type(u).__name__ for u in chosen]
    native = updater.native.NativeUpdate.available()
    assert kinds == [("NativeUpdater" if native else "TorchUpdater"), "TorchUpdater", "TorchUpdater"]
    assert all(isinstance(i.param, FourierParam) for i in chosen[1].inputs)
    assert all(isinstance(i.param, PixelParam) for i in chosen[2].inputs)
