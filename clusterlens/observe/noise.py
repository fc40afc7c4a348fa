"""Survey depth, sky noise and the Poisson noise of an added arc.

The Legacy Surveys quote their depth as the 5-sigma detection limit of a round exponential
galaxy with half-light radius 0.45 arcsec (an ELG; ``galdepth``).  For background-limited
images with per-pixel noise ``sigma`` and the galaxy's PSF-convolved profile ``p_i`` (per
pixel, sum 1), the optimally weighted S/N of a flux ``F`` is ``F / (sigma sqrt(N_eff))`` with
``N_eff = 1 / sum p_i^2``; setting it to 5 at the depth's flux gives

    sigma = F_5 / (5 sqrt(N_eff)),   F_5 = 10^(0.4 (22.5 - m_5)) nanomaggies.

The arc adds its own shot noise.  With a sky of ``S`` nanomaggies per pixel (from the sky
surface brightness) the images behave as photon counts ``N = g f`` with an effective gain
(exposure) ``g = S / sigma^2`` counts per nanomaggy, so an arc of ``f`` nanomaggies gets
Poisson noise of variance ``f / g``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from clusterlens._validation import check_array, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.observe.photometry import mag_to_nanomaggies
from clusterlens.observe.psf import LEGACY_SURVEYS_FWHM, GaussianPSF, convolve

__all__ = ["SurveyConditions", "add_arc_noise", "arc_snr"]


def _triple(value, name, owner, **bounds):
    arr = check_array(value, name, owner, ndim=1, **bounds)
    if arr.size != 3:
        raise ParameterError(
            f"The {name!r} parameter of {owner} must hold 3 values (bands g, r, z). "
            f"Got {arr.size} instead."
        )
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class SurveyConditions:
    """Observing conditions of a survey in g, r, z; the defaults are DECaLS (DESI LS).

    Parameters
    ----------
    pixel_scale : float
        Pixel size [arcsec]; 0.262 for the Legacy Surveys.
    psf_fwhm : (float, float, float)
        Gaussian PSF FWHM [arcsec] per band (typical DECaLS seeing, uncertain by ~0.2").
    depth : (float, float, float)
        5-sigma AB depth for the reference galaxy: the DESI targets 24.0, 23.4, 22.5.
    sky_mag : (float, float, float)
        Sky surface brightness [AB mag / arcsec^2]: typical dark CTIO sky, 22.04, 20.91,
        18.46 (approximate, +-0.3 mag).  It only sets the split between sky noise and the
        shot noise of bright arcs (the gain); the sky noise itself follows from ``depth``.
    reference_r_e : float
        Half-light radius [arcsec] of the round exponential galaxy the depth refers to.
    """

    pixel_scale: float = 0.262
    psf_fwhm: tuple[float, float, float] = LEGACY_SURVEYS_FWHM
    depth: tuple[float, float, float] = (24.0, 23.4, 22.5)
    sky_mag: tuple[float, float, float] = (22.04, 20.91, 18.46)
    reference_r_e: float = 0.45

    def __post_init__(self):
        owner = "SurveyConditions"
        s = object.__setattr__
        s(
            self,
            "pixel_scale",
            check_scalar(self.pixel_scale, "pixel_scale", owner, low=0, low_inclusive=False),
        )
        s(self, "psf_fwhm", _triple(self.psf_fwhm, "psf_fwhm", owner, low=0, low_inclusive=False))
        s(self, "depth", _triple(self.depth, "depth", owner, low=10.0, high=35.0))
        s(self, "sky_mag", _triple(self.sky_mag, "sky_mag", owner, low=10.0, high=35.0))
        s(
            self,
            "reference_r_e",
            check_scalar(self.reference_r_e, "reference_r_e", owner, low=0, low_inclusive=False),
        )

    @property
    def psfs(self) -> tuple[GaussianPSF, GaussianPSF, GaussianPSF]:
        """Gaussian PSFs with ``psf_fwhm``."""
        return tuple(GaussianPSF(f) for f in self.psf_fwhm)

    @cached_property
    def n_eff(self) -> np.ndarray:
        """Effective number of pixels ``1 / sum p^2`` of the reference galaxy, per band."""
        from clusterlens.sources.sersic import Sersic, render_sersic_adaptive

        size = 2 * int(np.ceil(4.0 * max(self.psf_fwhm) / self.pixel_scale)) + 31
        galaxy = Sersic(r_e=self.reference_r_e, n=1.0)
        img = render_sersic_adaptive(
            galaxy, None, shape=(size, size), pixel_scale=self.pixel_scale, rtol=1e-6
        )
        prof = convolve(img, self.psfs, pixel_scale=self.pixel_scale)
        prof /= prof.sum(axis=(1, 2), keepdims=True)
        return 1.0 / (prof**2).sum(axis=(1, 2))

    @cached_property
    def sky_sigma(self) -> np.ndarray:
        """Sky noise per pixel [nanomaggies], per band, implied by ``depth``."""
        f5 = mag_to_nanomaggies(np.asarray(self.depth))
        return f5 / (5.0 * np.sqrt(self.n_eff))

    @cached_property
    def sky_level(self) -> np.ndarray:
        """Sky per pixel [nanomaggies], per band, from ``sky_mag``."""
        return mag_to_nanomaggies(np.asarray(self.sky_mag)) * self.pixel_scale**2

    @cached_property
    def gain(self) -> np.ndarray:
        """Effective gain (exposure) [counts per nanomaggy], per band: ``sky / sigma^2``."""
        return self.sky_level / self.sky_sigma**2


def _check_image(arc, owner, name="arc"):
    img = check_array(arc, name, owner, ndim=3)
    if img.shape[0] != 3:
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be shaped (band, y, x) with 3 bands "
            f"(g, r, z). Got shape {img.shape} instead."
        )
    return img


def _check_conditions(conditions, owner):
    if not isinstance(conditions, SurveyConditions):
        raise ParameterError(
            f"The 'conditions' parameter of {owner} must be a SurveyConditions. "
            f"Got {type(conditions).__name__} instead."
        )


def add_arc_noise(arc, conditions: SurveyConditions, rng) -> np.ndarray:
    """Poisson (shot) noise of an arc [nanomaggies] added on top of a cutout.

    Each pixel becomes ``Poisson(g f) / g`` with the band's gain ``g``
    (:attr:`SurveyConditions.gain`); negative values (FFT ringing) count as zero flux.  The
    cutout's sky noise is already in the data and is not added again.

    Parameters
    ----------
    arc : array_like, shape ``(3, ny, nx)``
        Noiseless, PSF-convolved arc [nanomaggies per pixel].
    conditions : SurveyConditions
    rng : numpy.random.Generator or int

    Returns
    -------
    ndarray, float64, shape ``(3, ny, nx)``
        The noisy arc; its variance is ``f / g``.
    """
    owner = "add_arc_noise"
    img = _check_image(arc, owner)
    _check_conditions(conditions, owner)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    gain = conditions.gain[:, None, None]
    return rng.poisson(np.clip(img, 0.0, None) * gain) / gain


def arc_snr(arc, conditions: SurveyConditions, *, combine: bool = False) -> np.ndarray | float:
    """Matched-filter signal-to-noise of a noiseless, PSF-convolved arc.

    ``S/N_b = sqrt(sum_i f_i^2 / (sigma_b^2 + f_i / g_b))`` over pixels, per band ``b``:
    the best S/N any detection of this exact arc could reach on the survey's sky
    (``sigma_b``: :attr:`SurveyConditions.sky_sigma`) plus its own shot noise.

    Parameters
    ----------
    arc : array_like, shape ``(3, ny, nx)``
        Nanomaggies per pixel.
    conditions : SurveyConditions
    combine : bool
        Return the S/N of the three bands combined in quadrature instead.

    Returns
    -------
    ndarray of 3 floats, or float if ``combine``
    """
    owner = "arc_snr"
    img = np.clip(_check_image(arc, owner), 0.0, None)
    _check_conditions(conditions, owner)
    var = conditions.sky_sigma[:, None, None] ** 2 + img / conditions.gain[:, None, None]
    snr = np.sqrt((img**2 / var).sum(axis=(1, 2)))
    return float(np.sqrt((snr**2).sum())) if combine else snr
