"""The distributions a source population draws its parameters from, and the seed rule (see
:mod:`clusterlens.sources.population`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc, gammaincinv, ndtr, ndtri

from clusterlens._validation import check_scalar
from clusterlens.errors import ParameterError

__all__ = ["Distribution", "SmailRedshift", "TruncatedLogNormal", "TruncatedNormal", "Uniform"]


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, int | np.integer | np.random.SeedSequence):
        return np.random.default_rng(seed)
    raise ParameterError(
        "The 'rng' parameter must be a numpy.random.Generator, a SeedSequence, an integer "
        f"seed or None. Got {type(seed).__name__} instead."
    )


def _check_bounds(owner, low, high):
    lo = check_scalar(low, "low", owner)
    hi = check_scalar(high, "high", owner)
    if not lo < hi:
        raise ParameterError(
            f"The 'low' parameter of {owner} must be smaller than 'high'. Got low={lo}, high={hi}."
        )
    return lo, hi


@dataclass(frozen=True)
class Uniform:
    """Uniform distribution on ``[low, high)``."""

    low: float
    high: float

    def __post_init__(self):
        lo, hi = _check_bounds("Uniform", self.low, self.high)
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws."""
        return rng.uniform(self.low, self.high, size)


@dataclass(frozen=True)
class TruncatedNormal:
    """Normal distribution (``mean``, ``sigma``) truncated to ``[low, high]``.

    Drawn by inverting the CDF (no rejection), so every draw costs the same.
    """

    mean: float
    sigma: float
    low: float
    high: float

    def __post_init__(self):
        owner = type(self).__name__
        object.__setattr__(self, "mean", check_scalar(self.mean, "mean", owner))
        object.__setattr__(
            self, "sigma", check_scalar(self.sigma, "sigma", owner, low=0, low_inclusive=False)
        )
        lo, hi = _check_bounds(owner, self.low, self.high)
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    def _transform(self, v):
        return v

    def _centre(self):
        return self.mean

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws."""
        a = (self._transform(self.low) - self._centre()) / self.sigma
        b = (self._transform(self.high) - self._centre()) / self.sigma
        u = rng.uniform(ndtr(a), ndtr(b), size)
        v = self._centre() + self.sigma * ndtri(u)
        return np.clip(self._inverse(v), self.low, self.high)

    def _inverse(self, v):
        return v


@dataclass(frozen=True)
class TruncatedLogNormal(TruncatedNormal):
    """Log-normal distribution truncated to ``[low, high]`` (``low > 0``).

    ``ln X ~ Normal(ln median, sigma)``: ``mean`` is the median of the untruncated
    distribution and ``sigma`` the standard deviation of ``ln X``.
    """

    def __post_init__(self):
        super().__post_init__()
        check_scalar(self.mean, "mean", "TruncatedLogNormal", low=0.0, low_inclusive=False)
        check_scalar(self.low, "low", "TruncatedLogNormal", low=0.0, low_inclusive=False)

    def _transform(self, v):
        return math.log(v)

    def _centre(self):
        return math.log(self.mean)

    def _inverse(self, v):
        return np.exp(v)


@dataclass(frozen=True)
class SmailRedshift:
    """Redshift distribution ``n(z) ~ z^alpha exp[-(z / z0)^beta]`` (Smail et al. 1994)
    truncated to ``[low, high]``.

    With ``t = (z / z0)^beta`` the CDF is the regularised lower incomplete gamma
    ``P((alpha + 1) / beta, t)``, so draws invert it exactly (no rejection, no grid).

    Parameters
    ----------
    alpha, z0, beta : float
        Shape (``alpha > -1``), scale redshift (> 0) and exponent (> 0).
    low, high : float
        Truncation (``0 <= low < high``).
    """

    alpha: float
    z0: float
    beta: float
    low: float
    high: float

    def __post_init__(self):
        o, s = "SmailRedshift", object.__setattr__
        s(self, "alpha", check_scalar(self.alpha, "alpha", o, low=-1.0, low_inclusive=False))
        s(self, "z0", check_scalar(self.z0, "z0", o, low=0.0, low_inclusive=False))
        s(self, "beta", check_scalar(self.beta, "beta", o, low=0.0, low_inclusive=False))
        lo, hi = _check_bounds(o, self.low, self.high)
        check_scalar(lo, "low", o, low=0.0)
        s(self, "low", lo)
        s(self, "high", hi)

    @property
    def _k(self) -> float:
        return (self.alpha + 1.0) / self.beta

    def cdf(self, z) -> np.ndarray:
        """Untruncated CDF at ``z``."""
        t = (np.clip(np.asarray(z, dtype=float), 0.0, None) / self.z0) ** self.beta
        return gammainc(self._k, t)

    def median(self) -> float:
        """Median of the truncated distribution."""
        lo, hi = self.cdf(self.low), self.cdf(self.high)
        return float(self.z0 * gammaincinv(self._k, 0.5 * (lo + hi)) ** (1.0 / self.beta))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws."""
        u = rng.uniform(self.cdf(self.low), self.cdf(self.high), size)
        z = self.z0 * gammaincinv(self._k, u) ** (1.0 / self.beta)
        return np.clip(z, self.low, self.high)


Distribution = Uniform | TruncatedNormal | SmailRedshift
