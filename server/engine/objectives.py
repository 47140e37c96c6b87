"""What to maximize: channels, neurons and logits, combined with + and *.

Every objective here is a linear functional of layer activations, so it reduces to
a list of weighted unit terms. A whole batch of different objectives is then
evaluated with a few gathers per layer instead of one slice per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class _Rows:
    """The terms of one layer that one kind of plan reads, as parallel lists."""

    samples: list[int] = field(default_factory=list)
    channels: list[int] = field(default_factory=list)
    weights: list[tuple[float, float]] = field(default_factory=list)
    """(scaled, raw) weight of each term."""
    positions: list[tuple[int, ...]] = field(default_factory=list)

    def add(self, sample: int, term: Term, scale: float, position: tuple[int, ...] | None) -> None:
        self.samples.append(sample)
        self.channels.append(term.channel)
        self.weights.append((term.weight * scale, term.weight))
        self.positions.append(position or ())


@dataclass(frozen=True)
class LayerSum:
    """Channels of one layer summed over positions (Channel, Logit), for every sample: dense [2, B, C]
    weights. A multiply and a sum, whose backward is one broadcast, cost less per step than
    indexing, whose backward scatters into zeros."""

    layer: str
    weights: torch.Tensor
    """[2, B, C] (scaled, raw) on the activations' device."""
    weights_np: np.ndarray

    @classmethod
    def build(cls, layer: str, rows: _Rows, batch: int, act: torch.Tensor) -> "LayerSum":
        weights = torch.tensor(rows.weights, dtype=torch.float32).T.contiguous()  # [2, terms]
        count = len(rows.samples)
        dense = torch.zeros(2, batch, act.shape[1])
        dense.index_put_((torch.arange(2).repeat_interleave(count), torch.tensor(rows.samples).repeat(2),
                          torch.tensor(rows.channels).repeat(2)), weights.flatten(), accumulate=True)
        return cls(layer, dense.to(act.device), dense.numpy())

    def evaluate(self, act: torch.Tensor) -> torch.Tensor:
        sums = act if act.dim() == 2 else act.flatten(2).sum(-1)
        return (sums.float() * self.weights).sum(-1)

    def values(self, act: torch.Tensor) -> np.ndarray:
        if act.device.type == "cpu" and act.dtype == torch.float32:
            array = act.numpy()
            sums = array if array.ndim == 2 else array.sum(axis=tuple(range(2, array.ndim)))
        else:
            sums = (act if act.dim() == 2 else act.sum(dim=tuple(range(2, act.dim())))).float().cpu().numpy()
        return (sums[None] * self.weights_np).sum(-1)

    def seed(self, act: torch.Tensor, ascent: torch.Tensor) -> torch.Tensor:
        channel = (self.weights[0] * ascent[:, None]).to(act.dtype)  # [B, C]
        return channel.reshape(*channel.shape, *[1] * (act.dim() - 2)).expand(act.shape)


@dataclass(frozen=True)
class LayerPick:
    """Channels of one layer at single positions (Neuron): one gather per step."""

    layer: str
    samples: torch.Tensor
    channels: torch.Tensor
    weights: torch.Tensor
    """[2, terms] (scaled, raw)."""
    positions: torch.Tensor

    @classmethod
    def build(cls, layer: str, rows: _Rows, batch: int, act: torch.Tensor) -> "LayerPick":
        device = act.device
        weights = torch.tensor(rows.weights, dtype=torch.float32).T.contiguous()
        return cls(layer, torch.tensor(rows.samples, device=device), torch.tensor(rows.channels, device=device),
                   weights.to(device), torch.tensor(rows.positions, dtype=torch.long, device=device))

    def _index(self) -> tuple:
        return (self.samples, self.channels, *self.positions.T) if self.positions.numel() else (self.samples, self.channels)

    def evaluate(self, act: torch.Tensor) -> torch.Tensor:
        return torch.zeros(2, act.shape[0], dtype=torch.float32, device=act.device).index_add(
            1, self.samples, act[self._index()].float() * self.weights)

    def values(self, act: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.evaluate(act).cpu().numpy()

    def seed(self, act: torch.Tensor, ascent: torch.Tensor) -> torch.Tensor:
        seed = torch.zeros_like(act)
        seed.index_put_(self._index(), (self.weights[0] * ascent[self.samples]).to(act.dtype), accumulate=True)
        return seed


LayerPlan = LayerSum | LayerPick


class BatchObjective:
    """Evaluates one objective per sample, as a [B] tensor, from the captured layers.

    The terms are grouped into one `LayerSum` or `LayerPick` per layer and kind, built from
    the first activations seen (their channels and device)."""

    def __init__(self, objectives: Sequence[Objective], scales: dict[tuple[str, int], float] | None = None) -> None:
        self.objectives = list(objectives)
        self.scales = scales or {}
        self._plan: list[LayerPlan] | None = None
        self._seeds: tuple[torch.Tensor, tuple, tuple[list[str], list[torch.Tensor]]] | None = None
        """(ascent, layer shapes, (layers, seeds)) of the last `gradients` call: ascent changes only when a sample stops."""

    def layers(self) -> list[str]:
        return list(dict.fromkeys(layer for obj in self.objectives for layer in obj.layers()))

    def _build(self, activations: dict[str, torch.Tensor]) -> list[LayerPlan]:
        rows: dict[tuple[str, type], _Rows] = {}
        for sample, objective in enumerate(self.objectives):
            for term in objective.terms():
                act = activations[term.layer]
                if not 0 <= term.channel < act.shape[1]:
                    raise ValueError(f"{objective!r}: layer {term.layer!r} has {act.shape[1]} channels")
                kind = LayerSum if term.position is None and not term.centre else LayerPick
                position = tuple(d // 2 for d in act.shape[2:]) if term.centre else term.position
                if kind is LayerPick and (len(position) != act.dim() - 2
                                          or any(not 0 <= p < d for p, d in zip(position, act.shape[2:]))):
                    raise ValueError(f"{objective!r}: position {position} is outside layer grid {tuple(act.shape[2:])}")
                rows.setdefault((term.layer, kind), _Rows()).add(sample, term, self.scales.get((term.layer, term.channel), 1.0),
                                                                 position)
        batch = len(self.objectives)
        return [kind.build(layer, group, batch, activations[layer]) for (layer, kind), group in rows.items()]

    def _plan_for(self, activations: dict[str, torch.Tensor]) -> list[LayerPlan]:
        if self._plan is None:
            self._plan = self._build(activations)
        return self._plan

    def __call__(self, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.evaluate(activations)[0]

    def evaluate(self, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        """[2, B]: row 0 the objectives with `scales` applied, row 1 without, from one gather per layer."""
        return sum_of(plan.evaluate(activations[plan.layer]) for plan in self._plan_for(activations))

    def values(self, activations: dict[str, torch.Tensor]) -> np.ndarray:
        """`evaluate` as a [2, B] float32 numpy array, for the loop's history. Right after a
        network's forward pass every torch operation costs tens of microseconds (its code is
        no longer in the caches); numpy costs a few, so CPU activations are read as numpy
        arrays and reduced there."""
        return sum_of(plan.values(activations[plan.layer].detach()) for plan in self._plan_for(activations))

    def gradients(self, activations: dict[str, torch.Tensor], ascent: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(tensors, gradients) for `torch.autograd.backward`: d(Σ_b ascent_b · scaled objective_b)/d(layer).

        A channel's gradient is its weight broadcast over the positions, an expanded view
        as `out.sum().backward()` makes: seeding the layers with it spares the backward the
        gather, multiply and sums that autograd would otherwise record and undo every step
        (measurable at batch 1 on a small network). The seeds depend only on `ascent` and
        the layers' shapes, so they are built once and reused until either changes."""
        plans = self._plan_for(activations)
        shapes = tuple(activations[plan.layer].shape for plan in plans)
        if self._seeds is None or self._seeds[0] is not ascent or self._seeds[1] != shapes:
            seeds: dict[str, torch.Tensor] = {}
            for plan in plans:
                seed = plan.seed(activations[plan.layer], ascent)
                seeds[plan.layer] = seed if plan.layer not in seeds else seeds[plan.layer] + seed
            self._seeds = (ascent, shapes, (list(seeds), list(seeds.values())))
        layers, seeds = self._seeds[2]
        return [activations[layer] for layer in layers], seeds


def sum_of(parts):
    """The sum of an iterable's items, started from its first (no 0 + tensor)."""
    total = None
    for part in parts:
        total = part if total is None else total + part
    return total
