"""Synthetic cluster fields: the built-in sky when no survey cutout is at hand.

:class:`SyntheticClusterField` draws a g, r, z cutout of a galaxy cluster (float32,
nanomaggies, 0.262 arcsec per pixel by default) from a catalog-like description (redshift and
M500 or richness) together with the table of member galaxies that a mass model turns into
lenses.  The model is documented in ``docs/fields.md``; every number below is a default of
:class:`FieldConfig` (the ``[sky]`` table of the mock configuration):

- BCG at the cutout centre, ``log M*_BCG = 11.6 + 0.35 log10(M500 / 1e14 Msun)`` (0.17 dex
  scatter; Kravtsov et al. 2018), half-light radius from a BCG luminosity-size relation
  ``log10(R_e / kpc) = 1.03 - 0.35 (M_r + 23.5)`` (0.2 dex; R_e ~ L^0.88, Bernardi et al.
  2007), Sérsic n 4-8, and an intracluster-light envelope (Sérsic n = 1.5, r_e 50-150 kpc,
  10-40% of the BCG + ICL light);
- members: a Poisson number with mean ``richness`` inside R500 (3-D), radii following an NFW
  number-density profile with concentration 3, projected; stellar masses from a Schechter
  function (log M* = 10.95, alpha = -1.0) above ``10^10 Msun``;
- richness <-> M500: ``richness = 22.5 (M500 / 1.23e14 Msun)^0.9``, a power law through the
  mean mass and richness of the Zou et al. (2021) catalog quoted by the paper;
- light: z-band ``m_z = 4.50 - 2.5 log10(M* / 1.5 Msun) + DM(z)`` (a passive population's
  M/L_z ~ 1.5; K and evolution corrections neglected), red-sequence g - r and r - z from
  :data:`RED_SEQUENCE` with a tilt of -0.03 mag per z-band magnitude and 0.05 mag scatter;
  a fraction ``0.05 + 0.5 z + 0.3 min(R / R500, 1)`` of the members below 10^11 Msun is
  blue (Butcher-Oemler), with :data:`BLUE_CLOUD` colours, M/L_z = 0.8 and disc shapes;
- sizes of red members from the early-type mass-size relation of Shen et al. (2003),
  ``R_50 = 2.88e-6 (M* / Msun)^0.56 kpc`` (0.15 dex scatter), Sérsic n ~ 4, q ~ 0.75;
- field galaxies with r-band number counts ``N(< r) = 10 (10^(0.35 (r - 24))) arcmin^-2``
  over r = 18-25, blue-to-red colours, and a few stars (0.5 per arcmin^2, r = 15-22);
- confusers (:mod:`clusterlens.confusers`: spirals, edge-on discs, rings, mergers, arc-like
  blue galaxies, bright stars, masked patches) in a fraction 0.3 of the fields, and on top
  in hard negatives;
- the field's PSF per band (``conditions.psfs``: Gaussian, Moffat or pixelised, the same
  for galaxies, stars and confusers; the FFT bands convolved in float32 except the pixels
  bright enough for its rounding to exceed ``CONVOLUTION_ERROR`` = 1e-3 of the sky
  noise, which are added exactly), the sky noise implied by its 5-sigma depth, and the
  objects' shot noise (:class:`~clusterlens.observe.SurveyConditions`, drawn per field by
  the mock sky).

The ``paper`` preset (:mod:`clusterlens.mock.presets`) switches the ICL, the blue members
and the confusers off and restores the earlier BCG (0.12 dex, Shen et al. sizes x 1.5,
n ~ 5): the same seed then gives the same field as before they existed.

Where it lives
--------------
This module draws the fields (:class:`SyntheticClusterField`) and holds the colour tables of
their galaxies; ``clusterlens._field_config`` holds :class:`FieldConfig` with its checks,
``clusterlens._field_parts`` the drawn :class:`SyntheticField`, the working form of its tables
and the samplers of member radii and stellar masses.  The colour tables stay here (the module
is a little over 600 lines) because their documentation comments are read from this module,
and the drawing code, which tests patch here, is their only user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.cosmology import FlatLambdaCDM
from scipy.special import gammaincinv, gammaln

from clusterlens._field_config import FieldConfig
from clusterlens._field_parts import (
    SyntheticField,
    _Columns,
    _n_rows,
    _sample_nfw_radius,
    _sample_schechter,
)
from clusterlens._validation import check_int, check_scalar
from clusterlens.confusers import (
    ARC_LIKE_KINDS,
    CONFUSER_KINDS,
    apply_masks,
    draw_confusers,
    paint_confusers,
)
from clusterlens.errors import ParameterError
from clusterlens.observe._kernels import add_sky_and_shot_noise
from clusterlens.observe.noise import SurveyConditions
from clusterlens.observe.photometry import mag_to_nanomaggies
from clusterlens.observe.psf import convolve
from clusterlens.sources._kernels import add_sersic_stamps

__all__ = [
    "RED_SEQUENCE",
    "BLUE_CLOUD",
    "FieldConfig",
    "SyntheticField",
    "SyntheticClusterField",
]

# The public home of the names defined in the private modules (documentation, reprs, pickles).
FieldConfig.__module__ = SyntheticField.__module__ = __name__

#: Approximate red-sequence colours of passive galaxies in the DECam bands:
#: (redshift, g - r, r - z).  Interpolated linearly, constant beyond the ends.
RED_SEQUENCE = np.array(
    [
        (0.00, 0.75, 0.38),
        (0.10, 0.90, 0.45),
        (0.20, 1.15, 0.55),
        (0.30, 1.45, 0.70),
        (0.40, 1.65, 0.90),
        (0.50, 1.80, 1.15),
        (0.60, 1.90, 1.40),
        (0.70, 1.95, 1.60),
        (0.80, 2.00, 1.75),
        (0.90, 2.00, 1.90),
        (1.00, 2.00, 2.00),
    ]
)

#: Approximate colours of star-forming (Sbc-Scd-like) galaxies in the DECam bands:
#: (redshift, g - r, r - z), for the blue cluster members.  Interpolated like RED_SEQUENCE.
BLUE_CLOUD = np.array(
    [
        (0.00, 0.45, 0.30),
        (0.20, 0.60, 0.35),
        (0.40, 0.85, 0.45),
        (0.60, 0.95, 0.65),
        (0.80, 1.00, 0.90),
        (1.00, 0.95, 1.10),
    ]
)

#: Largest error of the field's PSF convolution per pixel, in units of its sky noise: the
#: FFT bands run in float32 below it (:func:`clusterlens.observe.convolve`'s ``atol``).
CONVOLUTION_ERROR = 1e-3
#: Confusers that overwrite pixels after the noise (clusterlens.confusers.apply_masks).
_MASKING_KINDS = ("bright_star", "mask")
#: Members above this stellar mass are always red (massive satellites are quenched).
_BLUE_LOG_MSTAR_MAX = 11.0
_KPC_PER_MPC = 1000.0
_ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0


@dataclass(frozen=True)
class SyntheticClusterField:
    """A synthetic galaxy-cluster cutout, drawn from a catalog-like description.

    Parameters
    ----------
    redshift : float
        Cluster (BCG) redshift, in [0.02, 1.5].
    m500 : float, optional
        M500c [Msun, no h].  With only ``richness`` given it follows from the richness-mass
        power law of :class:`FieldConfig`.
    richness : float, optional
        Mean number of members above ``member_log_mstar_min`` inside R500; default from
        ``m500``.  At least one of ``m500`` and ``richness`` is required.
    size : int
        Side of the cutout [pixels]; the paper's cutouts are 371.
    conditions : SurveyConditions
        Pixel scale, PSF per band and depth of this field (default nominal DECaLS).
    config : FieldConfig
    cosmology : astropy.cosmology.Cosmology, optional
        Default flat LambdaCDM, H0 = 70, Om0 = 0.3.

    Examples
    --------
    >>> from clusterlens.fields import SyntheticClusterField
    >>> fld = SyntheticClusterField(redshift=0.35, m500=3e14, size=371).draw(seed=1)
    >>> fld.image.shape, fld.image.dtype.name, bool(fld.members["is_bcg"][0])
    ((3, 371, 371), 'float32', True)
    """

    redshift: float
    m500: float | None = None
    richness: float | None = None
    size: int = 371
    conditions: SurveyConditions = field(default_factory=SurveyConditions)
    config: FieldConfig = field(default_factory=FieldConfig)
    cosmology: object = None

    def __post_init__(self):
        owner = "SyntheticClusterField"
        set_ = object.__setattr__
        set_(self, "redshift", check_scalar(self.redshift, "redshift", owner, low=0.02, high=1.5))
        if self.m500 is None and self.richness is None:
            raise ParameterError(
                f"{owner} needs 'm500' [Msun] or 'richness' (or both). Got neither."
            )
        cfg = self.config
        if not isinstance(cfg, FieldConfig):
            raise ParameterError(
                f"The 'config' parameter of {owner} must be a FieldConfig. "
                f"Got {type(cfg).__name__} instead."
            )
        if not isinstance(self.conditions, SurveyConditions):
            raise ParameterError(
                f"The 'conditions' parameter of {owner} must be a SurveyConditions. "
                f"Got {type(self.conditions).__name__} instead."
            )
        if self.m500 is not None:
            set_(self, "m500", check_scalar(self.m500, "m500", owner, low=1e12, high=1e16))
        if self.richness is not None:
            set_(self, "richness", check_scalar(self.richness, "richness", owner, low=0, high=1e4))
        if self.m500 is None:
            m = cfg.m500_pivot * (self.richness / cfg.richness_pivot) ** (1 / cfg.richness_slope)
            set_(self, "m500", float(m))
        if self.richness is None:
            lam = cfg.richness_pivot * (self.m500 / cfg.m500_pivot) ** cfg.richness_slope
            set_(self, "richness", float(lam))
        set_(self, "size", check_int(self.size, "size", owner, low=16, high=4096))
        if self.cosmology is None:
            set_(self, "cosmology", FlatLambdaCDM(H0=70.0, Om0=0.3))
        elif not hasattr(self.cosmology, "angular_diameter_distance"):
            raise ParameterError(
                f"The 'cosmology' parameter of {owner} must be an astropy Cosmology. "
                f"Got {type(self.cosmology).__name__} instead."
            )

    # --- derived cluster quantities -------------------------------------------------------
    @property
    def r500_arcsec(self) -> float:
        """R500c [arcsec]: ``(3 M500 / (4 pi 500 rho_c(z)))^(1/3)`` over D_A(z)."""
        rho_c = self.cosmology.critical_density(self.redshift).to_value(u.Msun / u.Mpc**3)
        r500 = (3.0 * self.m500 / (4.0 * math.pi * 500.0 * rho_c)) ** (1.0 / 3.0)
        return r500 / self._d_a_mpc * _ARCSEC_PER_RAD

    @property
    def _d_a_mpc(self) -> float:
        return float(self.cosmology.angular_diameter_distance(self.redshift).to_value(u.Mpc))

    # --- drawing --------------------------------------------------------------------------
    def draw(
        self, seed=None, *, hard_negative: bool = False, confusers=None, trim: int = 0
    ) -> SyntheticField:
        """Draw one realisation.

        Parameters
        ----------
        seed : numpy.random.Generator, int or None
            The same seed gives the same field.
        hard_negative : bool
            Add confusers on top of the base rate, at least one of them arc-like
            (:class:`~clusterlens.mock.SyntheticSky` sets it for a fraction
            ``config.hard_negative_fraction`` of its negatives).
        confusers : sequence of str, optional
            Paint exactly these kinds (:data:`clusterlens.confusers.CONFUSER_KINDS`) instead
            of drawing them from the configured rates.
        trim : int
            Pixels cut from each side of the returned images, ``0 <= 2 trim < size``: the
            field is drawn and convolved at ``size`` (the light of the cut border still
            reaches the pixels kept) and the images are the centred ``size - 2 trim`` square
            of ``draw(seed)``'s, the same pixels to rounding (the same random stream), made
            without convolving the cut border.  The mock sky trims the PSF margin this way.

        Returns
        -------
        SyntheticField
        """
        fld = self._draw(seed, hard_negative=hard_negative, confusers=confusers, trim=trim)
        return fld._replace(
            members=fld.members.table(),
            field_galaxies=fld.field_galaxies.table(),
            stars=fld.stars.table(),
        )

    def _draw(self, seed=None, *, hard_negative=False, confusers=None, trim=0) -> SyntheticField:
        """:meth:`draw` with the tables as :class:`_Columns` (the mock sky's form)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        if (
            isinstance(trim, bool)
            or not isinstance(trim, int | np.integer)
            or not 0 <= 2 * trim < self.size
        ):
            raise ParameterError(
                "The 'trim' parameter of SyntheticClusterField.draw must be an integer with "
                f"0 <= 2 trim < size ({self.size}). Got {trim!r} instead."
            )
        trim = int(trim)
        cond = self.conditions
        scale = cond.pixel_scale
        half_width = 0.5 * self.size * scale  # arcsec
        members = self._draw_members(rng, half_width)
        field_gal = self._draw_field_galaxies(rng, half_width)
        stars = self._draw_stars(rng, half_width)
        # new content draws come last, and only when enabled: the paper preset's field stays
        # the same random stream as before
        icl = self._draw_icl(rng, members) if self.config.has_icl else None
        kinds = self._confuser_kinds(rng, hard_negative, confusers)
        bcg = {name: members[name][0] for name in ("mag_g", "mag_r", "mag_z")}
        conf = draw_confusers(
            rng,
            kinds,
            half_width=half_width,
            bcg_colours=(bcg["mag_g"] - bcg["mag_r"], bcg["mag_r"] - bcg["mag_z"]),
        )

        image = np.zeros((3, self.size, self.size))
        for table in (members, field_gal):
            self._paint_sersics(image, table)
        if icl is not None:
            self._paint_sersics(image, icl)
        self._paint_stars(image, stars)
        paint_confusers(image, conf, pixel_scale=scale, spike_angles=self.config.spike_angles)
        # saturated stars and masks are laid on the whole field (their geometry follows its
        # size, a bleed trail starts where the core saturates, maybe in the border): such a
        # field is observed whole and cropped after them
        masked = any(c.kind in _MASKING_KINDS for c in conf)
        early = 0 if masked else trim
        # float32 FFTs where their rounding stays below a thousandth of the sky noise
        atol = CONVOLUTION_ERROR * float(np.min(cond.sky_sigma))
        smooth = convolve(image, cond.psfs, pixel_scale=scale, trim=early, atol=atol)
        noisy = np.empty(smooth.shape, np.float32)
        smooth32 = np.empty(smooth.shape, np.float32)
        # the whole field's deviates, whatever is kept: the same stream with or without trim
        normal = rng.standard_normal(image.shape)
        if early:
            normal = normal[:, early:-early, early:-early]
        add_sky_and_shot_noise(smooth, normal, cond.sky_sigma, cond.gain, noisy, smooth32)
        mask = apply_masks(
            noisy, smooth32, conf, pixel_scale=scale, saturation_level=self.config.saturation_level
        )
        if trim and masked:
            keep = (slice(None), slice(trim, -trim), slice(trim, -trim))
            noisy, smooth32, mask = (np.ascontiguousarray(a[keep]) for a in (noisy, smooth32, mask))
        return SyntheticField(
            noisy, smooth32, members, field_gal, stars, tuple(conf), mask, bool(hard_negative)
        )

    def _confuser_kinds(self, rng, hard_negative, forced) -> list[str]:
        if forced is not None:
            kinds = [forced] if isinstance(forced, str) else list(forced)
            bad = [k for k in kinds if k not in CONFUSER_KINDS]
            if bad:
                raise ParameterError(
                    f"The 'confusers' parameter of SyntheticClusterField.draw must hold kinds "
                    f"from {CONFUSER_KINDS}. Got {bad!r}."
                )
            return kinds
        cfg = self.config
        weights = np.asarray(cfg.confuser_weights)
        p = weights / weights.sum()
        extra = cfg.confuser_mean_count - 1.0
        kinds: list[str] = []
        if cfg.confuser_rate > 0 and rng.uniform() < cfg.confuser_rate:
            k = 1 + int(rng.poisson(extra))
            kinds += [str(v) for v in rng.choice(CONFUSER_KINDS, size=k, p=p)]
        if hard_negative:
            arc_w = np.array(
                [w for k, w in zip(CONFUSER_KINDS, weights, strict=True) if k in ARC_LIKE_KINDS]
            )
            first = ARC_LIKE_KINDS if arc_w.sum() > 0 else CONFUSER_KINDS
            pa = arc_w / arc_w.sum() if arc_w.sum() > 0 else p
            kinds.append(str(rng.choice(first, p=pa)))
            k = int(rng.poisson(extra))
            kinds += [str(v) for v in rng.choice(CONFUSER_KINDS, size=k, p=p)]
        return kinds

    def _draw_icl(self, rng, members) -> dict | None:
        """The intracluster light: an extended Sérsic on the BCG holding a fraction ``f`` of
        the BCG + ICL light (so its flux is ``f / (1 - f)`` times the BCG's)."""
        cfg = self.config
        frac = float(rng.uniform(*cfg.icl_fraction_range))
        lo, hi = cfg.icl_r_e_kpc_range
        r_e_kpc = float(10.0 ** rng.uniform(math.log10(lo), math.log10(hi)))
        q = float(rng.uniform(0.4, 0.9))
        bcg = {name: members[name][0] for name in ("mag_g", "mag_r", "mag_z", "phi")}
        members.meta.update({"icl_fraction": frac, "icl_r_e_kpc": r_e_kpc})
        if frac <= 0.0:
            return None
        dmag = -2.5 * math.log10(frac / (1.0 - frac))
        members.meta["icl_mag_r"] = float(bcg["mag_r"] + dmag)
        r_e = r_e_kpc / (self._d_a_mpc * _KPC_PER_MPC) * _ARCSEC_PER_RAD
        # a plain dict (an astropy Table costs ~5 ms to build)
        return {
            "x": [0.0],
            "y": [0.0],
            "q": [q],
            "phi": [float(bcg["phi"])],  # aligned with the BCG
            "r_e": [r_e],
            "n": [cfg.icl_sersic_n],
            "mag_g": [float(bcg["mag_g"] + dmag)],
            "mag_r": [float(bcg["mag_r"] + dmag)],
            "mag_z": [float(bcg["mag_z"] + dmag)],
            "is_bcg": [True],  # painted over the whole cutout, like the BCG
        }

    def _draw_members(self, rng, half_width) -> _Columns:
        cfg = self.config
        z = self.redshift
        d_a_kpc = self._d_a_mpc * _KPC_PER_MPC
        # BCG
        log_bcg = (
            cfg.bcg_log_mstar_pivot
            + cfg.bcg_log_mstar_slope * math.log10(self.m500 / 1e14)
            + cfg.bcg_log_mstar_scatter * rng.standard_normal()
        )
        # satellites inside R500 (3-D NFW number density), projected
        n_sat = rng.poisson(self.richness)
        r500 = self.r500_arcsec
        radius = _sample_nfw_radius(rng, n_sat, cfg.member_concentration) * r500
        cos_t = rng.uniform(-1.0, 1.0, n_sat)
        azim = rng.uniform(0.0, 2.0 * math.pi, n_sat)
        rproj = radius * np.sqrt(1.0 - cos_t**2)
        x = np.concatenate([[0.0], rproj * np.cos(azim)])
        y = np.concatenate([[0.0], rproj * np.sin(azim)])
        log_m = np.concatenate(
            [
                [log_bcg],
                _sample_schechter(
                    rng,
                    n_sat,
                    cfg.member_log_mstar_char,
                    cfg.member_schechter_alpha,
                    cfg.member_log_mstar_min,
                    cfg.member_log_mstar_max,
                ),
            ]
        )
        inside = (np.abs(x) < half_width) & (np.abs(y) < half_width)
        x, y, log_m = x[inside], y[inside], log_m[inside]
        rproj_in = np.concatenate([[0.0], rproj])[inside]
        n = x.size
        is_bcg = np.zeros(n, bool)
        is_bcg[0] = True
        dm = float(self.cosmology.distmod(z).to_value(u.mag))
        mag_z = cfg.sun_abs_mag_z - 2.5 * (log_m - math.log10(cfg.mass_to_light_z)) + dm
        gr0 = np.interp(z, RED_SEQUENCE[:, 0], RED_SEQUENCE[:, 1])
        rz0 = np.interp(z, RED_SEQUENCE[:, 0], RED_SEQUENCE[:, 2])
        tilt = cfg.red_sequence_tilt * (mag_z - mag_z[0])
        g_r = gr0 + tilt + cfg.colour_scatter * rng.standard_normal(n)
        r_z = rz0 + tilt + cfg.colour_scatter * rng.standard_normal(n)
        mag_r = mag_z + r_z
        mag_g = mag_r + g_r
        r50_kpc = (
            2.88e-6
            * (10.0**log_m) ** 0.56
            * 10.0 ** (cfg.size_scatter_dex * rng.standard_normal(n))
        )
        r50_kpc[0] *= cfg.bcg_size_boost
        r_e = r50_kpc / d_a_kpc * _ARCSEC_PER_RAD
        sersic_n = np.clip(rng.normal(4.0, 0.8, n), 2.0, 6.0)
        sersic_n[0] = np.clip(
            rng.normal(cfg.bcg_sersic_n_mean, cfg.bcg_sersic_n_sigma), *cfg.bcg_sersic_n_range
        )
        q = np.clip(rng.normal(0.75, 0.15, n), 0.3, 1.0)
        phi = rng.uniform(-90.0, 90.0, n)
        if cfg.bcg_size_relation == "bernardi2007":
            # rest-frame M_r of the BCG from its z-band luminosity and a passive r - z
            abs_r = mag_z[0] - dm + RED_SEQUENCE[0, 2]
            log_re = (
                cfg.bcg_log_re_pivot
                + cfg.bcg_log_re_per_mag * (abs_r + 23.5)
                + cfg.bcg_re_scatter_dex * rng.standard_normal()
            )
            r_e[0] = 10.0**log_re / d_a_kpc * _ARCSEC_PER_RAD
        is_blue = np.zeros(n, bool)
        if cfg.has_blue_members:
            frac = np.minimum(
                cfg.blue_fraction_core
                + cfg.blue_fraction_dz * z
                + cfg.blue_fraction_radial * np.minimum(rproj_in / r500, 1.0),
                cfg.blue_fraction_max,
            )
            is_blue = (rng.uniform(0.0, 1.0, n) < frac) & (log_m <= _BLUE_LOG_MSTAR_MAX)
            is_blue[0] = False
            size_dev = rng.standard_normal(n)
            colour_dev = rng.standard_normal((2, n))
            disc_n = rng.uniform(0.6, 1.5, n)
            disc_q = rng.uniform(0.2, 0.95, n)
            b = is_blue
            mag_z[b] = (
                cfg.sun_abs_mag_z - 2.5 * (log_m[b] - math.log10(cfg.blue_mass_to_light_z)) + dm
            )
            gr_b = np.interp(z, BLUE_CLOUD[:, 0], BLUE_CLOUD[:, 1])
            rz_b = np.interp(z, BLUE_CLOUD[:, 0], BLUE_CLOUD[:, 2])
            mag_r[b] = mag_z[b] + rz_b + cfg.blue_colour_scatter * colour_dev[1, b]
            mag_g[b] = mag_r[b] + gr_b + cfg.blue_colour_scatter * colour_dev[0, b]
            # late-type mass-size relation of Shen et al. (2003)
            mass_b = 10.0 ** log_m[b]
            r50_b = 0.1 * mass_b**0.14 * (1.0 + mass_b / 3.98e10) ** 0.25
            r_e[b] = r50_b * 10.0 ** (0.15 * size_dev[b]) / d_a_kpc * _ARCSEC_PER_RAD
            sersic_n[b] = disc_n[b]
            q[b] = disc_q[b]
        table = _Columns(
            {
                "x": x,
                "y": y,
                "stellar_mass": 10.0**log_m,
                "q": q,
                "phi": phi,
                "r_e": r_e,
                "n": sersic_n,
                "mag_g": mag_g,
                "mag_r": mag_r,
                "mag_z": mag_z,
                "is_bcg": is_bcg,
                "is_blue": is_blue,
                "z": np.full(n, z),
            },
            units={
                "x": "arcsec",
                "y": "arcsec",
                "stellar_mass": "solMass",
                "phi": "deg",
                "r_e": "arcsec",
                "mag_g": "mag",
                "mag_r": "mag",
                "mag_z": "mag",
            },
        )
        table.meta.update(
            {"redshift": z, "m500": self.m500, "r500_arcsec": r500, "richness": self.richness}
        )
        return table

    def _draw_field_galaxies(self, rng, half_width) -> _Columns:
        cfg = self.config
        area = (2.0 * half_width / 60.0) ** 2  # arcmin^2
        lo, hi = cfg.field_mag_range
        a = cfg.field_count_slope * math.log(10.0)
        expected = (
            cfg.field_density_r24 * area * (math.exp(a * (hi - 24.0)) - math.exp(a * (lo - 24.0)))
        )
        n = rng.poisson(expected)
        # inverse CDF of dN/dm ~ exp(a m) on [lo, hi]
        uu = rng.uniform(0.0, 1.0, n)
        mag_r = np.log(np.exp(a * lo) + uu * (np.exp(a * hi) - np.exp(a * lo))) / a
        g_r = rng.uniform(0.2, 1.6, n)
        r_z = rng.uniform(0.1, 1.2, n)
        r_e = np.clip(0.6 * 10.0 ** (-0.1 * (mag_r - 22.0) + 0.2 * rng.standard_normal(n)), 0.1, 3)
        return _Columns(
            {
                "x": rng.uniform(-half_width, half_width, n),
                "y": rng.uniform(-half_width, half_width, n),
                "q": rng.uniform(0.25, 1.0, n),
                "phi": rng.uniform(-90.0, 90.0, n),
                "r_e": r_e,
                "n": rng.uniform(0.6, 3.0, n),
                "mag_g": mag_r + g_r,
                "mag_r": mag_r,
                "mag_z": mag_r - r_z,
                "is_bcg": np.zeros(n, bool),
            },
            units={"x": "arcsec", "y": "arcsec", "phi": "deg", "r_e": "arcsec"},
        )

    def _draw_stars(self, rng, half_width) -> _Columns:
        cfg = self.config
        area = (2.0 * half_width / 60.0) ** 2
        n = rng.poisson(cfg.star_density * area)
        mag_r = rng.uniform(*cfg.star_mag_range, n)
        g_r = rng.uniform(0.3, 1.5, n)
        return _Columns(
            {
                "x": rng.uniform(-half_width, half_width, n),
                "y": rng.uniform(-half_width, half_width, n),
                "mag_g": mag_r + g_r,
                "mag_r": mag_r,
                "mag_z": mag_r - (0.5 * g_r + rng.uniform(-0.1, 0.2, n)),
            },
            units={"x": "arcsec", "y": "arcsec"},
        )

    # --- painting -------------------------------------------------------------------------
    def _pixel_coords(self, x, y):
        c = (self.size - 1) / 2.0
        scale = self.conditions.pixel_scale
        return x / scale + c, y / scale + c

    def _paint_sersics(self, image, table):
        """Paint every galaxy of ``table`` (the BCG over the whole cutout) in one kernel call."""
        if _n_rows(table) == 0:
            return
        scale = self.conditions.pixel_scale

        def column(name):
            return np.asarray(table[name], dtype=np.float64)

        col, line = self._pixel_coords(column("x"), column("y"))
        r_e = np.maximum(column("r_e") / scale, 0.05)
        n, q = column("n"), column("q")
        b = gammaincinv(2.0 * n, 0.5)
        log_i0 = 2.0 * n * np.log(b) - np.log(2.0 * math.pi * n * r_e**2) - gammaln(2 * n)
        # stamps out to 10 r_e along the major axis (n = 4 keeps ~96% of its light there; the
        # BCG is painted over the whole cutout)
        half = np.minimum(self.size, 10.0 * r_e / np.sqrt(q) + 4.0)
        half[np.asarray(table["is_bcg"], dtype=bool)] = self.size
        fluxes = mag_to_nanomaggies(np.vstack([column("mag_g"), column("mag_r"), column("mag_z")]))
        add_sersic_stamps(
            image, fluxes.reshape(3, -1), col, line, r_e, n, q, np.radians(column("phi")), b,
            log_i0, half, 5,
        )  # fmt: skip

    def _paint_stars(self, image, stars):
        # point sources split bilinearly over the four nearest pixels (the PSF comes after)
        if _n_rows(stars) == 0:
            return
        col, line = self._pixel_coords(np.asarray(stars["x"]), np.asarray(stars["y"]))
        fluxes = mag_to_nanomaggies(
            np.vstack([stars["mag_g"], stars["mag_r"], stars["mag_z"]]).astype(float)
        ).reshape(3, -1)
        j0 = np.floor(col).astype(int)
        i0 = np.floor(line).astype(int)
        fx, fy = col - j0, line - i0
        for di, dj, w in (
            (0, 0, (1 - fy) * (1 - fx)),
            (0, 1, (1 - fy) * fx),
            (1, 0, fy * (1 - fx)),
            (1, 1, fy * fx),
        ):
            ii, jj = i0 + di, j0 + dj
            ok = (ii >= 0) & (ii < self.size) & (jj >= 0) & (jj < self.size)
            for band in range(3):
                np.add.at(image[band], (ii[ok], jj[ok]), fluxes[band][ok] * w[ok])
