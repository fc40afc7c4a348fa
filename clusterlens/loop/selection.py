"""Which objects to inspect next: top K by score, above a threshold, or by uncertainty (BALD).

Two layers:

* the strategies :class:`TopK`, :class:`Above` and :class:`Bald`, small frozen objects that
  :meth:`SearchProject.iterate <clusterlens.loop.SearchProject.iterate>` takes
  (``project.iterate(trainer, scorer, TopK(4000))``) and records with each iteration;
* the functions :func:`select_top_k`, :func:`select_above`, :func:`select_bald` and
  :func:`bald` underneath them, which work on plain score arrays and return indices into
  them, so they serve the search loop and simulated comparisons alike.

Scores are whatever the scorer returns, for the paper's network a lens probability in
[0, 1]; thresholds are in the same units. Samples are ``(n_samples, n)`` lens probabilities
from MC dropout or an ensemble (:mod:`clusterlens.nets.uncertainty`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from clusterlens._validation import check_array, check_int, check_scalar
from clusterlens.errors import ParameterError

__all__ = [
    "SelectionStrategy",
    "TopK",
    "Above",
    "Bald",
    "select_top_k",
    "select_above",
    "bald",
    "select_bald",
    "binary_entropy",
]


def _check_k(k, owner):
    return check_int(k, "k", owner, low=1)


def select_top_k(scores, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, highest first (ties keep input order).

    Exactly ``min(k, n)`` objects are returned even when the K-th score is tied, so the
    inspection load is what was planned; see :func:`clusterlens.metrics.threshold_top_k`
    for the threshold view of the same selection.
    """
    s = check_array(scores, "scores", "select_top_k", ndim=1)
    k = _check_k(k, "select_top_k")
    return np.argsort(-s, kind="stable")[:k]


def select_above(scores, threshold: float) -> np.ndarray:
    """Indices of all objects with ``score >= threshold``, highest score first."""
    s = check_array(scores, "scores", "select_above", ndim=1)
    t = check_scalar(threshold, "threshold", "select_above")
    order = np.argsort(-s, kind="stable")
    return order[s[order] >= t]


def binary_entropy(p) -> np.ndarray:
    """Entropy (nats) of a Bernoulli variable, ``-p ln p - (1 - p) ln(1 - p)``; 0 at 0 and 1."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    out = np.zeros_like(p)
    inner = (p > 0) & (p < 1)
    q = p[inner]
    out[inner] = -(q * np.log(q) + (1 - q) * np.log1p(-q))
    return out


def bald(samples) -> np.ndarray:
    """BALD mutual information of each object from sampled lens probabilities (nats).

    ``BALD = H(mean_s p_s) - mean_s H(p_s)`` (Houlsby et al. 2011; Gal et al. 2017): large
    when the samples (MC-dropout passes or ensemble members) are individually confident but
    disagree, i.e. when an inspection teaches the model most.

    Parameters
    ----------
    samples : array_like, shape (n_samples, n_objects)
        Lens probabilities in [0, 1] from ``n_samples >= 2`` stochastic forward passes.
    """
    p = check_array(samples, "samples", "bald", ndim=2, low=0, high=1)
    if p.shape[0] < 2:
        raise ParameterError(
            f"The 'samples' parameter of bald needs at least 2 samples (rows). Got shape {p.shape}."
        )
    info = binary_entropy(p.mean(axis=0)) - binary_entropy(p).mean(axis=0)
    # BALD >= 0 (Jensen); agreeing samples give exactly 0, not a rounding residue of 1e-16
    # that would still rank objects.
    info[np.ptp(p, axis=0) == 0] = 0.0
    return np.maximum(info, 0.0)


def select_bald(samples, k: int, *, mix: float = 0.0) -> np.ndarray:
    """Indices of the ``k`` objects with the largest BALD, optionally mixed with top score.

    Parameters
    ----------
    samples : array_like, shape (n_samples, n_objects)
        As in :func:`bald`.
    k : int
        Number to select.
    mix : float in [0, 1]
        Fraction of the ``k`` taken by highest mean probability first (exploitation); the
        rest by BALD among the remaining objects (exploration). ``0`` is pure BALD.
    """
    k = _check_k(k, "select_bald")
    mix = check_scalar(mix, "mix", "select_bald", low=0, high=1)
    info = bald(samples)
    mean = np.asarray(samples, dtype=np.float64).mean(axis=0)
    n_top = int(round(mix * k))
    top = np.argsort(-mean, kind="stable")[:n_top]
    info = info.copy()
    info[top] = -np.inf
    rest = np.argsort(-info, kind="stable")[: max(0, min(k, info.size) - top.size)]
    return np.r_[top, rest].astype(np.int64)


# -- strategies: what SearchProject.iterate takes ----------------------------------------------


class SelectionStrategy:
    """How to choose, from a scored pool, the objects graders inspect next.

    Subclasses set :attr:`name` (stored with each iteration) and implement :meth:`select`;
    :class:`TopK`, :class:`Above` and :class:`Bald` are the built-in ones. A strategy is an
    immutable value: the same one may be passed to every iteration.
    """

    #: Name recorded in the project's ``iterations.strategy`` column.
    name: ClassVar[str] = ""
    #: Whether :meth:`select` needs probability samples ``(n_samples, n)``, not only scores.
    needs_samples: ClassVar[bool] = False

    def select(self, scores: np.ndarray, samples: np.ndarray | None = None) -> np.ndarray:
        """Indices into ``scores`` of the objects to inspect, highest priority first.

        Parameters
        ----------
        scores : ndarray, shape (n,)
            One score per object (the mean over samples when the scorer returned samples).
        samples : ndarray, shape (n_samples, n), optional
            The scorer's samples, when it returned them.
        """
        raise NotImplementedError

    def recorded_threshold(self, scores: np.ndarray, chosen: np.ndarray) -> float:
        """The score threshold recorded with the iteration (Table 2's ``threshold``): the
        lowest selected score, ``inf`` when nothing was selected."""
        return float(scores[chosen].min()) if chosen.size else float("inf")

    def record(self) -> dict:
        """The strategy as stored with an iteration: ``strategy``, ``k``, ``mix``."""
        return {"strategy": self.name, "k": None, "mix": None}


@dataclass(frozen=True)
class TopK(SelectionStrategy):
    """Inspect the ``k`` highest-scoring objects (the paper: ``TopK(4000)``).

    Exactly ``min(k, n)`` objects are opened even when scores tie at the K-th place, so the
    graders' load is what was planned.

    Parameters
    ----------
    k : int
        Number of objects to open for inspection per iteration (>= 1).
    """

    k: int = 4000
    name: ClassVar[str] = "top_k"

    def __post_init__(self):
        object.__setattr__(self, "k", _check_k(self.k, "TopK"))

    def select(self, scores, samples=None) -> np.ndarray:
        return select_top_k(scores, self.k)

    def record(self) -> dict:
        return {"strategy": self.name, "k": self.k, "mix": None}


@dataclass(frozen=True)
class Above(SelectionStrategy):
    """Inspect every object with ``score >= threshold``, highest score first.

    How many objects that is depends on the model, so the inspection load varies from one
    iteration to the next; :class:`TopK` fixes it instead.

    Parameters
    ----------
    threshold : float
        Lowest score opened, in the scorer's units (a lens probability in [0, 1] for the
        paper's network, e.g. ``Above(0.9)``).
    """

    threshold: float
    name: ClassVar[str] = "above"

    def __post_init__(self):
        object.__setattr__(self, "threshold", check_scalar(self.threshold, "threshold", "Above"))

    def select(self, scores, samples=None) -> np.ndarray:
        return select_above(scores, self.threshold)

    def recorded_threshold(self, scores, chosen) -> float:
        return self.threshold  # the threshold asked for, even when nothing reached it


@dataclass(frozen=True)
class Bald(SelectionStrategy):
    """Inspect the ``k`` objects the model would learn most from (BALD), optionally mixed
    with the top scores.

    Needs a scorer that returns probability samples ``(n_samples, n)`` (MC dropout or an
    ensemble, e.g. ``NetworkScorer(..., n_samples=20)``); see :func:`select_bald`.

    Parameters
    ----------
    k : int
        Number of objects to open for inspection per iteration (>= 1).
    mix : float in [0, 1]
        Fraction of the ``k`` taken by highest mean probability first (exploitation); the
        rest by largest BALD mutual information among the others (exploration). ``0`` is
        pure BALD, ``0.5`` half and half. Stored with each iteration.
    """

    k: int
    mix: float = 0.0
    name: ClassVar[str] = "bald"
    needs_samples: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "k", _check_k(self.k, "Bald"))
        object.__setattr__(self, "mix", check_scalar(self.mix, "mix", "Bald", low=0, high=1))

    def select(self, scores, samples=None) -> np.ndarray:
        if samples is None or np.ndim(samples) != 2:
            raise ParameterError(
                "Bald selection needs score samples of shape (n_samples, n) (MC dropout or an "
                f"ensemble); got scores of shape {np.shape(scores)} only."
            )
        return select_bald(samples, self.k, mix=self.mix)

    def record(self) -> dict:
        return {"strategy": self.name, "k": self.k, "mix": self.mix}
