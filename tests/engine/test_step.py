"""The fused optimizer step: regularizer gradients against autograd, Adam against torch.optim.Adam,
the compiled kernel against the eager one, and the jitter undone on the gradient."""

from __future__ import annotations

import pytest
import torch

from kinetoscope.server.engine.geometry import canonical
from kinetoscope.server.engine.optim import Adam
from kinetoscope.server.engine.regularizers import RegularizerWeights, local_energy, total_variation
from kinetoscope.server.engine.step import InputConstants, InputState, Kernels, jitter_input, update_input, update_inputs
from kinetoscope.server.importer import InputSpec

FLOW = InputSpec("flow", (1, 8, 6, 5), "stacked_flow", (-128.0, 127.0), "NCHW")
VIDEO_LAST = InputSpec("video", (1, 4, 6, 5, 3), "video", (0.0, 255.0), "NTHWC")


def _autograd(fn, view: torch.Tensor, *args) -> torch.Tensor:
    leaf = view.detach().clone().requires_grad_(True)
    value, _ = fn(leaf, *args)
    return torch.autograd.grad(value.sum(), leaf)[0]


def test_local_energy_gradient_is_autograds() -> None:
    view = torch.randn(3, 4, 2, 6, 5, dtype=torch.float64) * 50
    view[0, 0, :, 0, 0] = 0.0  # a zero pixel: no gradient, no NaN
    value, grad = local_energy(view, 3.0)
    torch.testing.assert_close(value, view.square().sum(2).pow(1.5).flatten(1).sum(1))
    torch.testing.assert_close(grad, _autograd(local_energy, view, 3.0))
    assert torch.isfinite(grad).all() and grad[0, 0, :, 0, 0].abs().sum() == 0


@pytest.mark.parametrize("frames", [1, 4])
def test_total_variation_gradient_is_autograds(frames: int) -> None:
    view = torch.randn(3, frames, 2, 6, 5, dtype=torch.float64)
    kappa, gamma = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64), torch.tensor([0.0, 5.0, 1.0], dtype=torch.float64)
    value, grad = total_variation(view, kappa, gamma)
    dx, dy = view.diff(dim=4), view.diff(dim=3)
    expected = kappa * (dx.square().flatten(1).sum(1) + dy.square().flatten(1).sum(1))
    if frames > 1:
        expected = expected + gamma * view.diff(dim=1).square().flatten(1).sum(1)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, _autograd(total_variation, view, kappa, gamma))


def _arguments(spec: InputSpec, batch: int, seed: int, *, regularize: bool = True, shifts=None, keep=None) -> dict:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *spec.shape[1:]), generator=generator) * 40
    moments = canonical(x, spec).shape
    weights = RegularizerWeights.for_input(spec)
    return dict(
        x=x, out=torch.empty_like(x), grad=torch.randn(x.shape, generator=generator), exp_avg=torch.rand(moments, generator=generator),
        exp_avg_sq=torch.rand(moments, generator=generator), shifts=shifts,
        kappa=torch.rand(batch, generator=generator), gamma=torch.rand(batch, generator=generator) * 10,
        keep=torch.ones(batch, dtype=torch.bool) if keep is None else keep,
        step_size=torch.tensor(2.0), bias2_sqrt=torch.tensor(0.3),
        layout=spec.layout, kind=spec.kind, h_axis=spec.layout.index("H"),
        alpha=3.0, bound=weights.bound if regularize else 1e9,
        lambda_b=weights.lambda_b if regularize else 0.0, lambda_tv=weights.lambda_tv if regularize else 0.0,
        beta1=0.9, beta2=0.999, eps=1e-8,
    )


def _state(args: dict) -> InputState:
    return InputState(args["x"], args["out"], args["grad"], args["exp_avg"], args["exp_avg_sq"], args["shifts"],
                      torch.ones_like(args["keep"]), args["step_size"])


def _constants(args: dict) -> InputConstants:
    weights = RegularizerWeights(bound=args["bound"], alpha=args["alpha"], lambda_b=args["lambda_b"], lambda_tv=args["lambda_tv"])
    return InputConstants(args["layout"], args["kind"], args["h_axis"], weights)


def _update(args: dict) -> torch.Tensor:
    """`update_input` on the tensors and constants of `_arguments`."""
    return update_input(_state(args), _constants(args), args["keep"], args["kappa"], args["gamma"], args["bias2_sqrt"],
                        Adam(args["beta1"], args["beta2"], args["eps"]))


def test_the_adam_part_is_torch_adams_step() -> None:
    args = _arguments(FLOW, 2, 0, regularize=False)
    reference = args["x"].clone().requires_grad_(True)
    optimizer = torch.optim.Adam([reference], lr=0.5)
    for _ in range(3):  # three steps from zero moments, as Adam starts
        reference.grad = args["grad"].clone()
        optimizer.step()
    args["exp_avg"].zero_(), args["exp_avg_sq"].zero_()
    for t in (1, 2, 3):
        args["step_size"] = torch.tensor(0.5 / (1 - 0.9**t))
        args["bias2_sqrt"] = torch.tensor((1 - 0.999**t) ** 0.5)
        _update(args)
        args["x"], args["out"] = args["out"], args["x"]
    torch.testing.assert_close(args["x"], reference.detach(), rtol=1e-5, atol=1e-4)


def test_stopped_samples_are_left_as_they_were() -> None:
    args = _arguments(VIDEO_LAST, 3, 1, keep=torch.tensor([True, False, True]))
    before = {k: args[k].clone() for k in ("x", "exp_avg", "exp_avg_sq")}
    _update(args)
    for name, old in before.items():
        after = args["out" if name == "x" else name]
        assert torch.equal(after[1], old[1]), name
        assert not torch.equal(after[0], old[0]), name


def test_the_step_keeps_pixels_inside_the_bound() -> None:
    args = _arguments(FLOW, 2, 2)
    args["step_size"] = torch.tensor(1e4)
    _update(args)
    assert canonical(args["out"], FLOW).square().sum(2).sqrt().max() <= args["bound"] * (1 + 1e-5)


def test_the_jitter_is_undone_on_the_gradient() -> None:
    """Shifting the input and the network's gradient the same way must give the unshifted step."""
    shifts = torch.tensor([[1, 2], [3, 0]])
    plain = _arguments(FLOW, 2, 3)
    moved = _arguments(FLOW, 2, 3, shifts=shifts)
    moved["grad"] = jitter_input(plain["grad"], shifts, 2)
    _update(plain)
    _update(moved)
    torch.testing.assert_close(moved["out"], plain["out"])


def _fused_call(args: dict) -> tuple[list[InputState], list[InputConstants], dict]:
    rest = dict(alive=args["keep"], kappa=args["kappa"], gamma=args["gamma"], bias2_sqrt=args["bias2_sqrt"],
                adam=Adam(args["beta1"], args["beta2"], args["eps"]))
    return [_state(args)], [_constants(args)], rest


def test_one_call_updates_every_input_as_separate_calls_do() -> None:
    flow, video = _arguments(FLOW, 3, 5), _arguments(VIDEO_LAST, 3, 6, keep=torch.tensor([True, False, True]))
    flow["kappa"], flow["gamma"] = video["kappa"], video["gamma"]
    flow["keep"] = video["keep"]
    copies = [{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in a.items()} for a in (flow, video)]
    expected = _update(copies[0]) + _update(copies[1])
    (s1, c1, rest), (s2, c2, _) = _fused_call(flow), _fused_call(video)
    got = update_inputs(s1 + s2, c1 + c2, **rest)
    torch.testing.assert_close(got, expected)
    for args, copy in zip((flow, video), copies):
        for name in ("out", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(args[name], copy[name], rtol=0, atol=0)


@pytest.mark.parametrize("spec", [FLOW, VIDEO_LAST], ids=["stacked_flow", "video_channel_last"])
def test_compiled_step_matches_the_eager_one(spec: InputSpec) -> None:
    eager = _arguments(spec, 3, 4, shifts=torch.tensor([[0, 1], [2, 2], [1, 0]]))
    compiled = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in eager.items()}
    penalty = _update(eager)
    states, constants, rest = _fused_call(compiled)
    got = Kernels(compiled=True).update(states, constants, **rest)
    assert Kernels.available(), "compiling the step needs a working C++ compiler"
    torch.testing.assert_close(got, penalty, rtol=1e-5, atol=1e-6)
    for name in ("out", "exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(compiled[name], eager[name], rtol=1e-5, atol=1e-4)


def test_a_shared_shift_rolls_the_batch_as_the_per_sample_gather_does() -> None:
    from kinetoscope.server.engine.transforms import Jitter

    x = torch.randn(3, 4, 5, 6, 3)
    jitter = Jitter(VIDEO_LAST, [(4, 4)] * 3)
    shifts = torch.tensor([[2, 3]] * 3)
    assert jitter.shared and not Jitter(VIDEO_LAST, [(4, 4), (4, 4), (1, 4)]).shared
    shared = (2, 3)
    torch.testing.assert_close(jitter.roll(x, shared), jitter(x, shifts), rtol=0, atol=0)
    torch.testing.assert_close(jitter.roll(jitter.roll(x, shared), shared, inverse=True), x, rtol=0, atol=0)


@pytest.mark.parametrize("spec", [FLOW, VIDEO_LAST], ids=["stacked_flow", "video_channel_last"])
def test_the_returned_penalty_is_the_regularizers_value(spec: InputSpec) -> None:
    """The update reads the penalty off the gradients (Euler: x·∇R = degree·R); it must equal λ_B R_B + λ_TV R_TV."""
    args = _arguments(spec, 3, 7)
    view = canonical(args["x"], spec).clone()
    expected = (args["lambda_b"] * local_energy(view, args["alpha"])[0]
                + args["lambda_tv"] * total_variation(view, args["kappa"], args["gamma"])[0])
    torch.testing.assert_close(_update(args), expected, rtol=1e-4, atol=0)


def test_steps_split_the_schedule_as_roll_and_gather_take_it() -> None:
    from kinetoscope.server.engine.transforms import Jitter

    shared, mixed = Jitter(VIDEO_LAST, [(4, 4)] * 3), Jitter(VIDEO_LAST, [(4, 4), (2, 4), (1, 1)])
    for jitter in (shared, mixed):
        schedule = jitter.schedule(5, 7)
        steps = jitter.steps(schedule)
        assert len(steps) == 7
        for step, shifts in enumerate(steps):
            if jitter.shared:
                assert shifts == tuple(schedule[step, 0].tolist())
            else:
                assert torch.equal(shifts, schedule[step])


@pytest.mark.parametrize("shape, axis", [((4, 20, 32, 40), 2), ((2, 3, 5, 36, 30, 3), 3), ((1, 3, 300, 300), 2)])
def test_block_copies_roll_as_torch_roll_does(shape: tuple[int, ...], axis: int) -> None:
    from kinetoscope.server.engine.transforms import ROLL_COPIES_FROM, roll_by_copies

    x = torch.randn(shape)
    assert x.numel() >= ROLL_COPIES_FROM
    for dy, dx in [(0, 0), (1, 0), (0, 3), (2, 5), (-1, -7), (shape[axis] + 1, -shape[axis + 1] - 2)]:
        assert torch.equal(roll_by_copies(x, dy, dx, axis), torch.roll(x, (dy, dx), (axis, axis + 1))), (dy, dx)
