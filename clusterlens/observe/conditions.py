"""Per-field observing conditions: the survey distributions they are drawn from.

A real survey does not observe every field alike: the seeing (PSF FWHM) and the depth vary
from field to field and between the Legacy Surveys' two halves, DECaLS (DECam on the Blanco,
Dec < ~32 deg) and BASS + MzLS (Bok and Mayall, the north).  :class:`ConditionsDistribution`
is the ``[observation]`` table of the mock configuration: it draws one
:class:`~clusterlens.observe.SurveyConditions` per field.

The figures (:data:`SURVEYS`; ``docs/observe.md`` gives them with their sources):

- FWHM [arcsec], log-normal around a median with ``sigma_ln = 0.15`` (about +-0.2"),
  truncated to a range, correlated between the bands of one field (coefficient
  ``band_correlation``):

  - DECaLS g, r, z: medians 1.45, 1.35, 1.20 (unconfirmed: the Legacy Surveys' catalogs
    give ``psfsize_g/r/z`` per object; one published DR10-south sample of lens candidates
    has a median ``psfsize_z`` of 1.19"), range 0.8-2.2;
  - BASS g, r and MzLS z: 1.60, 1.42, 1.04, the median single-epoch seeing of the BASS DR2
    table (Zou et al. 2018, batc.bao.ac.cn/BASS DR2 page), range 0.8-2.3.

- depth: 5-sigma AB magnitude of the 0.45" round exponential galaxy (the Legacy Surveys'
  ``galdepth``), normal around a median, truncated at +-3 sigma:

  - DECaLS: 24.2, 23.6, 22.8 with sigma 0.25 mag (unconfirmed: between the DESI targets
    24.0, 23.4, 22.5, which DR9 meets over most of its area, and ~0.4 mag deeper);
  - BASS + MzLS: 24.05, 23.4, 22.7 with sigma 0.2 mag: BASS DR3's median point-source
    depths 24.2, 23.6, 23.0 (Zou et al. 2019, 20-80% spread < 0.3 mag) made galaxy depths
    with the ``N_eff`` ratio of the 0.45" galaxy and a point source at the median seeing
    (-0.15, -0.18, -0.28 mag; derived here).

- sky [AB mag / arcsec^2]: DECaLS 22.04, 20.91, 18.46 (typical dark CTIO sky, +-0.3);
  BASS/MzLS 22.09, 21.27, 18.96 (BASS DR2 table).  It only sets the arcs' shot noise.
- Moffat ``beta`` uniform in ``moffat_beta_range`` (default 2.5-4.5; survey PSFs with their
  wings are close to ``beta ~ 3``, pure Kolmogorov seeing to 4.77: unconfirmed for DR9).

Fields are BASS/MzLS with probability ``north_fraction`` (0.3: BASS covers 5,400 deg^2 of the
~14,000-20,000 deg^2 DR9 footprint; DES-depth areas of DECaLS are not modelled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from clusterlens._validation import as_value, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.observe.noise import _FIELD_UNITS, _PSF_MODELS, SurveyConditions, _triple
from clusterlens.observe.psf import LEGACY_SURVEYS_FWHM

__all__ = ["SurveyModel", "SURVEYS", "ConditionsDistribution"]


class SurveyModel(NamedTuple):
    """The per-field distribution of one survey's conditions (bands g, r, z)."""

    fwhm_median: tuple[float, float, float]
    """Median PSF FWHM [arcsec]."""
    fwhm_sigma_ln: float
    """Log-normal scatter of the FWHM."""
    fwhm_range: tuple[float, float]
    """Truncation of the FWHM [arcsec]."""
    depth_median: tuple[float, float, float]
    """Median 5-sigma galaxy depth [AB mag]."""
    depth_sigma: float
    """Normal scatter of the depth [mag], truncated at 3 sigma."""
    sky_mag: tuple[float, float, float]
    """Sky surface brightness [AB mag / arcsec^2]."""


#: The survey models (figures and sources: the module docstring and docs/observe.md).
SURVEYS: dict[str, SurveyModel] = {
    "decals": SurveyModel(
        (1.45, 1.35, 1.20), 0.15, (0.8, 2.2), (24.2, 23.6, 22.8), 0.25, (22.04, 20.91, 18.46)
    ),
    "bass_mzls": SurveyModel(
        (1.60, 1.42, 1.04), 0.15, (0.8, 2.3), (24.05, 23.4, 22.7), 0.2, (22.09, 21.27, 18.96)
    ),
}

_SURVEY_CHOICES = ("mixed", "decals", "bass_mzls", "fixed")
_FIXED_DEFAULTS = {
    "psf_fwhm": LEGACY_SURVEYS_FWHM,
    "depth": (24.0, 23.4, 22.5),
    "sky_mag": (22.04, 20.91, 18.46),
}
_DEPTH_CLIP = 3.0


#: Narrowest FWHM [arcsec] a negative ``seeing_offset`` can give.
_MIN_FWHM = 0.3


@dataclass(frozen=True)
class ConditionsDistribution:
    """Where each field's observing conditions come from (the ``[observation]`` table).

    Parameters
    ----------
    pixel_scale : float
        Pixel size [arcsec] of every field (0.262, the Legacy Surveys).
    survey : {"mixed", "decals", "bass_mzls", "fixed"}
        ``mixed``: each field is DECaLS or, with probability ``north_fraction``, BASS/MzLS;
        ``decals`` / ``bass_mzls``: that survey's distribution (:data:`SURVEYS`); ``fixed``:
        every field has ``psf_fwhm``, ``depth`` and ``sky_mag`` (the paper's single PSF and
        uniform depth).
    north_fraction : float
        Fraction of BASS/MzLS fields for ``survey = "mixed"``, in [0, 1].
    psf_model : {"moffat", "gaussian"}
        Profile of every field's PSFs.
    moffat_beta_range : (float, float)
        Moffat ``beta`` per field, uniform in this range (low == high: fixed), > 1.
    band_correlation : float
        Correlation in [0, 1] of the log-FWHM deviations of one field's three bands.
    psf_fwhm, depth, sky_mag : (float, float, float), optional
        Only with ``survey = "fixed"``: FWHM [arcsec], 5-sigma galaxy depth [AB] and sky
        [AB mag / arcsec^2] per band; defaults 1.3, 1.2, 1.1 / 24.0, 23.4, 22.5 / 22.04,
        20.91, 18.46.
    reference_r_e : float
        Half-light radius [arcsec] of the exponential galaxy the depths refer to.
    seeing_offset : float
        [arcsec] added to every field's FWHM in every band (0: the survey's own seeing; e.g.
        0.4 for a test set under worse seeing than the training set). FWHMs stay >= 0.3".
    depth_offset : float
        [mag] added to every field's depth (negative: shallower).
    """

    pixel_scale: float = 0.262
    survey: str = "mixed"
    north_fraction: float = 0.3
    psf_model: str = "moffat"
    moffat_beta_range: tuple[float, float] = (2.5, 4.5)
    band_correlation: float = 0.5
    psf_fwhm: tuple[float, float, float] | None = None
    depth: tuple[float, float, float] | None = None
    sky_mag: tuple[float, float, float] | None = None
    reference_r_e: float = 0.45
    seeing_offset: float = 0.0
    depth_offset: float = 0.0

    def __post_init__(self):
        o, s = "ConditionsDistribution", object.__setattr__
        units = {**_FIELD_UNITS, "seeing_offset": "arcsec", "depth_offset": "mag"}
        for key, unit in units.items():
            s(self, key, as_value(getattr(self, key), unit, key, o))
        s(
            self,
            "pixel_scale",
            check_scalar(self.pixel_scale, "pixel_scale", o, low=0, low_inclusive=False),
        )
        if self.survey not in _SURVEY_CHOICES:
            raise ParameterError(
                f"The 'survey' parameter of {o} must be one of {_SURVEY_CHOICES}. "
                f"Got {self.survey!r} instead."
            )
        if self.psf_model not in _PSF_MODELS:
            raise ParameterError(
                f"The 'psf_model' parameter of {o} must be one of {_PSF_MODELS}. "
                f"Got {self.psf_model!r} instead."
            )
        s(
            self,
            "north_fraction",
            check_scalar(self.north_fraction, "north_fraction", o, low=0.0, high=1.0),
        )
        s(
            self,
            "band_correlation",
            check_scalar(self.band_correlation, "band_correlation", o, low=0.0, high=1.0),
        )
        try:
            lo, hi = self.moffat_beta_range
        except (TypeError, ValueError):
            raise ParameterError(
                f"The 'moffat_beta_range' parameter of {o} must be a (low, high) pair. "
                f"Got {self.moffat_beta_range!r}."
            ) from None
        lo = check_scalar(lo, "moffat_beta_range[0]", o, low=1.0, high=100, low_inclusive=False)
        hi = check_scalar(hi, "moffat_beta_range[1]", o, low=1.0, high=100, low_inclusive=False)
        if hi < lo:
            raise ParameterError(
                f"The 'moffat_beta_range' parameter of {o} must have low <= high. "
                f"Got {self.moffat_beta_range!r}."
            )
        s(self, "moffat_beta_range", (lo, hi))
        for name, bounds in (
            ("psf_fwhm", {"low": 0.0, "low_inclusive": False, "high": 10.0}),
            ("depth", {"low": 10.0, "high": 35.0}),
            ("sky_mag", {"low": 10.0, "high": 35.0}),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            if self.survey != "fixed":
                raise ParameterError(
                    f"The {name!r} parameter of {o} applies to survey = 'fixed' only (the "
                    f"{self.survey!r} conditions are drawn from docs/observe.md's "
                    f"distributions). Got {value!r} with survey = {self.survey!r}."
                )
            s(self, name, _triple(value, name, o, **bounds))
        s(
            self,
            "reference_r_e",
            check_scalar(self.reference_r_e, "reference_r_e", o, low=0, low_inclusive=False),
        )
        s(
            self,
            "seeing_offset",
            check_scalar(self.seeing_offset, "seeing_offset", o, low=-1.0, high=5.0),
        )
        s(self, "depth_offset", check_scalar(self.depth_offset, "depth_offset", o, low=-5, high=5))

    # ---------------------------------------------------------------------------------------
    def _fixed(self, name):
        value = getattr(self, name)
        return _FIXED_DEFAULTS[name] if value is None else value

    def _surveys(self) -> tuple[str, ...]:
        if self.survey == "fixed":
            return ()
        if self.survey != "mixed":
            return (self.survey,)
        names = ("decals",) if self.north_fraction < 1 else ()
        return names + (("bass_mzls",) if self.north_fraction > 0 else ())

    @property
    def max_fwhm(self) -> float:
        """The widest FWHM [arcsec] any field can get (sets the simulator's PSF margin)."""
        if self.survey == "fixed":
            widest = float(max(self._fixed("psf_fwhm")))
        else:
            widest = float(max(SURVEYS[k].fwhm_range[1] for k in self._surveys()))
        return max(widest + self.seeing_offset, _MIN_FWHM)

    def _conditions(self, fwhm, depth, sky, beta) -> SurveyConditions:
        if self.psf_model == "gaussian":  # beta means nothing then: keep the default
            beta = SurveyConditions.psf_beta
        return SurveyConditions(
            pixel_scale=self.pixel_scale,
            psf_fwhm=tuple(max(float(f) + self.seeing_offset, _MIN_FWHM) for f in fwhm),
            depth=tuple(float(d) + self.depth_offset for d in depth),
            sky_mag=tuple(float(m) for m in sky),
            reference_r_e=self.reference_r_e,
            psf_model=self.psf_model,
            psf_beta=float(beta),
        )

    @property
    def nominal(self) -> SurveyConditions:
        """The median conditions: ``fixed``'s values, else the (first) survey's medians
        (DECaLS for ``mixed``) with the middle of ``moffat_beta_range``.  Scenes without
        conditions of their own are observed with these."""
        beta = 0.5 * sum(self.moffat_beta_range)
        if self.survey == "fixed":
            return self._conditions(
                self._fixed("psf_fwhm"), self._fixed("depth"), self._fixed("sky_mag"), beta
            )
        m = SURVEYS[self._surveys()[0]]
        return self._conditions(m.fwhm_median, m.depth_median, m.sky_mag, beta)

    def survey_median(self, survey: str) -> SurveyConditions:
        """The median conditions of ``survey`` (``"decals"`` or ``"bass_mzls"``)."""
        if survey not in SURVEYS:
            raise ParameterError(
                f"The 'survey' parameter of ConditionsDistribution.survey_median must be one "
                f"of {sorted(SURVEYS)}. Got {survey!r} instead."
            )
        m = SURVEYS[survey]
        return self._conditions(
            m.fwhm_median, m.depth_median, m.sky_mag, 0.5 * sum(self.moffat_beta_range)
        )

    def draw(self, rng) -> SurveyConditions:
        """One field's conditions.

        Parameters
        ----------
        rng : numpy.random.Generator or int

        Returns
        -------
        SurveyConditions
        """
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        lo, hi = self.moffat_beta_range
        # Gaussian PSFs draw no beta, so that fixed Gaussian conditions draw nothing at all
        beta = float(rng.uniform(lo, hi)) if hi > lo and self.psf_model == "moffat" else lo
        if self.survey == "fixed":
            return self._conditions(
                self._fixed("psf_fwhm"), self._fixed("depth"), self._fixed("sky_mag"), beta
            )
        if self.survey == "mixed":
            name = "bass_mzls" if rng.uniform() < self.north_fraction else "decals"
        else:
            name = self.survey
        m = SURVEYS[name]
        rho = self.band_correlation
        f_lo, f_hi = m.fwhm_range
        shared = rng.standard_normal()
        fwhm = np.empty(3)
        depth = np.empty(3)
        for band in range(3):
            # truncation by redrawing the band's own deviation (a value still outside the
            # range after 100 tries, which needs an extreme shared draw, is clipped)
            for _ in range(100):
                z = math.sqrt(rho) * shared + math.sqrt(1.0 - rho) * rng.standard_normal()
                f = m.fwhm_median[band] * math.exp(m.fwhm_sigma_ln * z)
                if f_lo <= f <= f_hi:
                    break
            fwhm[band] = min(max(f, f_lo), f_hi)
        for band in range(3):
            dev = rng.standard_normal()
            while abs(dev) > _DEPTH_CLIP:
                dev = rng.standard_normal()
            depth[band] = m.depth_median[band] + m.depth_sigma * dev
        return self._conditions(fwhm, depth, m.sky_mag, beta)
