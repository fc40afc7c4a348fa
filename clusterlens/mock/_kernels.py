"""numba kernels of the mock simulator (private; inputs are assumed valid)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__: list[str] = []


@njit(cache=True, error_model="numpy")
def placement_candidates(fxx, fxy, fyy, r, s, min_mag, r_max, start, stop, cap):
    """The pixels where an arc's source may be put, in one pass over the crop's rows.

    A pixel ``(i, j)`` with ``start <= i, j < stop`` (the final crop of the simulated box)
    is a candidate where, at deflection scale ``s``, ``|det A| min_mag <= 1``, it lies on the
    tangential side ``|lambda_t| < |lambda_r|`` and ``r <= r_max`` [arcsec].  The same
    float64 operations as the numpy expressions of ``MockLensSimulator._place`` (so the
    same pixels), without their full-size temporaries.

    Returns
    -------
    idx : int64 array
        Flat indices (row-major, increasing) into the simulated box.
    det : float64 array
        ``det A`` at those pixels.
    weight : float64 array
        ``min(1 / |det A|, cap)`` there (used when ``cap > 1``).
    """
    ny, nx = fxx.shape
    n = (stop - start) * (stop - start)
    idx = np.empty(n, np.int64)
    det_out = np.empty(n)
    weight = np.empty(n)
    k = 0
    for i in range(start, stop):
        for j in range(start, stop):
            if not r[i, j] <= r_max:
                continue
            a, b, c = fxx[i, j], fxy[i, j], fyy[i, j]
            sb = s * b
            det = (1.0 - s * a) * (1.0 - s * c) - sb * sb
            if not abs(det) * min_mag <= 1.0:
                continue
            kappa = 0.5 * (a + c) * s
            gamma = math.hypot(0.5 * (a - c), b) * s
            lam_t = 1.0 - kappa - gamma
            lam_r = 1.0 + gamma - kappa
            if not abs(lam_t) < abs(lam_r):
                continue
            idx[k] = i * nx + j
            det_out[k] = det
            weight[k] = min(1.0 / abs(det), cap)
            k += 1
    return idx[:k], det_out[:k], weight[:k]


@njit(cache=True, error_model="numpy")
def summed_hessian(halo_xx, halo_xy, halo_yy, gal_xx, gal_xy, gal_yy, fxx, fxy, fyy, kpg):
    """``f = halo + galaxies`` for the three Hessian components (flat arrays) and
    ``kappa + gamma = (fxx + fyy) / 2 + hypot((fxx - fyy) / 2, fxy)`` into ``kpg``, in one
    pass (the numpy expressions of ``LensMaps``, the same numbers)."""
    for i in range(fxx.size):
        a = halo_xx[i] + gal_xx[i]
        b = halo_xy[i] + gal_xy[i]
        c = halo_yy[i] + gal_yy[i]
        fxx[i] = a
        fxy[i] = b
        fyy[i] = c
        kpg[i] = 0.5 * (a + c) + math.hypot(0.5 * (a - c), b)
