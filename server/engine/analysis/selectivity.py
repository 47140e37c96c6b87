"""Class selectivity of units from their per-clip responses: local (class-specific) or distributed?

Section 4.1 of the paper tells class-specific fusion units (4.1.1) from general units
that serve several classes (4.1.2) by eye; here the same distinction is a number and a
test. Responses are first made non-negative by shifting each unit by its most negative
response (`nonnegative`), so ReLU layers are measured as they are and logits or pre-ReLU
convolutions get a defined index; the class-selectivity index is Morcos et al. (2018):
(μ_top − μ_rest) / (μ_top + μ_rest), with μ_top the highest class mean and μ_rest the
mean of the other class means. A label permutation test says whether a unit's index is
higher than chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASS_SPECIFIC = "class-specific"
DISTRIBUTED = "distributed"


@dataclass(frozen=True)
class PermutationConfig:
    """The label-shuffling test: `permutations` seeded shuffles, class-specific when p ≤ `alpha`."""

    alpha: float = 0.01
    permutations: int = 1000
    seed: int = 0
    chunk: int = 100
    """Shuffles evaluated per vectorized pass (bounds memory at chunk × classes × units)."""

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.permutations < 1 or self.chunk < 1:
            raise ValueError("permutations and chunk must be >= 1")
        if self.alpha * (self.permutations + 1) < 1:
            raise ValueError(f"{self.permutations} permutations cannot reach p ≤ {self.alpha}; use at least "
                             f"{int(np.ceil(1 / self.alpha)) - 1}")


@dataclass(frozen=True)
class Selectivity:
    """Per unit (C units, K classes): class means and maxima, the index, sparseness, test and label."""

    class_mean: np.ndarray  # [K, C] mean raw response per class (NaN for a class without clips)
    class_max: np.ndarray  # [K, C] maximum raw response per class
    index: np.ndarray  # [C] (μ_top − μ_rest)/(μ_top + μ_rest) on non-negative responses, in [0, 1]
    sparseness: np.ndarray  # [C] lifetime sparseness over clips, in [0, 1]
    top_classes: np.ndarray  # [C, k] classes by descending mean response
    p_value: np.ndarray  # [C] (1 + #shuffles with index ≥ observed) / (1 + shuffles)
    labels: list[str]  # [C] class-specific or distributed
    alpha: float

    @property
    def top_class(self) -> np.ndarray:
        return self.top_classes[:, 0]

    @property
    def class_specific(self) -> np.ndarray:
        return self.p_value <= self.alpha


def nonnegative(responses: np.ndarray) -> np.ndarray:
    """[N, C] shifted per unit by its minimum when that is negative: r − min(0, min_n r). ReLU outputs are unchanged."""
    responses = np.asarray(responses, np.float64)
    return responses - np.minimum(responses.min(axis=0, keepdims=True), 0.0)


def class_statistics(responses: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and maximum response per class, [K, C] each (NaN where a class has no clip)."""
    responses, labels = _checked(responses, labels, classes)
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    sums = np.zeros((classes, responses.shape[1]))
    np.add.at(sums, labels, responses)
    maxima = np.full((classes, responses.shape[1]), -np.inf)
    np.maximum.at(maxima, labels, responses)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    maxima[counts == 0] = np.nan
    return means, maxima


def selectivity_index(class_means: np.ndarray) -> np.ndarray:
    """(μ_top − μ_rest)/(μ_top + μ_rest) per unit from non-negative class means [..., K, C]; 0 for a silent unit.

    Classes without clips (NaN) are left out of μ_rest.
    """
    top = np.nanmax(class_means, axis=-2)
    present = np.sum(~np.isnan(class_means), axis=-2)
    rest = (np.nansum(class_means, axis=-2) - top) / np.maximum(present - 1, 1)
    total = top + rest
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (top - rest) / np.where(total > 0, total, 1.0), 0.0)


def lifetime_sparseness(responses: np.ndarray) -> np.ndarray:
    """Vinje & Gallant (2000) S = (1 − A)/(1 − 1/n), A = (Σr/n)² / (Σr²/n) (Rolls & Tovee), over n clips.

    Takes non-negative responses [N, C]; 0 = equal response to every clip, 1 = one clip only.
    A silent unit gets 0.
    """
    responses = np.asarray(responses, np.float64)
    n = responses.shape[0]
    if n < 2:
        raise ValueError("lifetime sparseness needs at least 2 clips")
    mean_sq = np.mean(responses**2, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        activity = np.where(mean_sq > 0, np.mean(responses, axis=0) ** 2 / np.where(mean_sq > 0, mean_sq, 1.0), 1.0)
    return (1.0 - activity) / (1.0 - 1.0 / n)


def permutation_p_values(responses: np.ndarray, labels: np.ndarray, classes: int,
                         config: PermutationConfig = PermutationConfig()) -> np.ndarray:
    """p per unit that its selectivity index is this high by chance: labels shuffled `config.permutations` times.

    The statistic is the index itself, its top class chosen afresh in every shuffle (the
    max over classes), so testing every class at once is accounted for. Class means for a
    chunk of shuffles are one matrix product: one-hot [P, K, N] @ responses [N, C].
    """
    positive = nonnegative(responses)
    positive, labels = _checked(positive, labels, classes)
    observed = selectivity_index(class_statistics(positive, labels, classes)[0])
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    with np.errstate(divide="ignore"):
        inverse = np.where(counts > 0, 1.0 / np.maximum(counts, 1), np.nan)
    rng = np.random.default_rng(config.seed)
    exceed = np.zeros(positive.shape[1], np.int64)
    eye = np.eye(classes)
    done = 0
    while done < config.permutations:
        size = min(config.chunk, config.permutations - done)
        shuffled = rng.permuted(np.broadcast_to(labels, (size, len(labels))), axis=1)  # [P, N]
        one_hot = eye[shuffled].transpose(0, 2, 1)  # [P, K, N]
        means = (one_hot @ positive) * inverse[None, :, None]  # [P, K, C]
        exceed += np.sum(selectivity_index(means) >= observed[None, :] - 1e-12, axis=0)
        done += size
    return (1.0 + exceed) / (1.0 + config.permutations)


def selectivity(responses: np.ndarray, labels: np.ndarray, classes: int | None = None, *, top_k: int = 3,
                config: PermutationConfig = PermutationConfig()) -> Selectivity:
    """Every measure of this module for responses [N, C] of N labelled clips (labels 0..K−1)."""
    labels = np.asarray(labels)
    classes = int(labels.max()) + 1 if classes is None else classes
    means, maxima = class_statistics(responses, labels, classes)
    positive = nonnegative(responses)
    index = selectivity_index(class_statistics(positive, labels, classes)[0])
    order = np.argsort(-np.where(np.isnan(means), -np.inf, means), axis=0, kind="stable").T[:, :top_k]
    p = permutation_p_values(responses, labels, classes, config)
    names = [CLASS_SPECIFIC if value <= config.alpha else DISTRIBUTED for value in p]
    return Selectivity(means, maxima, index, lifetime_sparseness(positive), order, p, names, config.alpha)


def _checked(responses: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    responses = np.asarray(responses, np.float64)
    labels = np.asarray(labels)
    if responses.ndim != 2:
        raise ValueError(f"responses must be [clips, units], got shape {list(responses.shape)}")
    if labels.shape != (responses.shape[0],):
        raise ValueError(f"{responses.shape[0]} clips but labels of shape {list(labels.shape)}; give one label per clip")
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and (labels.min() < 0 or labels.max() >= classes)):
        raise ValueError(f"labels must be integers 0..{classes - 1}; drop unlabelled clips first")
    if len(np.unique(labels)) < 2:
        raise ValueError("selectivity needs clips of at least two classes")
    return responses, labels.astype(np.int64)
