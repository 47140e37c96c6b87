"""What to maximize: channels, neurons and logits, combined with + and *.

Every objective here is a linear functional of layer activations, so it reduces to
a list of weighted unit terms. A whole batch of different objectives is then
evaluated with a few gathers per layer instead of one slice per sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class Term:
    """weight × (activation of `channel` at `layer`, summed over positions or at `position`)."""

    layer: str
    channel: int
    weight: float = 1.0
    position: tuple[int, ...] | None = None
    centre: bool = False
    """Use the centre position of the layer's spatial grid (resolved when shapes are known)."""


class Objective:
    """Base: a named linear combination of unit terms; supports +, -, * by numbers."""

    def terms(self) -> list[Term]:
        raise NotImplementedError

    def layers(self) -> list[str]:
        return list(dict.fromkeys(term.layer for term in self.terms()))

    def __add__(self, other: "Objective") -> "Objective":
        return Sum([self, as_objective(other)])

    def __radd__(self, other) -> "Objective":
        return self if other == 0 else Sum([as_objective(other), self])

    def __sub__(self, other: "Objective") -> "Objective":
        return Sum([self, Scaled(-1.0, as_objective(other))])

    def __neg__(self) -> "Objective":
        return Scaled(-1.0, self)

    def __mul__(self, factor: float) -> "Objective":
        if not isinstance(factor, (int, float)):
            return NotImplemented
        return Scaled(float(factor), self)

    __rmul__ = __mul__


class Channel(Objective):
    """A feature channel summed over all positions (the paper's ⟨a_l(x), e_c⟩)."""

    def __init__(self, layer: str, channel: int) -> None:
        self.layer, self.channel = layer, int(channel)

    def terms(self) -> list[Term]:
        return [Term(self.layer, self.channel)]

    def __repr__(self) -> str:
        return f"Channel({self.layer!r}, {self.channel})"


class Neuron(Objective):
    """One channel at one position (default: the centre of the layer's grid)."""

    def __init__(self, layer: str, channel: int, position: Sequence[int] | None = None) -> None:
        self.layer, self.channel = layer, int(channel)
        self.position = tuple(int(p) for p in position) if position is not None else None

    def terms(self) -> list[Term]:
        return [Term(self.layer, self.channel, position=self.position, centre=self.position is None)]

    def __repr__(self) -> str:
        where = "centre" if self.position is None else self.position
        return f"Neuron({self.layer!r}, {self.channel}, {where})"


class Logit(Channel):
    """A class score: a channel of a [N, classes] layer."""

    def __repr__(self) -> str:
        return f"Logit({self.layer!r}, {self.channel})"


class Scaled(Objective):
    def __init__(self, factor: float, inner: Objective) -> None:
        self.factor, self.inner = float(factor), inner

    def terms(self) -> list[Term]:
        return [Term(t.layer, t.channel, t.weight * self.factor, t.position, t.centre) for t in self.inner.terms()]

    def __repr__(self) -> str:
        return f"{self.factor:g}·{self.inner!r}"


class Sum(Objective):
    def __init__(self, parts: Iterable[Objective]) -> None:
        self.parts = list(parts)

    def terms(self) -> list[Term]:
        return [term for part in self.parts for term in part.terms()]

    def __repr__(self) -> str:
        return "Sum(" + " + ".join(repr(p) for p in self.parts) + ")"


def as_objective(value) -> Objective:
    if isinstance(value, Objective):
        return value
    raise TypeError(f"expected an Objective (Channel, Neuron, Logit or a sum of them), got {type(value).__name__}")


class BatchObjective:
    """Evaluates one objective per sample, as a [B] tensor, from the captured layers."""

    def __init__(self, objectives: Sequence[Objective], scales: dict[tuple[str, int], float] | None = None) -> None:
        self.objectives = list(objectives)
        self.scales = scales or {}
        self._plan: dict[str, tuple] | None = None
        self._seeds: tuple[torch.Tensor, tuple, tuple[list[str], list[torch.Tensor]]] | None = None
        """(ascent, layer shapes, (layers, seeds)) of the last `gradients` call: ascent changes only when a sample stops."""

    def layers(self) -> list[str]:
        return list(dict.fromkeys(layer for obj in self.objectives for layer in obj.layers()))

    def _build(self, activations: dict[str, torch.Tensor]) -> dict[str, tuple]:
        rows: dict[str, dict[str, list]] = {}
        for sample, objective in enumerate(self.objectives):
            for term in objective.terms():
                act = activations[term.layer]
                if not 0 <= term.channel < act.shape[1]:
                    raise ValueError(f"{objective!r}: layer {term.layer!r} has {act.shape[1]} channels")
                scale = self.scales.get((term.layer, term.channel), 1.0)
                kind = "sum" if term.position is None and not term.centre else "at"
                position = tuple(d // 2 for d in act.shape[2:]) if term.centre else term.position
                if kind == "at" and (len(position) != act.dim() - 2 or any(not 0 <= p < d for p, d in zip(position, act.shape[2:]))):
                    raise ValueError(f"{objective!r}: position {position} is outside layer grid {tuple(act.shape[2:])}")
                bucket = rows.setdefault(f"{term.layer}\0{kind}", {"s": [], "c": [], "w": [], "p": []})
                bucket["s"].append(sample)
                bucket["c"].append(term.channel)
                bucket["w"].append((term.weight * scale, term.weight))
                bucket["p"].append(position or ())
        plan = {}
        batch = len(self.objectives)
        for key, bucket in rows.items():
            layer, kind = key.split("\0")
            act = activations[layer]
            weights = torch.tensor(bucket["w"], dtype=torch.float32).T.contiguous()  # [2, terms]: scaled, raw
            if kind == "sum":
                # dense [2, B, C]: a multiply and a sum, whose backward is one broadcast, cost less
                # per step than indexing, whose backward scatters into zeros
                dense = torch.zeros(2, batch, act.shape[1])
                dense.index_put_((torch.arange(2).repeat_interleave(len(bucket["s"])),
                                  torch.tensor(bucket["s"]).repeat(2), torch.tensor(bucket["c"]).repeat(2)),
                                 weights.flatten(), accumulate=True)
                plan[key] = (layer, kind, dense.to(act.device), dense.numpy())
            else:
                device = act.device
                plan[key] = (layer, kind, torch.tensor(bucket["s"], device=device), torch.tensor(bucket["c"], device=device),
                             weights.to(device), torch.tensor(bucket["p"], dtype=torch.long, device=device))
        return plan

    def _plan_for(self, activations: dict[str, torch.Tensor]) -> dict[str, tuple]:
        """The per-layer plan, built from the first activations seen (their channels and device)."""
        if self._plan is None:
            self._plan = self._build(activations)
        return self._plan

    def __call__(self, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.evaluate(activations)[0]

    def evaluate(self, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        """[2, B]: row 0 the objectives with `scales` applied, row 1 without, from one gather per layer."""
        layer_plans = self._plan_for(activations)
        total = None
        for layer, kind, *plan in layer_plans.values():
            act = activations[layer]
            if kind == "sum":
                sums = act if act.dim() == 2 else act.flatten(2).sum(-1)
                values = (sums.float() * plan[0]).sum(-1)
            else:
                values = self._picked(act, *plan)
            total = values if total is None else total + values
        return total

    @staticmethod
    def _picked(act, samples, channels, weights, positions) -> torch.Tensor:
        """[2, B] of the terms at single positions (Neuron)."""
        picked = act[(samples, channels, *positions.T)] if positions.numel() else act[samples, channels]
        return torch.zeros(2, act.shape[0], dtype=torch.float32, device=act.device).index_add(
            1, samples, picked.float() * weights)

    def values(self, activations: dict[str, torch.Tensor]) -> np.ndarray:
        """`evaluate` as a [2, B] float32 numpy array, for the loop's history. Right after a
        network's forward pass every torch operation costs tens of microseconds (its code is
        no longer in the caches); numpy costs a few, so CPU activations are read as numpy
        arrays and reduced there."""
        layer_plans = self._plan_for(activations)
        total = None
        for layer, kind, *plan in layer_plans.values():
            act = activations[layer].detach()
            if kind == "sum":
                if act.device.type == "cpu" and act.dtype == torch.float32:
                    array = act.numpy()
                    sums = array if array.ndim == 2 else array.sum(axis=tuple(range(2, array.ndim)))
                else:
                    sums = (act if act.dim() == 2 else act.sum(dim=tuple(range(2, act.dim())))).float().cpu().numpy()
                part = (sums[None] * plan[-1]).sum(-1)
            else:
                with torch.no_grad():
                    part = self._picked(act, *plan).cpu().numpy()
            total = part if total is None else total + part
        return total

    def gradients(self, activations: dict[str, torch.Tensor], ascent: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(tensors, gradients) for `torch.autograd.backward`: d(Σ_b ascent_b · scaled objective_b)/d(layer).

        A channel's gradient is its weight broadcast over the positions, an expanded view
        as `out.sum().backward()` makes: seeding the layers with it spares the backward the
        gather, multiply and sums that autograd would otherwise record and undo every step
        (measurable at batch 1 on a small network). The seeds depend only on `ascent` and
        the layers' shapes, so they are built once and reused until either changes."""
        layer_plans = self._plan_for(activations)
        shapes = tuple(activations[layer].shape for layer, *_ in layer_plans.values())
        if self._seeds is None or self._seeds[0] is not ascent or self._seeds[1] != shapes:
            self._seeds = (ascent, shapes, self._build_seeds(layer_plans, activations, ascent))
        layers, seeds = self._seeds[2]
        return [activations[layer] for layer in layers], seeds

    @staticmethod
    def _build_seeds(layer_plans: dict[str, tuple], activations: dict[str, torch.Tensor],
                     ascent: torch.Tensor) -> tuple[list[str], list[torch.Tensor]]:
        seeds: dict[str, torch.Tensor] = {}
        for layer, kind, *plan in layer_plans.values():
            act = activations[layer]
            if kind == "sum":
                channel = (plan[0][0] * ascent[:, None]).to(act.dtype)  # [B, C]
                seed = channel.reshape(*channel.shape, *[1] * (act.dim() - 2)).expand(act.shape)
            else:
                samples, channels, weights, positions = plan
                seed = torch.zeros_like(act)
                index = (samples, channels, *positions.T) if positions.numel() else (samples, channels)
                seed.index_put_(index, (weights[0] * ascent[samples]).to(act.dtype), accumulate=True)
            seeds[layer] = seed if layer not in seeds else seeds[layer] + seed
        return list(seeds), list(seeds.values())
