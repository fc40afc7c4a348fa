"""Fitting a PSF model to one star's stamp (private): shared by :mod:`.psf` (a PSF from a
star) and :mod:`.measure` (the PSF of a cutout from its stars)."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import least_squares

_SUB = 3  # sub-pixel samples per axis of the fitted profiles


def _profile_model(params, yy, xx, model):
    """Pixel-integrated (``_SUB`` x ``_SUB`` samples) PSF profile plus a constant, on a stamp;
    ``params = (flux, x0, y0, fwhm [pixels], [beta,] background)``."""
    flux, x0, y0, fwhm = params[:4]
    bkg = params[-1]
    r2 = (xx - x0) ** 2 + (yy - y0) ** 2
    if model == "moffat":
        beta = params[4]
        alpha2 = fwhm**2 / (4.0 * (2.0 ** (1.0 / beta) - 1.0))
        prof = (beta - 1.0) / (math.pi * alpha2) * (1.0 + r2 / alpha2) ** -beta
    else:
        s2 = (fwhm / 2.3548200450309493) ** 2
        prof = np.exp(-0.5 * r2 / s2) / (2.0 * math.pi * s2)
    n = yy.shape[0] // _SUB
    return flux * prof.reshape(n, _SUB, -1, _SUB).mean(axis=(1, 3)) + bkg


def _fit_star(stamp, sigma, model):
    """Fit one star stamp (odd square, peak near the centre):
    ``(fwhm [pixels], beta, ok, cost)``."""
    n = stamp.shape[0]
    h = n // 2
    sub = (np.arange(n * _SUB) + 0.5) / _SUB - 0.5 - h
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    bkg0 = float(np.median(np.concatenate([stamp[0], stamp[-1], stamp[:, 0], stamp[:, -1]])))
    flux0 = float(max(stamp.sum() - bkg0 * stamp.size, stamp.max()))
    peak = max(float(stamp[h, h] - bkg0), 1e-30)
    fwhm0 = float(np.clip(2.0 * math.sqrt(max(flux0 / peak, 1.0) / (2 * math.pi) * 1.4), 1.0, h))
    if model == "moffat":
        p0 = [flux0, 0.0, 0.0, fwhm0, 3.0, bkg0]
        lo = [0.0, -1.5, -1.5, 0.5, 1.2, -np.inf]
        hi = [np.inf, 1.5, 1.5, float(n), 20.0, np.inf]
    else:
        p0 = [flux0, 0.0, 0.0, fwhm0, bkg0]
        lo = [0.0, -1.5, -1.5, 0.5, -np.inf]
        hi = [np.inf, 1.5, 1.5, float(n), np.inf]
    p0 = np.clip(p0, np.nextafter(lo, np.inf), np.nextafter(hi, -np.inf))
    weight = 1.0 / sigma  # background-limited stars: uniform weights

    def resid(p):
        return ((_profile_model(p, yy, xx, model) - stamp) * weight).ravel()

    try:
        fit = least_squares(resid, p0, bounds=(lo, hi), x_scale="jac", max_nfev=300)
    except (ValueError, FloatingPointError):
        return math.nan, math.nan, False, math.inf
    p = fit.x
    ok = bool(fit.success) and 0.5 < p[3] < n - 1
    beta = float(p[4]) if model == "moffat" else math.nan
    return float(p[3]), beta, ok, float(fit.cost)
