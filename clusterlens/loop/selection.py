"""Which objects to inspect next: top K by score, above a threshold, or by uncertainty (BALD).

All functions work on plain score arrays and return indices into them, so they serve the
search loop and simulated comparisons alike.
"""

from __future__ import annotations

import numpy as np

from clusterlens._validation import check_array, check_scalar
from clusterlens.errors import ParameterError

__all__ = ["select_top_k", "select_above", "bald", "select_bald", "binary_entropy"]


def _check_k(k, owner):
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ParameterError(f"The 'k' parameter of {owner} must be an integer >= 1. Got {k!r}.")
    return int(k)


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
