"""Objectives: arithmetic, names, and batched evaluation equal to a direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinetoscope.server.engine import Channel, Logit, Neuron
from kinetoscope.server.engine.objectives import BatchObjective


def test_objectives_combine_with_arithmetic_and_say_what_they_are() -> None:
    combined = 0.2 * Channel("conv5", 3) + 0.8 * Neuron("conv5", 7) - Logit("logits", 1)
    assert repr(combined) == "Sum(Sum(0.2·Channel('conv5', 3) + 0.8·Neuron('conv5', 7, centre)) + -1·Logit('logits', 1))"
    weights = [(t.layer, t.channel, t.weight) for t in combined.terms()]
    assert weights == [("conv5", 3, 0.2), ("conv5", 7, 0.8), ("logits", 1, -1.0)]
    assert combined.layers() == ["conv5", "logits"]
    with pytest.raises(TypeError):
        Channel("a", 1) + 3  # noqa: B018


def test_batch_objective_matches_direct_computation() -> None:
    torch.manual_seed(0)
    acts = {"conv": torch.randn(4, 6, 5, 7), "logits": torch.randn(4, 3)}
    objectives = [
        Channel("conv", 2),
        Neuron("conv", 5),
        Neuron("conv", 1, (0, 6)),
        0.5 * Channel("conv", 0) + 2.0 * Logit("logits", 2),
    ]
    got = BatchObjective(objectives)(acts)
    expected = torch.stack([
        acts["conv"][0, 2].sum(),
        acts["conv"][1, 5, 2, 3],
        acts["conv"][2, 1, 0, 6],
        0.5 * acts["conv"][3, 0].sum() + 2.0 * acts["logits"][3, 2],
    ])
    torch.testing.assert_close(got, expected)


def test_batch_objective_applies_per_unit_scales() -> None:
    acts = {"conv": torch.ones(2, 2, 3, 3)}
    got = BatchObjective([Channel("conv", 0), Channel("conv", 1)], scales={("conv", 1): 0.5})(acts)
    torch.testing.assert_close(got, torch.tensor([9.0, 4.5]))


def test_wrong_channel_or_position_is_a_clear_error() -> None:
    acts = {"conv": torch.ones(1, 2, 3, 3)}
    with pytest.raises(ValueError, match="has 2 channels"):
        BatchObjective([Channel("conv", 5)])(acts)
    with pytest.raises(ValueError, match="outside layer grid"):
        BatchObjective([Neuron("conv", 0, (3, 0))])(acts)


def test_seeded_gradients_are_autograds_of_the_scaled_objective() -> None:
    """The loop seeds the backward with `gradients` instead of differentiating `evaluate`: same result."""
    torch.manual_seed(1)
    conv, logits = torch.randn(4, 6, 5, 7, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    objectives = [
        Channel("conv", 2) + Neuron("conv", 2),  # one layer read two ways: the seeds add up
        Neuron("conv", 1, (0, 6)),
        0.5 * Channel("conv", 0) + 2.0 * Logit("logits", 2),
        Logit("logits", 0),
    ]
    batch = BatchObjective(objectives, scales={("conv", 2): 3.0, ("logits", 2): 0.25})
    ascent = torch.tensor([-1.0, -1.0, 0.0, -1.0])  # the third sample stopped
    acts = {"conv": conv, "logits": logits}
    expected = torch.autograd.grad((batch.evaluate(acts)[0] * ascent).sum(), [conv, logits])
    tensors, seeds = batch.gradients(acts, ascent)
    torch.autograd.backward(tensors, seeds)
    torch.testing.assert_close(conv.grad, expected[0])
    torch.testing.assert_close(logits.grad, expected[1])
    assert conv.grad[2].abs().sum() == 0 and logits.grad[2].abs().sum() == 0


def test_the_loops_numpy_values_are_evaluate() -> None:
    torch.manual_seed(2)
    acts = {"conv": torch.randn(3, 6, 5, 7), "logits": torch.randn(3, 3)}
    batch = BatchObjective([Channel("conv", 1) + Neuron("conv", 4, (1, 2)), 2.0 * Logit("logits", 1), Channel("conv", 5)],
                           scales={("conv", 1): 0.5})
    np.testing.assert_allclose(batch.values(acts), batch.evaluate(acts).numpy(), rtol=1e-6)
