"""The engine's configurations check themselves, so in-process callers get the checks gRPC callers get."""

from __future__ import annotations

import math

import pytest

from kinetoscope.server.engine import MaximizeConfig, Setting
from kinetoscope.server.engine.config import RecordConfig


@pytest.mark.parametrize("kwargs, named", [
    ({"kappa": -1.0}, "kappa"), ({"gamma": math.nan}, "gamma"), ({"gamma": math.inf}, "gamma"), ({"kappa": "1"}, "kappa"),
])
def test_a_setting_refuses_what_the_paper_does_not_define(kwargs, named) -> None:
    with pytest.raises(ValueError, match=rf"^{named} must be a number >= 0"):
        Setting(**kwargs)


@pytest.mark.parametrize("kwargs, named", [
    ({"iterations": 0}, "iterations"), ({"iterations": 2.5}, "iterations"), ({"max_batch": 0}, "max_batch"),
    ({"learning_rate": 0.0}, "learning_rate"), ({"alpha": -3.0}, "alpha"), ({"bound": math.nan}, "bound"),
    ({"init_scale": -0.1}, "init_scale"), ({"objective_weight": math.inf}, "objective_weight"),
    ({"betas": (0.9, 1.0)}, "betas"), ({"eps": 0.0}, "betas"), ({"param": "wavelet"}, "param"),
])
def test_a_maximize_config_names_the_field_it_refuses(kwargs, named) -> None:
    with pytest.raises(ValueError, match=rf"^{named} must"):
        MaximizeConfig(**kwargs)


def test_the_defaults_and_the_edges_the_paper_allows_are_accepted() -> None:
    assert Setting() == Setting(kappa=1.0, gamma=1.0) and Setting(kappa=0, gamma=0).gamma == 0
    config = MaximizeConfig(motion_tv_factor=0.0, init_scale=0.0, objective_weight=-1.0, bound=None, max_batch=1)
    assert config.iterations == 256 and config.max_batch == 1


def test_a_record_config_checks_itself() -> None:
    with pytest.raises(ValueError, match="top_k"):
        RecordConfig(top_k=0)


def test_reference_maxima_not_above_zero_count_as_one() -> None:
    from kinetoscope.server.engine.config import usable_reference_maxima

    usable, dead = usable_reference_maxima({("a", 0): 2.5, ("a", 1): 0.0, ("b", 3): -1.0, ("b", 0): math.nan})
    assert usable == {("a", 0): 2.5} and dead == [("a", 1), ("b", 0), ("b", 3)]


def test_one_auto_batch_for_maximization_and_recording() -> None:
    from types import SimpleNamespace

    from kinetoscope.server.engine.config import auto_batch

    model = SimpleNamespace(catalog=[SimpleNamespace(shape=(1, 4, 10, 10)), SimpleNamespace(shape=(1, 8, 5, 5))],
                            inputs=[SimpleNamespace(shape=(1, 3, 10, 10))])
    # 600 activation and 300 input values a sample: 4 · (3·600 + 6·300) = 14400 bytes with gradients
    assert auto_batch(model, 144_000, 64, activation_copies=3, input_copies=6) == 10
    assert auto_batch(model, 144_000, 4, activation_copies=3, input_copies=6) == 4
    assert auto_batch(model, 4 * (600 + 600) * 7, 64, activation_copies=1, input_copies=2) == 7
    assert auto_batch(model, 1, 64, activation_copies=1, input_copies=2) == 1
