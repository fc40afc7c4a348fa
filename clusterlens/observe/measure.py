"""Observing conditions of a real cutout: its noise, and its PSF from the catalog or its stars.

An arc injected into a survey cutout must look as if that survey had observed it there: the
same PSF per band and the arc's shot noise on top of the cutout's own noise.
:func:`measure_conditions` assembles a :class:`~clusterlens.observe.SurveyConditions` for one
cutout:

- PSF FWHM per band from the catalog's ``psfsize_g/r/z`` columns (Legacy Surveys catalogs:
  the inverse-variance-weighted PSF FWHM [arcsec] at the object) when present and valid;
  otherwise from the cutout's stars (:func:`measure_psf`: isolated, unsaturated point
  sources fitted with a pixel-integrated Moffat profile); otherwise the survey median, with
  a warning and ``"fallback"`` in the returned record;
- the per-pixel sky noise from the cutout itself (:func:`measure_sky_sigma`: sigma-clipped
  MAD of the pixels left after masking sources), turned into the depth that implies it
  (:meth:`SurveyConditions.from_sky_sigma`), so that :func:`~clusterlens.observe.arc_snr` and
  :func:`~clusterlens.observe.add_arc_noise` see the cutout's real noise.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from clusterlens._validation import check_int, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.observe._starfit import _fit_star
from clusterlens.observe.noise import _PSF_MODELS, SurveyConditions

__all__ = [
    "PSFMeasurement",
    "measure_sky_sigma",
    "measure_psf",
    "psf_fwhm_from_catalog",
    "measure_conditions",
    "PSFSIZE_COLUMNS",
]

#: Catalog columns of the PSF FWHM [arcsec] per band (Legacy Surveys Tractor catalogs).
PSFSIZE_COLUMNS = ("psfsize_g", "psfsize_r", "psfsize_z")


def _bands(image, owner):
    try:
        img = np.asarray(image, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"The 'image' parameter of {owner} must be a numeric array.") from None
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3 or min(img.shape[1:]) < 16:
        raise ParameterError(
            f"The 'image' parameter of {owner} must be shaped (band, y, x) (or (y, x)) with "
            f"sides of at least 16 pixels. Got shape {img.shape} instead."
        )
    return img


def measure_sky_sigma(image, *, nsigma: float = 3.0, dilate: int = 3) -> np.ndarray:
    """Per-pixel sky noise [image units] of each band of a cutout, robust to its sources.

    Per band: a first sigma-clipped MAD estimate, a source mask of the pixels more than
    5 sigma of the 3 x 3-smoothed image above the median (grown by ``dilate``
    pixels, to drop the faint wings), then the sigma-clipped (``nsigma``) MAD standard
    deviation of the remaining finite pixels (``astropy.stats.sigma_clip``, ``mad_std``).  NaN
    pixels (masked data) are ignored.

    Parameters
    ----------
    image : array_like, shape ``(band, ny, nx)`` or ``(ny, nx)``
    nsigma : float
        Clipping and masking threshold [sigma].
    dilate : int
        Growth of the source mask [pixels], >= 0.

    Returns
    -------
    ndarray, shape ``(band,)``
        NaN for a band with fewer than 100 usable pixels.
    """
    owner = "measure_sky_sigma"
    img = _bands(image, owner)
    ns = check_scalar(nsigma, "nsigma", owner, low=1.0, high=20.0)
    dilate = check_int(dilate, "dilate", owner, low=0)
    out = np.full(img.shape[0], np.nan)
    for b, band in enumerate(img):
        finite = np.isfinite(band)
        if finite.sum() < 100:
            continue
        med, sigma0 = _clipped_mad(band[finite], ns)
        if not sigma0 > 0:
            continue
        filled = np.where(finite, band, med)
        # the 3x3 mean has 1/3 of the pixel noise: a source pixel stands out 3x more
        smooth = ndimage.uniform_filter(filled, 3)
        sources = smooth - med > 5.0 * sigma0 / 3.0
        if dilate:
            sources = ndimage.binary_dilation(sources, iterations=int(dilate))
        keep = finite & ~sources
        if keep.sum() < 100:
            keep = finite
        out[b] = _clipped_mad(band[keep], ns)[1]
    return out


def _clipped_mad(values, nsigma):
    """Median and MAD standard deviation after sigma clipping.  The MAD of the kept values,
    not their standard deviation, which the clipping itself biases low (by 1.4% at
    3 sigma)."""
    from astropy.stats import mad_std, sigma_clip

    kept = sigma_clip(values, sigma=nsigma, stdfunc="mad_std", maxiters=5).compressed()
    return float(np.median(kept)), float(mad_std(kept))


class PSFMeasurement(NamedTuple):
    """The PSF measured from a cutout's stars, per band (NaN where no star qualified)."""

    fwhm: np.ndarray
    """FWHM [arcsec], the median over the band's stars."""
    beta: np.ndarray
    """Moffat index, median over the stars (NaN for ``model = "gaussian"``)."""
    n_stars: np.ndarray
    """Stars used per band."""


def measure_psf(
    image,
    *,
    pixel_scale: float = 0.262,
    sky_sigma=None,
    model: str = "moffat",
    threshold: float = 30.0,
    saturation: float | None = None,
    fwhm_range: tuple[float, float] = (0.6, 3.0),
    max_stars: int = 10,
    stamp: int = 21,
) -> PSFMeasurement:
    """The PSF FWHM of each band, from the cutout's isolated, unsaturated point sources.

    Candidates are local maxima (5 x 5) at least ``threshold`` sky sigma above the
    background, ``stamp // 2`` pixels from the edges, with no NaN in their stamp, below
    ``saturation`` and isolated (no other maximum above a tenth of theirs within the
    stamp).  The ``2 max_stars`` most concentrated ones (peak over the flux of the 5 x 5
    pixels around it) are fitted with a pixel-integrated Moffat (free ``beta``) or Gaussian
    plus a constant.  Stars are the most compact objects: fits with a
    FWHM outside ``fwhm_range`` are dropped and, of the rest, those within 15% of the 25th
    percentile FWHM are kept (galaxies are broader); the result is their median.

    Parameters
    ----------
    image : array_like, shape ``(band, ny, nx)`` or ``(ny, nx)``
    pixel_scale : float
        [arcsec].
    sky_sigma : array_like, optional
        Per-band noise; default :func:`measure_sky_sigma`.
    model : {"moffat", "gaussian"}
    threshold : float
        Peak S/N of a candidate [sky sigma per pixel].
    saturation : float, optional
        Peak values at or above this are saturated (image units).
    fwhm_range : (float, float)
        Plausible seeing [arcsec].
    max_stars : int
        Stars kept per band at most.
    stamp : int
        Odd side of the fitted stamps [pixels].

    Returns
    -------
    PSFMeasurement
    """
    owner = "measure_psf"
    img = _bands(image, owner)
    scale = check_scalar(pixel_scale, "pixel_scale", owner, low=0, low_inclusive=False)
    if model not in _PSF_MODELS:
        raise ParameterError(
            f"The 'model' parameter of {owner} must be one of {_PSF_MODELS}. Got {model!r}."
        )
    thr = check_scalar(threshold, "threshold", owner, low=3.0)
    if check_int(stamp, "stamp", owner, low=9) % 2 == 0:
        raise ParameterError(
            f"The 'stamp' parameter of {owner} must be an odd integer >= 9. Got {stamp!r}."
        )
    max_stars = check_int(max_stars, "max_stars", owner, low=1)
    f_lo, f_hi = (check_scalar(v, "fwhm_range", owner, low=0.0) for v in fwhm_range)
    sig = (
        measure_sky_sigma(img) if sky_sigma is None else np.atleast_1d(np.asarray(sky_sigma, float))
    )
    if sig.shape != (img.shape[0],):
        raise ParameterError(
            f"The 'sky_sigma' parameter of {owner} must hold one value per band "
            f"({img.shape[0]}). Got shape {sig.shape}."
        )
    h = stamp // 2
    nb = img.shape[0]
    fwhm, beta, count = np.full(nb, np.nan), np.full(nb, np.nan), np.zeros(nb, int)
    for b, band in enumerate(img):
        if not (np.isfinite(sig[b]) and sig[b] > 0):
            continue
        finite = np.isfinite(band)
        med = float(np.median(band[finite])) if finite.any() else 0.0
        filled = np.where(finite, band, med)
        peaks = (filled == ndimage.maximum_filter(filled, size=5)) & (filled - med > thr * sig[b])
        peaks[:h], peaks[-h:], peaks[:, :h], peaks[:, -h:] = False, False, False, False
        ys, xs = np.nonzero(peaks)
        values = filled[ys, xs] - med
        # most concentrated first (peak over the 5 x 5 flux around it): point sources lead,
        # so the fits are spent on stars rather than on the cluster's bright galaxies
        box = ndimage.uniform_filter(filled - med, 5)[ys, xs] * 25.0
        order = np.argsort(-values / np.maximum(box, 1e-30), kind="stable")
        ys, xs, values = ys[order], xs[order], values[order]
        # isolation: any other maximum above a tenth of this one within the stamp rejects it
        all_max = (filled == ndimage.maximum_filter(filled, size=3)) & (filled - med > 3.0 * sig[b])
        my, mx = np.nonzero(all_max)
        mval = filled[my, mx] - med
        fits = []
        for y, x, v in zip(ys, xs, values, strict=True):
            if len(fits) >= 2 * max_stars:
                break
            if saturation is not None and band[y, x] >= saturation:
                continue
            cut = band[y - h : y + h + 1, x - h : x + h + 1]
            if not np.isfinite(cut).all():
                continue
            near = (np.abs(my - y) <= h) & (np.abs(mx - x) <= h) & ((my != y) | (mx != x))
            if (mval[near] > 0.1 * v).any():
                continue
            f_pix, bet, ok, _ = _fit_star(cut, sig[b], model)
            if ok and f_lo <= f_pix * scale <= f_hi:
                fits.append((f_pix * scale, bet))
        if not fits:
            continue
        f_all = np.array([f for f, _ in fits])
        ref = float(np.percentile(f_all, 25))
        stars = np.abs(f_all / ref - 1.0) <= 0.15
        chosen = np.flatnonzero(stars)[:max_stars]
        fwhm[b] = float(np.median(f_all[chosen]))
        if model == "moffat":
            beta[b] = float(np.median(np.array([bt for _, bt in fits])[chosen]))
        count[b] = chosen.size
    return PSFMeasurement(fwhm, beta, count)


def psf_fwhm_from_catalog(row) -> np.ndarray:
    """``psfsize_g/r/z`` [arcsec] of a catalog row (astropy Row, mapping or table with one
    row; column names matched case-insensitively); NaN for a missing, non-finite or
    non-positive value (the Legacy Surveys write 0 where a band has no data)."""
    names = getattr(row, "colnames", None)
    if names is None:
        names = list(row.keys()) if hasattr(row, "keys") else []
    lower = {str(n).lower(): n for n in names}
    out = np.full(3, np.nan)
    for b, col in enumerate(PSFSIZE_COLUMNS):
        if col in lower:
            try:
                v = float(np.asarray(row[lower[col]]).ravel()[0])
            except (TypeError, ValueError, IndexError):
                continue
            if math.isfinite(v) and v > 0:
                out[b] = v
    return out


def measure_conditions(
    image,
    *,
    row=None,
    distribution=None,
    survey: str = "decals",
    psf_model: str | None = None,
    pixel_scale: float | None = None,
    **psf_kwargs,
) -> tuple[SurveyConditions, dict]:
    """The observing conditions of one real cutout (see the module docstring).

    Parameters
    ----------
    image : array_like, shape ``(3, ny, nx)``
        The cutout [nanomaggies], bands g, r, z.
    row : catalog row, optional
        Read for ``psfsize_g/r/z`` (:func:`psf_fwhm_from_catalog`).
    distribution : ConditionsDistribution, optional
        Supplies the pixel scale, the PSF model, the Moffat ``beta`` when the stars do not
        give one (middle of ``moffat_beta_range``), and the fallback medians (of
        ``survey``); default ``ConditionsDistribution()``.
    survey : {"decals", "bass_mzls"}
        Whose medians fill in a band with neither a catalog value nor stars.
    psf_model : {"moffat", "gaussian"}, optional
        Overrides the distribution's.
    pixel_scale : float, optional
        Overrides the distribution's.
    **psf_kwargs
        Passed to :func:`measure_psf` (``threshold``, ``saturation``...).

    Returns
    -------
    (SurveyConditions, dict)
        The conditions, and a record: ``psf_source`` per band (``"catalog"``, ``"stars"``
        or ``"fallback"``), ``n_stars``, ``sky_sigma`` [nanomaggies], ``noise_source``
        (``"cutout"`` or ``"fallback"``).
    """
    from clusterlens.observe.conditions import ConditionsDistribution

    owner = "measure_conditions"
    dist = ConditionsDistribution() if distribution is None else distribution
    if not isinstance(dist, ConditionsDistribution):
        raise ParameterError(
            f"The 'distribution' parameter of {owner} must be a ConditionsDistribution. "
            f"Got {type(dist).__name__} instead."
        )
    img = _bands(image, owner)
    if img.shape[0] != 3:
        raise ParameterError(
            f"The 'image' parameter of {owner} must have 3 bands (g, r, z). Got {img.shape}."
        )
    model = dist.psf_model if psf_model is None else psf_model
    if model not in _PSF_MODELS:
        raise ParameterError(
            f"The 'psf_model' parameter of {owner} must be one of {_PSF_MODELS}. Got {model!r}."
        )
    scale = dist.pixel_scale if pixel_scale is None else pixel_scale
    fallback = dist.survey_median(survey)
    sigma = measure_sky_sigma(img)
    noise_source = "cutout"
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        bad = ~(np.isfinite(sigma) & (sigma > 0))
        sigma = np.where(bad, fallback.sky_sigma, sigma)
        noise_source = "fallback"
        warnings.warn(
            f"{owner}: no usable background pixels in band(s) {np.flatnonzero(bad).tolist()}; "
            f"their noise is the {survey} median.",
            stacklevel=2,
        )
    fwhm = np.full(3, np.nan) if row is None else psf_fwhm_from_catalog(row)
    source = ["catalog" if np.isfinite(f) else "" for f in fwhm]
    n_stars = np.zeros(3, int)
    beta = math.nan
    if model == "moffat" or not np.isfinite(fwhm).all():
        meas = measure_psf(img, pixel_scale=scale, sky_sigma=sigma, model=model, **psf_kwargs)
        n_stars = meas.n_stars
        for b in range(3):
            if not source[b] and np.isfinite(meas.fwhm[b]):
                fwhm[b], source[b] = meas.fwhm[b], "stars"
        if model == "moffat" and np.isfinite(meas.beta).any():
            beta = float(np.nanmedian(meas.beta))
    missing = [b for b in range(3) if not source[b]]
    if missing:
        for b in missing:
            fwhm[b], source[b] = fallback.psf_fwhm[b], "fallback"
        warnings.warn(
            f"{owner}: no psfsize column and no usable star in band(s) {missing}; their PSF "
            f"FWHM is the {survey} median {[fallback.psf_fwhm[b] for b in missing]} arcsec.",
            stacklevel=2,
        )
    if not math.isfinite(beta):
        beta = 0.5 * sum(dist.moffat_beta_range)
    cond = SurveyConditions.from_sky_sigma(
        sigma,
        pixel_scale=scale,
        psf_fwhm=tuple(float(f) for f in fwhm),
        sky_mag=fallback.sky_mag,
        reference_r_e=dist.reference_r_e,
        psf_model=model,
        psf_beta=float(min(max(beta, 1.2), 20.0)),
    )
    record = {
        "psf_source": tuple(source),
        "n_stars": tuple(int(n) for n in n_stars),
        "sky_sigma": tuple(float(s) for s in sigma),
        "noise_source": noise_source,
    }
    return cond, record
