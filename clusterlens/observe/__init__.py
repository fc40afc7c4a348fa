"""Observing a simulated arc: photometric units, PSF, noise at the survey depth, injection,
the per-field conditions of a survey and their measurement on real cutouts.

Images are float32 arrays shaped (band, y, x) in the bands g, r, z, in nanomaggies (AB zero
point 22.5), at the Legacy Surveys' 0.262 arcsec per pixel unless stated otherwise.
"""

from clusterlens.observe.conditions import SURVEYS, ConditionsDistribution, SurveyModel
from clusterlens.observe.inject import ObservedArc, inject, observe_arc
from clusterlens.observe.measure import (
    PSFSIZE_COLUMNS,
    PSFMeasurement,
    measure_conditions,
    measure_psf,
    measure_sky_sigma,
    psf_fwhm_from_catalog,
)
from clusterlens.observe.noise import SurveyConditions, add_arc_noise, arc_snr
from clusterlens.observe.photometry import ZERO_POINT, mag_to_nanomaggies, nanomaggies_to_mag
from clusterlens.observe.psf import (
    FWHM_TO_SIGMA,
    LEGACY_SURVEYS_FWHM,
    GaussianPSF,
    MoffatPSF,
    PixelPSF,
    convolve,
    legacy_surveys_psfs,
)

__all__ = [
    "ZERO_POINT",
    "mag_to_nanomaggies",
    "nanomaggies_to_mag",
    "GaussianPSF",
    "MoffatPSF",
    "PixelPSF",
    "LEGACY_SURVEYS_FWHM",
    "FWHM_TO_SIGMA",
    "legacy_surveys_psfs",
    "convolve",
    "SurveyConditions",
    "add_arc_noise",
    "arc_snr",
    "ConditionsDistribution",
    "SurveyModel",
    "SURVEYS",
    "PSFMeasurement",
    "PSFSIZE_COLUMNS",
    "measure_sky_sigma",
    "measure_psf",
    "psf_fwhm_from_catalog",
    "measure_conditions",
    "ObservedArc",
    "observe_arc",
    "inject",
]
