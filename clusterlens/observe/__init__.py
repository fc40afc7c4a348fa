"""Observing a simulated arc: photometric units, PSF, noise at the survey depth, injection.

Images are float32 arrays shaped (band, y, x) in the bands g, r, z, in nanomaggies (AB zero
point 22.5), at the Legacy Surveys' 0.262 arcsec per pixel unless stated otherwise.
"""

from clusterlens.observe.inject import ObservedArc, inject, observe_arc
from clusterlens.observe.noise import SurveyConditions, add_arc_noise, arc_snr
from clusterlens.observe.photometry import ZERO_POINT, mag_to_nanomaggies, nanomaggies_to_mag
from clusterlens.observe.psf import (
    FWHM_TO_SIGMA,
    LEGACY_SURVEYS_FWHM,
    GaussianPSF,
    PixelPSF,
    convolve,
    legacy_surveys_psfs,
)

__all__ = [
    "ZERO_POINT",
    "mag_to_nanomaggies",
    "nanomaggies_to_mag",
    "GaussianPSF",
    "PixelPSF",
    "LEGACY_SURVEYS_FWHM",
    "FWHM_TO_SIGMA",
    "legacy_surveys_psfs",
    "convolve",
    "SurveyConditions",
    "add_arc_noise",
    "arc_snr",
    "ObservedArc",
    "observe_arc",
    "inject",
]
