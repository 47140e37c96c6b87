"""R_B, projection and R_TV against their formulas, for every input kind's layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinetoscope.server.engine.geometry import canonical
from kinetoscope.server.engine.regularizers import RegularizerWeights, local_energy, project, total_variation
from kinetoscope.server.importer import InputSpec

IMAGE = InputSpec("rgb", (1, 3, 6, 5), "image", (-128.0, 127.0), "NCHW")
FLOW = InputSpec("flow", (1, 8, 6, 5), "stacked_flow", (-128.0, 127.0), "NCHW")
PLANAR = InputSpec("flow", (1, 8, 6, 5), "stacked_flow_planar", (-128.0, 127.0), "NCHW")
VIDEO = InputSpec("video", (1, 3, 4, 6, 5), "video", (0.0, 255.0), "NCTHW")
VIDEO_LAST = InputSpec("video", (1, 4, 6, 5, 3), "video", (0.0, 255.0), "NTHWC")


def test_paper_weights_from_the_input_range() -> None:
    weights = RegularizerWeights.for_input(VIDEO)
    assert weights.bound == 160.0, "0..255 inputs give B = 160"
    assert weights.lambda_b == pytest.approx(1 / (6 * 5 * 160.0**3))
    assert weights.lambda_tv == pytest.approx(1 / (6 * 5 * (160 / 6.5) ** 2))
    motion = RegularizerWeights.for_input(FLOW)
    assert motion.lambda_tv == pytest.approx(10 / (6 * 5 * (motion.bound / 6.5) ** 2)), "motion TV weighs 10×"
    assert RegularizerWeights.for_input(InputSpec("x", (1, 3, 6, 5), "image", (-1.0, 1.0), "NCHW")).bound == pytest.approx(160 * 2 / 255)


def test_stacked_flow_pairs_interleaved_components() -> None:
    x = torch.arange(8.0).reshape(1, 8, 1, 1).expand(1, 8, 6, 5)
    view = canonical(x, FLOW)
    assert view.shape == (1, 4, 2, 6, 5)
    assert view[0, 1, :, 0, 0].tolist() == [2.0, 3.0], "field 2 is (x2, y2) = channels 2, 3"
    planar = canonical(x, PLANAR)
    assert planar[0, 1, :, 0, 0].tolist() == [1.0, 5.0], "planar: x2 is channel 1, y2 is channel 5"
    video = torch.randn(2, 4, 6, 5, 3)
    torch.testing.assert_close(canonical(video, VIDEO_LAST), video.permute(0, 1, 4, 2, 3))


def test_local_energy_is_the_sum_of_pixel_norms_to_the_alpha() -> None:
    x = torch.randn(2, 8, 6, 5) * 50
    weights = RegularizerWeights.for_input(FLOW)
    got = local_energy(canonical(x, FLOW), weights.alpha)[0] * weights.lambda_b
    pairs = x.numpy().reshape(2, 4, 2, 6, 5)
    expected = (np.sqrt((pairs**2).sum(2)) ** 3).reshape(2, -1).sum(1) * weights.lambda_b
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_projection_bounds_every_pixel_and_keeps_small_ones() -> None:
    weights = RegularizerWeights.for_input(IMAGE)
    x = torch.randn(3, 3, 6, 5) * 200
    x[0, :, 0, 0] = torch.tensor([1.0, 2.0, 2.0])
    canonical(x, IMAGE).copy_(project(canonical(x, IMAGE), weights.bound))
    norms = x.pow(2).sum(1).sqrt()
    assert norms.max() <= weights.bound * (1 + 1e-6)
    assert x[0, :, 0, 0].tolist() == [1.0, 2.0, 2.0]
    assert (norms > weights.bound * 0.999).float().mean() > 0.5, "large pixels land on the B-ball, not inside it"


def test_total_variation_special_cases() -> None:
    def tv(x, kappa, gamma):
        return total_variation(canonical(x, VIDEO), kappa, gamma)[0]

    still = torch.ones(1, 3, 4, 6, 5) * torch.randn(1, 3, 1, 6, 5)  # constant in time
    moving = torch.randn(1, 3, 4, 6, 5)
    one, zero = torch.ones(1), torch.zeros(1)
    spatial = tv(still, one, zero)
    assert tv(still, one, one) == pytest.approx(float(spatial)), "no temporal change: γ has nothing to penalize"
    view = canonical(moving, VIDEO)
    dt = float((view[:, 1:] - view[:, :-1]).pow(2).sum())
    dxy = float((view[..., 1:] - view[..., :-1]).pow(2).sum() + (view[..., 1:, :] - view[..., :-1, :]).pow(2).sum())
    assert float(tv(moving, zero, one)) == pytest.approx(dt, rel=1e-5), "κ=0: temporal only"
    assert float(tv(moving, one, zero)) == pytest.approx(dxy, rel=1e-5), "γ=0: spatial only"
    assert float(tv(moving, torch.tensor([2.0]), torch.tensor([5.0]))) == pytest.approx(2 * dxy + 5 * dt, rel=1e-5)


def test_image_input_has_no_time_axis() -> None:
    x = canonical(torch.randn(2, 3, 6, 5), IMAGE)
    assert torch.equal(total_variation(x, torch.ones(2), torch.zeros(2))[0],
                       total_variation(x, torch.ones(2), torch.full((2,), 100.0))[0])
