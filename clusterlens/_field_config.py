"""The configuration of the synthetic cluster fields and its checks (see
:mod:`clusterlens.fields`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from clusterlens._validation import check_scalar
from clusterlens.confusers import CONFUSER_KINDS
from clusterlens.errors import ParameterError

__all__ = ["FieldConfig"]

_BCG_SIZE_RELATIONS = ("bernardi2007", "shen2003")


@dataclass(frozen=True)
class FieldConfig:
    """Knobs of the synthetic field model: the ``[sky]`` table of the mock configuration.

    The defaults are the realistic sky of ``docs/fields.md``; the ``paper`` preset
    (:mod:`clusterlens.mock.presets`) restores the plain field of earlier versions (no ICL,
    no blue members, no confusers).  Masses in Msun, densities per arcmin^2, magnitudes AB,
    sizes in kpc where named so.

    Parameters
    ----------
    bcg_log_mstar_pivot, bcg_log_mstar_slope, bcg_log_mstar_scatter : float
        ``log M*_BCG = pivot + slope log10(M500 / 1e14 Msun)`` + normal(0, scatter) [dex].
    bcg_size_relation : {"bernardi2007", "shen2003"}
        BCG half-light radius: the BCG luminosity-size relation ``log10(R_e / kpc) =
        bcg_log_re_pivot + bcg_log_re_per_mag (M_r + 23.5)`` (+ ``bcg_re_scatter_dex``), or
        ``bcg_size_boost`` times the early-type mass-size relation of Shen et al. (2003).
    bcg_sersic_n_mean, bcg_sersic_n_sigma, bcg_sersic_n_range : float, float, (float, float)
        BCG Sérsic index ~ normal, clipped to the range.
    icl_fraction_range : (float, float)
        Intracluster light: a second, extended Sérsic around the BCG holding a fraction
        (uniform in this range) of the BCG + ICL light; (0, 0) switches it off.
    icl_r_e_kpc_range : (float, float)
        Its half-light radius [kpc], log-uniform.
    icl_sersic_n : float
    blue_fraction_core, blue_fraction_dz, blue_fraction_radial, blue_fraction_max : float
        Fraction of star-forming (blue) members, ``core + dz z + radial min(R / R500, 1)``
        capped at ``max`` (Butcher-Oemler: rising with redshift and cluster-centric radius).
    blue_colour_scatter : float
        Colour scatter of the blue members [mag] around :data:`BLUE_CLOUD`.
    blue_mass_to_light_z : float
        z-band M/L of blue members.
    confuser_rate : float
        Probability that any field (lens or not) carries one or more confusers.
    hard_negative_fraction : float
        Probability that the sky makes a negative a hard negative: it gets confusers on top,
        at least one of them arc-like (:data:`clusterlens.confusers.ARC_LIKE_KINDS`).
    confuser_mean_count : float
        Mean number of confusers in a field that has them (1 + Poisson(mean - 1)).
    confuser_weights : tuple of 7 float
        Relative frequencies of :data:`clusterlens.confusers.CONFUSER_KINDS`.
    spike_angles : tuple of float
        Directions of the bright stars' diffraction spikes [deg CCW from +x]; each also gets
        its opposite.
    saturation_level : float
        Saturated star cores and bleed trails are set to this [nanomaggies per pixel].
    """

    bcg_log_mstar_pivot: float = 11.6
    bcg_log_mstar_slope: float = 0.35
    bcg_log_mstar_scatter: float = 0.17
    bcg_size_boost: float = 1.5
    bcg_size_relation: str = "bernardi2007"
    bcg_log_re_pivot: float = 1.03
    bcg_log_re_per_mag: float = -0.35
    bcg_re_scatter_dex: float = 0.2
    bcg_sersic_n_mean: float = 6.0
    bcg_sersic_n_sigma: float = 1.0
    bcg_sersic_n_range: tuple[float, float] = (4.0, 8.0)
    icl_fraction_range: tuple[float, float] = (0.1, 0.4)
    icl_r_e_kpc_range: tuple[float, float] = (50.0, 150.0)
    icl_sersic_n: float = 1.5
    member_log_mstar_char: float = 10.95
    member_schechter_alpha: float = -1.0
    member_log_mstar_min: float = 10.0
    member_log_mstar_max: float = 11.8
    member_concentration: float = 3.0
    richness_pivot: float = 22.5
    m500_pivot: float = 1.23e14
    richness_slope: float = 0.9
    mass_to_light_z: float = 1.5
    sun_abs_mag_z: float = 4.50
    red_sequence_tilt: float = -0.03
    colour_scatter: float = 0.05
    size_scatter_dex: float = 0.15
    blue_fraction_core: float = 0.05
    blue_fraction_dz: float = 0.5
    blue_fraction_radial: float = 0.3
    blue_fraction_max: float = 0.8
    blue_colour_scatter: float = 0.12
    blue_mass_to_light_z: float = 0.8
    field_density_r24: float = 10.0
    field_count_slope: float = 0.35
    field_mag_range: tuple[float, float] = (18.0, 25.0)
    star_density: float = 0.5
    star_mag_range: tuple[float, float] = (15.0, 22.0)
    confuser_rate: float = 0.3
    hard_negative_fraction: float = 0.5
    confuser_mean_count: float = 1.5
    confuser_weights: tuple = (1.0, 1.0, 0.7, 1.0, 1.5, 0.8, 0.5)
    spike_angles: tuple = (0.0, 90.0)
    saturation_level: float = 15.0

    def __post_init__(self):
        owner = "FieldConfig"
        set_ = object.__setattr__
        positive = (
            "bcg_size_boost",
            "member_concentration",
            "richness_pivot",
            "m500_pivot",
            "richness_slope",
            "mass_to_light_z",
            "field_count_slope",
            "icl_sersic_n",
            "blue_mass_to_light_z",
            "saturation_level",
        )
        non_negative = (
            "bcg_log_mstar_scatter",
            "colour_scatter",
            "size_scatter_dex",
            "field_density_r24",
            "star_density",
            "bcg_re_scatter_dex",
            "bcg_sersic_n_sigma",
            "blue_fraction_core",
            "blue_fraction_dz",
            "blue_fraction_radial",
            "blue_colour_scatter",
        )
        fractions = ("blue_fraction_max", "confuser_rate", "hard_negative_fraction")
        for name in (
            (
                "bcg_log_mstar_pivot",
                "bcg_log_mstar_slope",
                "member_log_mstar_char",
                "member_schechter_alpha",
                "member_log_mstar_min",
                "member_log_mstar_max",
                "sun_abs_mag_z",
                "red_sequence_tilt",
                "bcg_log_re_pivot",
                "bcg_log_re_per_mag",
                "bcg_sersic_n_mean",
            )
            + positive
            + non_negative
            + fractions
        ):
            kw = {}
            if name in positive:
                kw = {"low": 0.0, "low_inclusive": False}
            elif name in non_negative:
                kw = {"low": 0.0}
            elif name in fractions:
                kw = {"low": 0.0, "high": 1.0}
            set_(self, name, check_scalar(getattr(self, name), name, owner, **kw))
        set_(
            self,
            "confuser_mean_count",
            check_scalar(self.confuser_mean_count, "confuser_mean_count", owner, low=1.0, high=20),
        )
        if self.bcg_size_relation not in _BCG_SIZE_RELATIONS:
            raise ParameterError(
                f"The 'bcg_size_relation' parameter of {owner} must be one of "
                f"{_BCG_SIZE_RELATIONS}. Got {self.bcg_size_relation!r} instead."
            )
        if not self.member_log_mstar_min < self.member_log_mstar_max:
            raise ParameterError(
                f"The 'member_log_mstar_min' parameter of {owner} must be below "
                f"'member_log_mstar_max'. Got {self.member_log_mstar_min} and "
                f"{self.member_log_mstar_max}."
            )
        ranges = {  # name: (low, high, low == high allowed)
            "field_mag_range": (None, None, False),
            "star_mag_range": (None, None, False),
            "bcg_sersic_n_range": (0.3, 12.0, True),
            "icl_fraction_range": (0.0, 0.9, True),
            "icl_r_e_kpc_range": (1.0, 2000.0, True),
        }
        for name, (low, high, equal_ok) in ranges.items():
            value = getattr(self, name)
            try:
                lo, hi = value
            except (TypeError, ValueError):
                raise ParameterError(
                    f"The {name!r} parameter of {owner} must be a (low, high) pair. Got {value!r}."
                ) from None
            bounds = {} if low is None else {"low": low, "high": high}
            lo = check_scalar(lo, f"{name}[0]", owner, **bounds)
            hi = check_scalar(hi, f"{name}[1]", owner, **bounds)
            if not (lo < hi or (equal_ok and lo == hi)):
                raise ParameterError(
                    f"The {name!r} parameter of {owner} must be (low, high) with low "
                    f"{'<=' if equal_ok else '<'} high. Got {value!r}."
                )
            set_(self, name, (lo, hi))
        weights = self.confuser_weights
        try:
            weights = tuple(float(w) for w in weights)
        except (TypeError, ValueError):
            weights = ()
        if (
            len(weights) != len(CONFUSER_KINDS)
            or not all(math.isfinite(w) and w >= 0 for w in weights)
            or sum(weights) <= 0
        ):
            raise ParameterError(
                f"The 'confuser_weights' parameter of {owner} must be {len(CONFUSER_KINDS)} "
                f"non-negative numbers (not all 0), one per kind {CONFUSER_KINDS}. "
                f"Got {self.confuser_weights!r}."
            )
        set_(self, "confuser_weights", weights)
        try:
            angles = tuple(float(a) for a in self.spike_angles)
        except (TypeError, ValueError):
            angles = (math.nan,)
        if not all(math.isfinite(a) for a in angles) or len(angles) > 8:
            raise ParameterError(
                f"The 'spike_angles' parameter of {owner} must be up to 8 finite angles "
                f"[deg]. Got {self.spike_angles!r}."
            )
        set_(self, "spike_angles", angles)

    @property
    def has_blue_members(self) -> bool:
        return self.blue_fraction_core + self.blue_fraction_dz + self.blue_fraction_radial > 0

    @property
    def has_icl(self) -> bool:
        return self.icl_fraction_range[1] > 0
