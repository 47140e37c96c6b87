"""The native update loop against the torch update it replaces, on every canonical layout it takes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinetoscope.server.engine import native
from kinetoscope.server.engine.geometry import canonical_view
from kinetoscope.server.engine.optim import Adam, AdamSchedule
from kinetoscope.server.engine.regularizers import RegularizerWeights
from kinetoscope.server.engine.step import InputConstants, InputState, update_input
from kinetoscope.server.engine.transforms import roll_plane
from kinetoscope.server.importer import InputSpec

pytestmark = pytest.mark.skipif(not native.NativeUpdate.available(), reason="no C compiler to build the native loop")

SPECS = [
    InputSpec("flow", (1, 20, 9, 7), "stacked_flow", (-128.0, 127.0), "NCHW"),
    InputSpec("planar", (1, 6, 5, 4), "stacked_flow_planar", (-128.0, 127.0), "NCHW"),
    InputSpec("rgb", (1, 3, 8, 6), "image", (0.0, 255.0), "NCHW"),
    InputSpec("column", (1, 3, 8, 1), "image", (0.0, 255.0), "NCHW"),
    InputSpec("row", (1, 3, 1, 6), "image", (0.0, 255.0), "NCHW"),
    InputSpec("video", (1, 3, 4, 6, 5), "video", (0.0, 255.0), "NCTHW"),
]


class Case:
    """One input's batch, moments, settings and shifts, with the torch update's result as reference."""

    def __init__(self, spec: InputSpec, seed: int, batch: int = 5) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.spec, self.layout, self.kind = spec, spec.layout, spec.kind
        self.h_axis = spec.layout.index("H")
        shape = (batch, *spec.shape[1:])
        h, w = shape[self.h_axis], shape[self.h_axis + 1]
        self.x = torch.randn(shape, generator=generator) * 100  # some pixels beyond B: the projection acts
        self.grad = torch.randn(shape, generator=generator)
        self.grad.view(-1)[3], self.grad.view(-1)[11] = float("nan"), float("-inf")
        moments = canonical_view(self.x, self.layout, self.kind).shape
        self.exp_avg = torch.randn(moments, generator=generator) * 0.1
        self.exp_avg_sq = torch.rand(moments, generator=generator) * 0.1
        self.kappa = torch.rand(batch, generator=generator)
        self.gamma = torch.rand(batch, generator=generator) * 5
        self.alive = torch.tensor([True, True, False, True, True])
        self.active = torch.tensor([True, True, True, False, True])

        def shifts() -> torch.Tensor:
            return torch.stack([torch.randint(0, h, (batch,), generator=generator),
                                torch.randint(0, w, (batch,), generator=generator)], 1)

        self.shifts, self.next_shifts = shifts(), shifts()
        self.weights = RegularizerWeights.for_input(spec)
        self.step_size, self.bias2_sqrt = 8.0, 0.05

    def adam(self, steps: int = 1) -> AdamSchedule:
        return AdamSchedule(Adam(0.9, 0.999, 1e-8), (self.step_size,) * steps, (self.bias2_sqrt,) * steps)

    def torch_update(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out, avg, avg_sq = torch.empty_like(self.x), self.exp_avg.clone(), self.exp_avg_sq.clone()
        state = InputState(self.x, out, self.grad, avg, avg_sq, self.shifts, self.active, torch.tensor(self.step_size))
        penalty = update_input(state, InputConstants(self.layout, self.kind, self.h_axis, self.weights),
                               self.alive & self.active, self.kappa, self.gamma, torch.tensor(self.bias2_sqrt),
                               Adam(0.9, 0.999, 1e-8))
        return out, avg, avg_sq, penalty

    def native_update(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out, feed = torch.empty_like(self.x), torch.empty_like(self.x)
        avg, avg_sq = self.exp_avg.clone(), self.exp_avg_sq.clone()
        schedule = torch.stack([self.shifts, self.next_shifts]).contiguous()
        update = native.FusedUpdate(self.x, out, avg, avg_sq, self.active, self.kappa, self.gamma, self.layout,
                                    self.kind, self.weights, self.adam(2), schedule)
        penalty = update(self.x, out, self.grad, feed, self.alive, 0).clone()
        return out, avg, avg_sq, penalty, feed


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_the_native_loop_steps_as_the_torch_update_does(spec: InputSpec) -> None:
    case = Case(spec, seed=len(spec.name))
    out, avg, avg_sq, penalty = case.torch_update()
    got_out, got_avg, got_avg_sq, got_penalty, feed = case.native_update()
    # float32 arithmetic in another order: values up to B = 160 agree to a few ulps
    torch.testing.assert_close(got_out, out, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got_avg, avg, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_avg_sq, avg_sq, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_penalty, penalty, rtol=1e-5, atol=0)
    # samples not both alive and active are copied, moments untouched
    for sample in (2, 3):
        assert torch.equal(got_out[sample], case.x[sample])
        assert torch.equal(got_avg[sample], case.exp_avg[sample])
    assert not torch.equal(got_out[0], case.x[0])
    # next step's input: the result rolled by the next shifts
    assert torch.equal(feed, roll_plane(got_out, case.next_shifts, case.h_axis))


def test_the_result_does_not_depend_on_the_number_of_threads() -> None:
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            results.append(Case(SPECS[0], seed=3, batch=5).native_update())
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


def test_no_shifts_means_no_roll_and_no_feed() -> None:
    case = Case(SPECS[2], seed=4)
    case.shifts = None
    out, avg, _, penalty = case.torch_update()
    got_out, got_avg = torch.empty_like(case.x), case.exp_avg.clone()
    update = native.FusedUpdate(case.x, got_out, got_avg, case.exp_avg_sq.clone(), case.active, case.kappa, case.gamma,
                                case.layout, case.kind, case.weights, case.adam())
    got_penalty = update(case.x, got_out, case.grad, None, case.alive, 0)
    with pytest.raises(ValueError, match="no next shifts"):
        update(case.x, got_out, case.grad, torch.empty_like(case.x), case.alive, 0)
    torch.testing.assert_close(got_out, out, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got_penalty, penalty, rtol=1e-5, atol=0)


def test_layouts_without_contiguous_planes_are_left_to_torch() -> None:
    channel_last = InputSpec("video", (1, 4, 6, 5, 3), "video", (0.0, 255.0), "NTHWC")
    assert not native.supports(torch.zeros(2, 4, 6, 5, 3), channel_last.layout, channel_last.kind)
    assert not native.supports(torch.zeros(2, 3, 8, 8, dtype=torch.float64), "NCHW", "image")
    assert native.supports(torch.zeros(2, 3, 8, 8), "NCHW", "image")
    with pytest.raises(ValueError, match="contiguous"):
        x = torch.zeros(2, 4, 6, 5, 3)
        native.FusedUpdate(x, x.clone(), torch.zeros(2, 4, 3, 6, 5), torch.zeros(2, 4, 3, 6, 5), torch.ones(2, dtype=torch.bool),
                           torch.ones(2), torch.ones(2), channel_last.layout, channel_last.kind, Case(SPECS[0], 0).weights,
                           Case(SPECS[0], 0).adam())


def test_tensors_shorter_than_the_batch_are_refused() -> None:
    """The loop reads one κ, γ, alive and shift per sample: a short tensor would be read past its end."""
    case = Case(SPECS[0], seed=5)
    out = torch.empty_like(case.x)
    args = [case.x, out, case.exp_avg.clone(), case.exp_avg_sq.clone(), case.active, case.kappa, case.gamma,
            case.layout, case.kind, case.weights, case.adam()]
    short = list(args)
    short[5] = case.kappa[:1]
    with pytest.raises(ValueError, match="kappa"):
        native.FusedUpdate(*short)
    with pytest.raises(ValueError, match="schedule"):
        native.FusedUpdate(*args, torch.stack([case.shifts[:2]]))
    update = native.FusedUpdate(*args)
    with pytest.raises(ValueError, match="alive"):
        update(case.x, out, case.grad, None, case.alive[:2], 0)
    with pytest.raises(ValueError, match="step 1 of 1"):
        update(case.x, out, case.grad, None, case.alive, 1)


def _bound_update(case: Case) -> tuple[native.FusedUpdate, torch.Tensor, torch.Tensor]:
    out, feed = torch.empty_like(case.x), torch.empty_like(case.x)
    schedule = torch.stack([case.shifts, case.next_shifts]).contiguous()
    update = native.FusedUpdate(case.x, out, case.exp_avg.clone(), case.exp_avg_sq.clone(), case.active, case.kappa,
                                case.gamma, case.layout, case.kind, case.weights, case.adam(2), schedule)
    update.trust(feed)
    return update, out, feed


def test_a_group_steps_every_input_in_one_call_and_sums_their_penalties() -> None:
    cases = [Case(SPECS[0], seed=5), Case(SPECS[2], seed=6)]
    alive = cases[0].alive
    expected = [case.native_update() for case in cases]
    bound = [_bound_update(case) for case in cases]
    group = native.UpdateGroup(batch=5, inputs=2)
    total = group([(update, update.arguments(case.x, out, case.grad, feed, alive, 0))
                   for case, (update, out, feed) in zip(cases, bound)])
    for (update, out, feed), (want_out, _, _, want_penalty, want_feed) in zip(bound, expected):
        assert torch.equal(out, want_out) and torch.equal(feed, want_feed)
        assert torch.equal(update.penalty, want_penalty)
    np.testing.assert_array_equal(total, expected[0][3].numpy() + expected[1][3].numpy())


def test_a_group_refuses_inputs_of_another_batch_and_foreign_buffers() -> None:
    case = Case(SPECS[0], seed=7)
    update, out, feed = _bound_update(case)
    arguments = update.arguments(case.x, out, case.grad, feed, case.alive, 0)
    with pytest.raises(ValueError, match="at most 1 inputs of 4 samples"):
        native.UpdateGroup(batch=4, inputs=1)([(update, arguments)])
    with pytest.raises(ValueError, match="laid out alike"):
        update.arguments(case.x, out, case.grad, torch.empty(5, 20, 9, 8), case.alive, 0)
    with pytest.raises(ValueError, match="gradient shaped"):
        update.arguments(case.x, out, case.grad.transpose(2, 3).contiguous().transpose(2, 3), feed, case.alive, 0)
    with pytest.raises(ValueError, match="alive must be"):
        update.arguments(case.x, out, case.grad, feed, case.alive[:4], 0)
