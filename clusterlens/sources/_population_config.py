"""The configuration of the realistic (and the paper's) source population (see
:mod:`clusterlens.sources.population`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from clusterlens._validation import check_scalar
from clusterlens.errors import ParameterError
from clusterlens.sources._distributions import (
    Distribution,
    SmailRedshift,
    TruncatedLogNormal,
    TruncatedNormal,
    Uniform,
)

__all__ = [
    "COLOUR_CLASSES",
    "COLOUR_MODELS",
    "DISTRIBUTION_FIELDS",
    "SIZE_MODELS",
    "SourcePopulationConfig",
]

#: Colour classes of section 2.2 by g - r: red (g >= r + 1.3), green, blue (g <= r + 0.8).
COLOUR_CLASSES: tuple[str, ...] = ("red", "green", "blue")


#: Names of the distribution-valued fields of :class:`SourcePopulationConfig`.
DISTRIBUTION_FIELDS = (
    "mag_r",
    "r_e",
    "q",
    "redshift",
    "sersic_n",
    "phi",
    "uv_slope",
    "optical_slope",
    "balmer_break",
)
COLOUR_MODELS = ("sed", "classes")
SIZE_MODELS = ("redshift", "distribution")


@dataclass(frozen=True)
class SourcePopulationConfig:
    """Distributions of the source parameters; the defaults are the realistic population.

    ``docs/sources.md`` justifies every default; the ``paper`` preset
    (:mod:`clusterlens.mock.presets`) restores Table 1 of Zhang et al. (``colour_model =
    "classes"``, ``size_model = "distribution"``, redshifts 0.034-1.495, no clumps, no second
    source).

    Always used:

    - ``mag_r``: observed r-band AB magnitude of the whole (unlensed) source, truncated
      normal (24.5, 1.2) on [21.0, 28.0] (Table 1's range, a faint peak like the unlensed
      magnitudes of the Collett 2015 population);
    - ``redshift``: :class:`SmailRedshift` ``z^1.24 exp[-(z / 0.51)^1.01]`` on [0.05, 4.0]
      (the LSST-depth n(z) fit of Chang et al. 2013; median 0.96, 14% above z = 2);
    - ``q``: truncated normal (0.7, 0.2) on [0.2, 1.0]; ``phi``: uniform [-90, 90) deg;
    - ``sersic_n``: truncated log-normal (median 1.2, sigma_ln 0.6) on [0.4, 4.0].

    Colours, ``colour_model``:

    - ``"sed"``: the analytic star-forming SED of :mod:`clusterlens.sources.sed` at the
      source redshift, with UV slope ``uv_slope`` (f_lambda ~ lambda^beta; truncated normal
      (-1.5, 0.5) on [-2.7, 0.5]), rest-optical slope ``optical_slope`` (truncated normal
      (-1.0, 0.3) on [-2.0, 0.5]) and 4000 A break ``balmer_break`` (truncated normal
      (1.25, 0.12) on [1.0, 1.6]), through DECam g, r, z: Lyman-break dropouts above z ~ 3;
    - ``"classes"``: the paper's section 2.2: a colour class (red, green, blue by g - r) with
      ``colour_weights`` (1:1:2), g - r uniform in ``g_minus_r[class]``, r - z uniform in
      ``r_minus_z[class]``, redrawn while g or z falls outside ``mag_g_range`` /
      ``mag_z_range`` (Table 1: 21.3-29.5 and 20.3-28.3; used only by this model).

    Sizes, ``size_model``:

    - ``"redshift"``: ``r_e = size_r0_kpc (1 + z)^-size_redshift_slope (L / L*)^
      size_luminosity_slope`` [physical kpc] times a log-normal scatter ``size_scatter_ln``,
      converted to arcsec at the source redshift and truncated to ``[r_e.low, r_e.high]``;
      ``L / L* = 10^(-0.4 (M - size_m_star))`` with ``M = m_r - DM(z) + 2.5 log10(1 + z)`` (a
      flat-f_nu K correction).  Defaults from Shibuya et al. (2015): 7 kpc, slope 1.2,
      luminosity slope 0.27, scatter 0.5, M* = -21;
    - ``"distribution"``: ``r_e`` [arcsec] from the ``r_e`` distribution (Table 1: truncated
      log-normal, median 0.35", sigma_ln 0.6, on [0.02, 1.68]).

    Star-forming clumps (a :class:`~clusterlens.sources.StructuredSource`): with probability
    ``clump_probability`` (linear in z from its first value at z <= 0.5 to its second at
    z >= 3; (0, 0) switches clumps off) a source gets ``clump_count`` (uniform integers)
    Gaussian (n = 0.5) clumps carrying a fraction ``clump_flux_fraction`` (uniform) of its
    r-band flux, split by a flat Dirichlet draw; each clump has ``r_e`` log-uniform in
    ``clump_r_e`` [arcsec] (at most the body's), sits at an elliptical radius uniform in
    ``clump_distance`` body radii, and has the body's SED with a UV slope bluer by a value
    uniform in ``clump_uv_slope_offset`` and no 4000 A break (young stars).

    ``second_source_probability``: the chance that the simulator adds a second, independent
    source at its own redshift (another family of multiple images).
    """

    mag_r: Distribution = field(default_factory=lambda: TruncatedNormal(24.5, 1.2, 21.0, 28.0))
    mag_g_range: tuple[float, float] = (21.3, 29.5)
    mag_z_range: tuple[float, float] = (20.3, 28.3)
    g_minus_r: tuple[tuple[float, float], ...] = ((1.3, 2.0), (0.8, 1.3), (0.0, 0.8))
    r_minus_z: tuple[tuple[float, float], ...] = ((0.7, 1.5), (0.3, 1.0), (-0.2, 0.6))
    colour_weights: tuple[float, float, float] = (1.0, 1.0, 2.0)
    r_e: Distribution = field(default_factory=lambda: TruncatedLogNormal(0.35, 0.6, 0.02, 1.68))
    q: Distribution = field(default_factory=lambda: TruncatedNormal(0.7, 0.2, 0.2, 1.0))
    redshift: Distribution = field(
        default_factory=lambda: SmailRedshift(1.24, 0.51, 1.01, 0.05, 4.0)
    )
    sersic_n: Distribution = field(default_factory=lambda: TruncatedLogNormal(1.2, 0.6, 0.4, 4.0))
    phi: Distribution = field(default_factory=lambda: Uniform(-90.0, 90.0))
    colour_model: str = "sed"
    uv_slope: Distribution = field(default_factory=lambda: TruncatedNormal(-1.5, 0.5, -2.7, 0.5))
    optical_slope: Distribution = field(
        default_factory=lambda: TruncatedNormal(-1.0, 0.3, -2.0, 0.5)
    )
    balmer_break: Distribution = field(
        default_factory=lambda: TruncatedNormal(1.25, 0.12, 1.0, 1.6)
    )
    size_model: str = "redshift"
    size_r0_kpc: float = 7.0
    size_redshift_slope: float = 1.2
    size_luminosity_slope: float = 0.27
    size_scatter_ln: float = 0.5
    size_m_star: float = -21.0
    clump_probability: tuple[float, float] = (0.15, 0.6)
    clump_count: tuple[int, int] = (1, 6)
    clump_flux_fraction: tuple[float, float] = (0.1, 0.4)
    clump_r_e: tuple[float, float] = (0.05, 0.2)
    clump_distance: tuple[float, float] = (0.2, 1.5)
    clump_uv_slope_offset: tuple[float, float] = (0.3, 1.0)
    second_source_probability: float = 0.2

    def __post_init__(self):
        owner = "SourcePopulationConfig"
        set_ = object.__setattr__
        for name in DISTRIBUTION_FIELDS:
            v = getattr(self, name)
            if not isinstance(v, Uniform | TruncatedNormal | SmailRedshift):
                raise ParameterError(
                    f"The {name!r} parameter of {owner} must be a Uniform, TruncatedNormal, "
                    f"TruncatedLogNormal or SmailRedshift. Got {v!r} instead."
                )
        _interval(self.mag_g_range, "mag_g_range", owner)
        _interval(self.mag_z_range, "mag_z_range", owner)
        for name in ("g_minus_r", "r_minus_z"):
            v = getattr(self, name)
            if len(v) != 3:
                raise ParameterError(
                    f"The {name!r} parameter of {owner} must hold 3 (low, high) ranges, one "
                    f"per colour class {COLOUR_CLASSES}. Got {v!r} instead."
                )
            set_(
                self,
                name,
                tuple(
                    _interval(r, f"{name}[{c}]", owner)
                    for r, c in zip(v, COLOUR_CLASSES, strict=True)
                ),
            )
        w = np.asarray(self.colour_weights, dtype=float)
        if w.shape != (3,) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ParameterError(
                f"The 'colour_weights' parameter of {owner} must be 3 non-negative finite "
                f"weights (red, green, blue) with a positive sum. Got {self.colour_weights!r}."
            )
        _within(self.sersic_n, "sersic_n", owner, 0.2, 10.0, low_open=False)
        _within(self.q, "q", owner, 0.0, 1.0, low_open=True)
        if not 0.0 < self.r_e.low:
            raise ParameterError(
                f"The 'r_e' parameter of {owner} must stay above 0 arcsec. Got low={self.r_e.low}."
            )
        if not 0.0 <= self.redshift.low:
            raise ParameterError(
                f"The 'redshift' parameter of {owner} must stay >= 0. Got low={self.redshift.low}."
            )
        _within(self.uv_slope, "uv_slope", owner, -5.0, 5.0, low_open=False)
        _within(self.optical_slope, "optical_slope", owner, -5.0, 5.0, low_open=False)
        _within(self.balmer_break, "balmer_break", owner, 0.1, 10.0, low_open=False)
        for name, models in (("colour_model", COLOUR_MODELS), ("size_model", SIZE_MODELS)):
            if getattr(self, name) not in models:
                raise ParameterError(
                    f"The {name!r} parameter of {owner} must be one of {list(models)}. "
                    f"Got {getattr(self, name)!r} instead."
                )
        positive = dict(low=0.0, low_inclusive=False)
        set_(self, "size_r0_kpc", check_scalar(self.size_r0_kpc, "size_r0_kpc", owner, **positive))
        for name, lo, hi in (
            ("size_redshift_slope", -3.0, 3.0),
            ("size_luminosity_slope", -1.0, 1.0),
            ("size_scatter_ln", 0.0, 2.0),
            ("size_m_star", -30.0, -10.0),
            ("second_source_probability", 0.0, 1.0),
        ):
            set_(self, name, check_scalar(getattr(self, name), name, owner, low=lo, high=hi))
        p = _interval(self.clump_probability, "clump_probability", owner, allow_equal=True)
        if not (0.0 <= p[0] <= 1.0 and 0.0 <= p[1] <= 1.0):
            raise ParameterError(
                f"The 'clump_probability' parameter of {owner} must be two probabilities in "
                f"[0, 1] (at z <= 0.5 and z >= 3). Got {self.clump_probability!r} instead."
            )
        set_(self, "clump_probability", p)
        c = self.clump_count
        if (
            not isinstance(c, tuple | list)
            or len(c) != 2
            or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in c)
            or not 1 <= c[0] <= c[1] <= 50
        ):
            raise ParameterError(
                f"The 'clump_count' parameter of {owner} must be two integers 1 <= low <= high "
                f"<= 50. Got {c!r} instead."
            )
        set_(self, "clump_count", (int(c[0]), int(c[1])))
        for name, lo, hi in (
            ("clump_flux_fraction", 0.0, 0.95),
            ("clump_r_e", 0.005, 5.0),
            ("clump_distance", 0.0, 10.0),
            ("clump_uv_slope_offset", -3.0, 3.0),
        ):
            v = _interval(getattr(self, name), name, owner, allow_equal=True)
            if not (lo <= v[0] and v[1] <= hi):
                raise ParameterError(
                    f"The {name!r} parameter of {owner} must stay within [{lo}, {hi}]. "
                    f"Got {getattr(self, name)!r} instead."
                )
            set_(self, name, v)

    @property
    def has_clumps(self) -> bool:
        """Whether any source can get clumps."""
        return max(self.clump_probability) > 0.0

    def clump_chance(self, redshift) -> np.ndarray:
        """Probability that a source at ``redshift`` is clumpy (linear from z = 0.5 to 3)."""
        p0, p1 = self.clump_probability
        t = np.clip((np.asarray(redshift, dtype=float) - 0.5) / 2.5, 0.0, 1.0)
        return p0 + (p1 - p0) * t


def _within(dist, name, owner, lo, hi, *, low_open):
    ok_low = lo < dist.low if low_open else lo <= dist.low
    if not (ok_low and dist.high <= hi):
        raise ParameterError(
            f"The {name!r} parameter of {owner} must stay within "
            f"{'(' if low_open else '['}{lo}, {hi}]. Got [{dist.low}, {dist.high}]."
        )


def _interval(value, name, owner, *, allow_equal=False):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        lo = hi = math.nan
    ordered = lo <= hi if allow_equal else lo < hi
    if not (math.isfinite(lo) and math.isfinite(hi) and ordered):
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be a (low, high) pair of finite floats "
            f"with low {'<=' if allow_equal else '<'} high. Got {value!r} instead."
        )
    return (lo, hi)
