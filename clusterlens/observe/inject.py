"""Observe a noiseless arc (PSF, shot noise) and add it to a cluster cutout."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from clusterlens._validation import check_array
from clusterlens.errors import ParameterError
from clusterlens.observe.noise import SurveyConditions, _check_conditions, add_arc_noise
from clusterlens.observe.psf import convolve

__all__ = ["ObservedArc", "observe_arc", "inject"]


class ObservedArc(NamedTuple):
    """An arc as the survey would record it."""

    image: np.ndarray
    """float32 ``(3, ny, nx)``: PSF-convolved arc plus its Poisson noise [nanomaggies]."""
    noiseless: np.ndarray
    """float64 ``(3, ny, nx)``: the PSF-convolved arc without noise [nanomaggies]."""


def observe_arc(
    arc, conditions: SurveyConditions, rng, *, psfs=None, noise: bool = True
) -> ObservedArc:
    """Convolve a noiseless arc with the PSF of each band and add its Poisson noise.

    Parameters
    ----------
    arc : array_like, shape ``(3, ny, nx)``
        Noiseless lensed source [nanomaggies per pixel] (e.g. from
        :func:`clusterlens.sources.render_sersic_adaptive`).
    conditions : SurveyConditions
        Pixel scale, PSF FWHM and depth (:class:`SurveyConditions()` is DECaLS).
    rng : numpy.random.Generator or int
    psfs : PSF or sequence of 3 PSFs, optional
        Overrides the Gaussian PSFs of ``conditions`` (e.g. :class:`PixelPSF` images).
    noise : bool
        Add the arc's shot noise (see :func:`add_arc_noise`).

    Returns
    -------
    ObservedArc
    """
    _check_conditions(conditions, "observe_arc")
    psfs = conditions.psfs if psfs is None else psfs
    smooth = convolve(arc, psfs, pixel_scale=conditions.pixel_scale)
    if smooth.shape[0] != 3:
        raise ParameterError(
            f"The 'arc' parameter of observe_arc must have 3 bands (g, r, z). "
            f"Got shape {smooth.shape} instead."
        )
    image = add_arc_noise(smooth, conditions, rng) if noise else smooth
    return ObservedArc(image.astype(np.float32), smooth)


def inject(cutout, arc, *, n_bands: int = 3) -> np.ndarray:
    """Add an observed arc to a cluster cutout; the cluster's light and noise stay.

    Parameters
    ----------
    cutout : array_like, shape ``(band, ny, nx)``
        Survey cutout [nanomaggies], bands g, r, z in that order.  NaN pixels (masked data)
        stay NaN.
    arc : array_like, same shape
        The observed arc [nanomaggies] (:attr:`ObservedArc.image`); must be finite.
    n_bands : int
        Expected number of bands.

    Returns
    -------
    ndarray, float32, shape ``(band, ny, nx)``
        A new array ``cutout + arc``; the inputs are not modified.
    """
    owner = "inject"
    try:
        cut = np.asarray(cutout)
    except (TypeError, ValueError) as exc:  # pragma: no cover - ragged input
        raise ParameterError(f"The 'cutout' parameter of {owner} must be an array.") from exc
    if cut.dtype.kind not in "fiu":
        raise ParameterError(
            f"The 'cutout' parameter of {owner} must hold numbers (nanomaggies). "
            f"Got dtype {cut.dtype} instead."
        )
    if cut.ndim != 3 or cut.shape[0] != n_bands:
        raise ParameterError(
            f"The 'cutout' parameter of {owner} must be shaped (band, y, x) with {n_bands} "
            f"bands (g, r, z). Got shape {cut.shape} instead."
        )
    art = check_array(arc, "arc", owner, ndim=3)
    if art.shape != cut.shape:
        raise ParameterError(
            f"The 'arc' parameter of {owner} must have the cutout's shape {cut.shape} "
            f"(band, y, x). Got {art.shape} instead."
        )
    return cut.astype(np.float32) + art.astype(np.float32)
