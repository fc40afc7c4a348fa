"""Configuration of the mock-lens simulator: the realistic model by default, the paper's
Table 1 as the ``paper`` preset (:mod:`clusterlens.mock.presets`).

A :class:`MockConfig` groups small frozen dataclasses, one per TOML table of the
configuration file read by :func:`load_config` (``clusterlens simulate --config FILE``)::

    [halo]        the cluster halo: profile name, axis ratio, position angle, concentration,
                  mass budget
    [members]     member galaxies: profile name (truncated dPIE or SIE), M* -> sigma, cut radii
    [bcg]         the brightest cluster galaxy as its own mass component
    [source]      source population: redshifts, SED colours, sizes, clumps, second sources
                  (clusterlens.sources.SourcePopulationConfig)
    [placement]   where sources go: the high-magnification region near the caustics
    [selection]   the paper's Einstein-radius cut and an arc-visibility rule
    [image]       cutout size, final crop, PSF margin, render accuracy
    [observation] pixel scale, per-field PSF and depth distributions
                  (clusterlens.observe.ConditionsDistribution)
    [clusters]    the built-in synthetic sky: ranges of M500 and redshift
    [sky]         the synthetic fields' content: BCG, ICL, members, confusers, hard
                  negatives (clusterlens.fields.FieldConfig)

Every key is optional; unknown tables or keys and bad values raise a
:class:`~clusterlens.errors.ParameterError` naming ``table.key``.  ``docs/mock.md`` lists
every key with its unit and default.

The module holds the whole schema of the file (about 700 lines) on purpose: the tables are
read, checked and written back (:func:`config_to_dict`) by the same code, and a contributor
adding a key edits one place.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from clusterlens._validation import as_value, check_int, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.fields import FieldConfig
from clusterlens.mock.presets import _merge, preset_overrides
from clusterlens.observe.conditions import ConditionsDistribution
from clusterlens.sources.population import (
    DISTRIBUTION_FIELDS,
    SmailRedshift,
    SourcePopulationConfig,
    TruncatedLogNormal,
    TruncatedNormal,
    Uniform,
)

__all__ = [
    "HaloConfig",
    "MembersConfig",
    "BCGConfig",
    "PlacementConfig",
    "SelectionConfig",
    "ImageConfig",
    "ClusterSamplingConfig",
    "MockConfig",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "preset_config",
]


def _pair(value, name, owner, **bounds) -> tuple[float, float]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be a (low, high) pair. Got {value!r}."
        ) from None
    lo = check_scalar(lo, f"{name}[0]", owner, **bounds)
    hi = check_scalar(hi, f"{name}[1]", owner, **bounds)
    if not lo < hi:
        raise ParameterError(
            f"The {name!r} parameter of {owner} must have low < high. Got {value!r} instead."
        )
    return (lo, hi)


def _plain(section, units: dict) -> None:
    """Quantities given from Python (``sigma_star=180 * u.km / u.s``) as plain numbers in
    the documented units of a frozen section; TOML values are plain numbers already."""
    for key, unit in units.items():
        value = as_value(getattr(section, key), unit, key, type(section).__name__)
        object.__setattr__(section, key, value)


def _profile_name(value, name, owner) -> str:
    # the registry lookup itself happens in the simulator (user profiles may be registered
    # after the configuration is read); here only the type
    if not isinstance(value, str) or not value:
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be the registry name of a mass profile "
            f"(clusterlens.profiles.available_profiles()). Got {value!r} instead."
        )
    return value


def _bool(value, name, owner) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be true or false. Got {value!r} instead."
        )
    return value


def _velocity_relation(value, owner) -> str:
    if value not in ("zahid2016", "auger2010"):
        raise ParameterError(
            f"The 'velocity_relation' parameter of {owner} must be 'zahid2016' or 'auger2010'. "
            f"Got {value!r} instead."
        )
    return value


@dataclass(frozen=True)
class HaloConfig:
    """The cluster halo: by default a pseudo-elliptical NFW (Golse & Kneib 2002) from M500.

    Parameters
    ----------
    profile : str
        Registry name of the halo profile (:func:`clusterlens.profiles.get_profile`):
        ``"enfw"`` (pseudo-elliptical NFW, the paper's), ``"cse_nfw"`` (NFW with elliptical
        convergence, Oguri 2021; slower) or a user's registered class with a classmethod
        ``from_m500(m500, z_lens, z_source, q, phi, *, cosmology, c500c)``.
    mass_budget : bool
        Take the galaxies' mass inside R500 (members and BCG, their 3D dPIE masses) out of
        the halo, so that halo + galaxies hold M500 inside R500 (the halo keeps the scale
        radius of the full M500 and its normalisation drops; see ``docs/mock.md``).  The
        paper adds the member SIEs on top of a halo holding the whole M500 (``false``).
    q_mean, q_sigma : float
        Axis ratio ~ normal(q_mean, q_sigma) truncated to ``q_range`` (Table 1: 0.75, 0.1).
    q_range : (float, float)
        Table 1: 0.4-1.0.
    phi_range : (float, float)
        Position angle [deg, CCW from +x], uniform (Table 1: -90 to 90).
    concentration_model : str
        colossus c-M relation for c500c (``ishiyama21`` has 500c natively).
    concentration_scatter_dex : float
        Log-normal scatter of c500c around the relation [dex]; 0.12 dex (sigma_ln c ~ 0.28)
        is typical of N-body haloes (e.g. Diemer & Joyce 2019).  Not in the paper.
    """

    profile: str = "enfw"
    mass_budget: bool = True
    q_mean: float = 0.75
    q_sigma: float = 0.1
    q_range: tuple[float, float] = (0.4, 1.0)
    phi_range: tuple[float, float] = (-90.0, 90.0)
    concentration_model: str = "ishiyama21"
    concentration_scatter_dex: float = 0.12

    def __post_init__(self):
        o, s = "HaloConfig", object.__setattr__
        _plain(self, {"phi_range": "deg"})
        s(self, "profile", _profile_name(self.profile, "profile", o))
        s(self, "mass_budget", _bool(self.mass_budget, "mass_budget", o))
        s(self, "q_mean", check_scalar(self.q_mean, "q_mean", o, low=0.0, high=1.0))
        s(self, "q_sigma", check_scalar(self.q_sigma, "q_sigma", o, low=0.0))
        s(
            self,
            "q_range",
            _pair(self.q_range, "q_range", o, low=0.0, high=1.0, low_inclusive=False),
        )
        s(self, "phi_range", _pair(self.phi_range, "phi_range", o, low=-360.0, high=360.0))
        from colossus.halo import concentration  # the models colossus knows

        known = sorted(concentration.models)
        if not isinstance(self.concentration_model, str) or self.concentration_model not in known:
            raise ParameterError(
                f"The 'concentration_model' parameter of {o} must be a colossus model name "
                f"({', '.join(known)}). Got {self.concentration_model!r}."
            )
        s(
            self,
            "concentration_scatter_dex",
            check_scalar(
                self.concentration_scatter_dex, "concentration_scatter_dex", o, low=0.0, high=1.0
            ),
        )


@dataclass(frozen=True)
class MembersConfig:
    """Member galaxies: sigma from the stellar mass
    (:func:`clusterlens.cosmology.velocity_dispersion`), truncated by default.

    Parameters
    ----------
    profile : str
        Registry name of the member profile: ``"dpie"`` (truncated PIEMD,
        :class:`~clusterlens.profiles.DPIEPopulation`, the Lenstool/GLAFIC member model) or
        ``"sie"`` (untruncated, the paper's); a user's class needs a classmethod
        ``from_sigma(sigma_kms, x0, y0, z_lens, z_source, *, q, phi, r_core_kpc, r_cut_kpc,
        cosmology)`` (or a ``population_class`` attribute pointing to one that has it).
    velocity_relation : {"zahid2016", "auger2010"}
    min_stellar_mass : float
        Members below this stellar mass [Msun] carry no mass (0: all members).
    sigma_star : float
        Velocity dispersion of the L* member [km/s] of the cut-radius scaling (180).
    r_cut_star_kpc, r_core_star_kpc : float
        Cut and core radius of the L* member [kpc]; member radii scale as
        ``(sigma / sigma_star)^2``, i.e. ``(L/L*)^(1/2)`` (45 and 0.15 kpc: Limousin et al.
        2007; Natarajan et al. 2009; Richard et al. 2010; see
        :func:`clusterlens.profiles.member_radii`).  Ignored by ``"sie"``.
    """

    profile: str = "dpie"
    velocity_relation: str = "zahid2016"
    min_stellar_mass: float = 0.0
    sigma_star: float = 180.0
    r_cut_star_kpc: float = 45.0
    r_core_star_kpc: float = 0.15

    def __post_init__(self):
        o, s = "MembersConfig", object.__setattr__
        _plain(self, {"min_stellar_mass": "Msun", "sigma_star": "km/s"})
        _plain(self, {"r_cut_star_kpc": "kpc", "r_core_star_kpc": "kpc"})
        s(self, "profile", _profile_name(self.profile, "profile", o))
        _velocity_relation(self.velocity_relation, o)
        s(
            self,
            "min_stellar_mass",
            check_scalar(self.min_stellar_mass, "min_stellar_mass", o, low=0.0),
        )
        s(
            self,
            "sigma_star",
            check_scalar(self.sigma_star, "sigma_star", o, low=0.0, low_inclusive=False),
        )
        s(
            self,
            "r_cut_star_kpc",
            check_scalar(self.r_cut_star_kpc, "r_cut_star_kpc", o, low=0.0, low_inclusive=False),
        )
        s(
            self,
            "r_core_star_kpc",
            check_scalar(self.r_core_star_kpc, "r_core_star_kpc", o, low=0.0),
        )
        if self.r_core_star_kpc >= self.r_cut_star_kpc:
            raise ParameterError(
                f"The 'r_core_star_kpc' parameter of {o} must be smaller than 'r_cut_star_kpc' "
                f"({self.r_cut_star_kpc}). Got {self.r_core_star_kpc} instead."
            )


@dataclass(frozen=True)
class BCGConfig:
    """The brightest cluster galaxy as a mass component of its own.

    The BCG is the member flagged ``is_bcg`` in the scene (the synthetic fields flag it), or
    else the most massive member within ``max_offset`` of the lens centre; it leaves the
    member population and becomes one galaxy of profile ``profile`` with sigma from its
    stellar mass and its own radii.

    Parameters
    ----------
    enabled : bool
        ``false`` (the paper): the BCG is an ordinary member.
    profile : str
        Registry name, as ``members.profile`` (default ``"dpie"``).
    velocity_relation : {"zahid2016", "auger2010"}
    r_core_kpc, r_cut_kpc : float or None
        Core and cut radius [kpc]; ``None`` (default) extends the members' scaling to the
        BCG's sigma (``r_cut_star_kpc (sigma / sigma_star)^2``, the same constant
        mass-to-light ratio: ~140 kpc and ~0.5 kpc for a 320 km/s BCG; the BCG is then the
        same dPIE it would be as a member; see ``docs/mock.md``).
    max_offset : float
        Largest distance [arcsec] of an unflagged BCG from the centre.
    """

    enabled: bool = True
    profile: str = "dpie"
    velocity_relation: str = "zahid2016"
    r_core_kpc: float | None = None
    r_cut_kpc: float | None = None
    max_offset: float = 3.0

    def __post_init__(self):
        o, s = "BCGConfig", object.__setattr__
        _plain(self, {"r_core_kpc": "kpc", "r_cut_kpc": "kpc", "max_offset": "arcsec"})
        s(self, "enabled", _bool(self.enabled, "enabled", o))
        s(self, "profile", _profile_name(self.profile, "profile", o))
        _velocity_relation(self.velocity_relation, o)
        if self.r_core_kpc is not None:
            s(self, "r_core_kpc", check_scalar(self.r_core_kpc, "r_core_kpc", o, low=0.0))
        if self.r_cut_kpc is not None:
            s(
                self,
                "r_cut_kpc",
                check_scalar(self.r_cut_kpc, "r_cut_kpc", o, low=0.0, low_inclusive=False),
            )
        if (
            self.r_core_kpc is not None
            and self.r_cut_kpc is not None
            and self.r_core_kpc >= self.r_cut_kpc
        ):
            raise ParameterError(
                f"The 'r_core_kpc' parameter of {o} must be smaller than 'r_cut_kpc' "
                f"({self.r_cut_kpc}). Got {self.r_core_kpc} instead."
            )
        s(self, "max_offset", check_scalar(self.max_offset, "max_offset", o, low=0.0))


@dataclass(frozen=True)
class PlacementConfig:
    """Where the source goes: behind the high-magnification region near the caustics.

    Image-plane pixels of the final crop with ``|mu| >= min_magnification`` on the
    tangential side (``|lambda_t| < |lambda_r|``) within ``max_radius`` Einstein radii of
    the lens centre are mapped to the source plane; the source centre is one of them, chosen
    with probability proportional to ``min(|mu|, magnification_weight_cap)`` (uniformly if
    the cap is 1), plus a jitter of half the pixel's source-plane footprint.  Pixels next to
    the critical curves thus dominate and sources concentrate along the tangential caustic,
    where giant arcs and multiple images form, rather than in the large, moderately
    magnified region outside it.

    Parameters
    ----------
    min_magnification : float
        Threshold on ``|mu|`` (> 1).
    max_radius : float
        Largest distance from the lens centre in units of the Einstein radius.
    magnification_weight_cap : float
        Weights ``|mu|`` are capped here (a pixel on a critical curve has ``|mu|`` -> inf);
        1 selects uniformly.
    """

    min_magnification: float = 5.0
    max_radius: float = 2.0
    magnification_weight_cap: float = 100.0

    def __post_init__(self):
        o, s = "PlacementConfig", object.__setattr__
        s(
            self,
            "min_magnification",
            check_scalar(
                self.min_magnification, "min_magnification", o, low=1.0, low_inclusive=False
            ),
        )
        s(
            self,
            "max_radius",
            check_scalar(self.max_radius, "max_radius", o, low=0.0, low_inclusive=False),
        )
        s(
            self,
            "magnification_weight_cap",
            check_scalar(self.magnification_weight_cap, "magnification_weight_cap", o, low=1.0),
        )


@dataclass(frozen=True)
class SelectionConfig:
    """The paper's selection of realistic arcs, and how hard to try.

    Parameters
    ----------
    min_einstein_radius : float
        Lenses with an effective Einstein radius below this [arcsec] are rejected (paper: 5).
    min_arc_snr : float
        Arc visibility: the matched-filter S/N of the noiseless, PSF-convolved arc, combined
        over g, r, z (:func:`clusterlens.observe.arc_snr`), must reach this (0: no rule).
    min_visible_pixels : int
        Arc visibility, pixel by pixel: at least this many pixels of the noiseless,
        PSF-convolved arc must exceed ``visible_pixel_sigma`` times their noise (sky plus the
        arc's shot noise) in at least one band
        (``clusterlens.mock.simulator.visible_pixels``).  An arc with a high matched-filter
        S/N spread thinly below the noise everywhere is then not labelled a lens.  0: no rule
        (the paper).
    visible_pixel_sigma : float
        The per-pixel threshold ``k`` [sigma] of ``min_visible_pixels``.
    max_halo_draws : int
        Halo realisations (q, phi, concentration) tried per cluster before giving up on it.
    max_source_draws : int
        Sources tried per accepted halo before drawing another halo.
    max_cluster_draws : int
        In datasets: clusters tried per positive image before the run stops with an error
        (the configuration then almost never makes a lens).
    """

    min_einstein_radius: float = 5.0
    min_arc_snr: float = 10.0
    min_visible_pixels: int = 5
    visible_pixel_sigma: float = 1.0
    max_halo_draws: int = 4
    max_source_draws: int = 10
    max_cluster_draws: int = 200

    def __post_init__(self):
        o, s = "SelectionConfig", object.__setattr__
        _plain(self, {"min_einstein_radius": "arcsec"})
        s(
            self,
            "min_einstein_radius",
            check_scalar(self.min_einstein_radius, "min_einstein_radius", o, low=0.0),
        )
        s(self, "min_arc_snr", check_scalar(self.min_arc_snr, "min_arc_snr", o, low=0.0))
        s(
            self,
            "min_visible_pixels",
            check_int(self.min_visible_pixels, "min_visible_pixels", o, low=0),
        )
        s(
            self,
            "visible_pixel_sigma",
            check_scalar(
                self.visible_pixel_sigma, "visible_pixel_sigma", o, low=0.0, low_inclusive=False
            ),
        )
        for name in ("max_halo_draws", "max_source_draws", "max_cluster_draws"):
            s(self, name, check_int(getattr(self, name), name, o, low=1))


@dataclass(frozen=True)
class ImageConfig:
    """Image geometry and render accuracy.

    Parameters
    ----------
    cutout_size : int
        Side of the cluster cutouts [pixels] (paper: 371).
    crop_size : int
        Side of the final images [pixels] (paper: 223, 58" at 0.262"/pixel).
    psf_margin : int or None
        Pixels simulated around the crop so the PSF sees the arc's light from outside it;
        ``None``: 3 FWHM of the widest PSF.
    render_rtol : float
        Per-pixel tolerance of the adaptive Sérsic render, as a fraction of the source flux
        (:func:`clusterlens.sources.render_sersic_adaptive`).
    render_max_supersample : int
        Finest sub-pixel division of the render.
    """

    cutout_size: int = 371
    crop_size: int = 223
    psf_margin: int | None = None
    render_rtol: float = 1e-3
    render_max_supersample: int = 16

    def __post_init__(self):
        o, s = "ImageConfig", object.__setattr__
        s(self, "cutout_size", check_int(self.cutout_size, "cutout_size", o, low=16))
        s(self, "crop_size", check_int(self.crop_size, "crop_size", o, low=16))
        if self.crop_size > self.cutout_size:
            raise ParameterError(
                f"The 'crop_size' parameter of {o} must not exceed 'cutout_size' "
                f"({self.cutout_size}). Got {self.crop_size} instead."
            )
        if (self.cutout_size - self.crop_size) % 2:
            raise ParameterError(
                f"The 'crop_size' parameter of {o} must differ from 'cutout_size' by an even "
                f"number of pixels (a centred crop). Got {self.crop_size} and {self.cutout_size}."
            )
        if self.psf_margin is not None:
            s(self, "psf_margin", check_int(self.psf_margin, "psf_margin", o, low=0))
        s(
            self,
            "render_rtol",
            check_scalar(
                self.render_rtol, "render_rtol", o, low=0.0, high=0.1, low_inclusive=False
            ),
        )
        s(
            self,
            "render_max_supersample",
            check_int(self.render_max_supersample, "render_max_supersample", o, low=1),
        )


@dataclass(frozen=True)
class ClusterSamplingConfig:
    """The built-in sky: clusters drawn for :class:`clusterlens.fields.SyntheticClusterField`.

    ``log10(M500 / Msun)`` and the redshift are uniform in their ranges.  The defaults span
    the 485 published candidates (log M500 13.67-14.98, z 0.04-0.89), the clusters that can
    lens at all; Table 1's wider ranges (12.58-15.13, 0.01-1.04) are those of all the
    clusters the paper drew, most of which its 5" cut rejects.

    Parameters
    ----------
    log_m500_range : (float, float)
        [log10 Msun].
    redshift_range : (float, float)
    """

    log_m500_range: tuple[float, float] = (13.7, 15.0)
    redshift_range: tuple[float, float] = (0.1, 0.8)

    def __post_init__(self):
        o, s = "ClusterSamplingConfig", object.__setattr__
        s(
            self,
            "log_m500_range",
            _pair(self.log_m500_range, "log_m500_range", o, low=12.0, high=16.0),
        )
        s(
            self,
            "redshift_range",
            _pair(self.redshift_range, "redshift_range", o, low=0.02, high=1.5),
        )


def _default_conditions() -> ConditionsDistribution:
    return ConditionsDistribution()


@dataclass(frozen=True)
class MockConfig:
    """Everything the simulator and the dataset writer need (defaults: the realistic model;
    ``preset_config("paper")`` gives the paper's Table 1)."""

    halo: HaloConfig = field(default_factory=HaloConfig)
    members: MembersConfig = field(default_factory=MembersConfig)
    bcg: BCGConfig = field(default_factory=BCGConfig)
    source: SourcePopulationConfig = field(default_factory=SourcePopulationConfig)
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    observation: ConditionsDistribution = field(default_factory=_default_conditions)
    clusters: ClusterSamplingConfig = field(default_factory=ClusterSamplingConfig)
    sky: FieldConfig = field(default_factory=FieldConfig)

    def __post_init__(self):
        for f in fields(self):
            expected = _SECTIONS[f.name]
            if not isinstance(getattr(self, f.name), expected):
                raise ParameterError(
                    f"The {f.name!r} parameter of MockConfig must be a {expected.__name__}. "
                    f"Got {type(getattr(self, f.name)).__name__} instead."
                )

    @property
    def psf_margin(self) -> int:
        """Pixels simulated around the crop (``image.psf_margin`` or 3 FWHM of the widest PSF
        any field can draw, :attr:`ConditionsDistribution.max_fwhm`)."""
        if self.image.psf_margin is not None:
            return self.image.psf_margin
        obs = self.observation
        return int(math.ceil(3.0 * obs.max_fwhm / obs.pixel_scale))


_SECTIONS = {
    "halo": HaloConfig,
    "members": MembersConfig,
    "bcg": BCGConfig,
    "source": SourcePopulationConfig,
    "placement": PlacementConfig,
    "selection": SelectionConfig,
    "image": ImageConfig,
    "observation": ConditionsDistribution,
    "clusters": ClusterSamplingConfig,
    "sky": FieldConfig,
}

# TOML forms of the source population's distributions
_DISTRIBUTIONS = {
    "uniform": (Uniform, ("low", "high")),
    "normal": (TruncatedNormal, ("mean", "sigma", "low", "high")),
    "lognormal": (TruncatedLogNormal, ("median", "sigma_ln", "low", "high")),
    "smail": (SmailRedshift, ("alpha", "z0", "beta", "low", "high")),
}
_DIST_FIELDS = DISTRIBUTION_FIELDS


def _distribution(value, where: str):
    if not isinstance(value, dict) or "kind" not in value:
        raise ParameterError(
            f"{where} must be a table with 'kind' = 'uniform', 'normal', 'lognormal' or "
            f"'smail' and its parameters. Got {value!r} instead."
        )
    kind = value["kind"]
    if kind not in _DISTRIBUTIONS:
        raise ParameterError(
            f"{where}.kind must be one of {sorted(_DISTRIBUTIONS)}. Got {kind!r} instead."
        )
    cls, names = _DISTRIBUTIONS[kind]
    extra = set(value) - set(names) - {"kind"}
    missing = [n for n in names if n not in value]
    if extra or missing:
        raise ParameterError(
            f"{where} ({kind}) takes exactly the keys {list(names)}; unknown {sorted(extra)}, "
            f"missing {missing}."
        )
    try:
        return cls(*(value[n] for n in names))
    except (ParameterError, TypeError, ValueError) as exc:
        raise ParameterError(f"Bad value of {where} ({kind}): {exc}") from None


def _dist_to_toml(dist) -> dict:
    for kind, (cls, names) in _DISTRIBUTIONS.items():
        if type(dist) is cls:
            return {
                "kind": kind,
                **dict(zip(names, (getattr(dist, f.name) for f in fields(dist)), strict=True)),
            }
    raise ParameterError(f"Cannot write the distribution {dist!r} to TOML.")


def config_from_dict(data: dict, *, where: str = "the configuration") -> MockConfig:
    """Build a :class:`MockConfig` from nested dicts (the parsed TOML file).

    Raises
    ------
    ParameterError
        Naming ``table.key`` for unknown tables or keys and for bad values.
    """
    if not isinstance(data, dict):
        raise ParameterError(f"{where} must be a table of tables. Got {type(data).__name__}.")
    if "preset" in data:  # a named base (clusterlens.mock.presets) under the file's own tables
        data = dict(data)
        name = data.pop("preset")
        if not isinstance(name, str):
            raise ParameterError(f"'preset' in {where} must be a string. Got {name!r} instead.")
        data = _merge(preset_overrides(name), data)
    sections = {}
    for name, table in data.items():
        if name not in _SECTIONS:
            raise ParameterError(
                f"Unknown table [{name}] in {where}; expected some of {sorted(_SECTIONS)}."
            )
        cls = _SECTIONS[name]
        if not isinstance(table, dict):
            raise ParameterError(f"[{name}] in {where} must be a table. Got {table!r}.")
        known = {f.name for f in fields(cls) if f.init}
        kwargs = {}
        for key, value in table.items():
            if key not in known:
                raise ParameterError(
                    f"Unknown key '{name}.{key}' in {where}; [{name}] takes {sorted(known)}."
                )
            if name == "source" and key in _DIST_FIELDS:
                value = _distribution(value, f"'{name}.{key}'")
            elif isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            kwargs[key] = value
        try:
            sections[name] = cls(**kwargs)
        except (ParameterError, TypeError, ValueError) as exc:
            named = [k for k in kwargs if f"'{k}" in str(exc)]  # the key the message blames
            key = f"'{name}.{named[0]}'" if named else f"[{name}]"
            raise ParameterError(f"Bad value of {key} in {where}: {exc}") from None
    return MockConfig(**sections)


def load_config(path) -> MockConfig:
    """Read a TOML configuration file (see ``docs/mock.md``); missing keys keep the defaults."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"The configuration file {path} does not exist.")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"The configuration file {path} is not valid TOML: {exc}") from None
    return config_from_dict(data, where=str(path))


def config_to_dict(config: MockConfig) -> dict:
    """The configuration as plain nested dicts (TOML/JSON-serialisable): the inverse of
    :func:`config_from_dict`."""
    out = {}
    for f in fields(config):
        section = getattr(config, f.name)
        table = {}
        for sf in fields(section):
            if not sf.init:
                continue
            v = getattr(section, sf.name)
            if f.name == "source" and sf.name in _DIST_FIELDS:
                v = _dist_to_toml(v)
            elif isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            if v is not None:
                table[sf.name] = v
        out[f.name] = table
    return out


def preset_config(name: str = "realistic", overrides: dict | None = None) -> MockConfig:
    """The :class:`MockConfig` of preset ``name`` (:data:`clusterlens.mock.PRESETS`), with
    ``overrides`` (``{table: {key: value}}``, as in a TOML file) applied on top."""
    data = _merge(preset_overrides(name), overrides or {})
    return config_from_dict(data, where=f"the {name!r} preset")
