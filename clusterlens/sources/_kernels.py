"""Numba kernels of the Sérsic light profile (private; inputs are assumed valid)."""

from __future__ import annotations

import math

from numba import njit

__all__ = ["sersic_unit_sb", "add_sersic_stamp"]


@njit(cache=True)
def sersic_unit_sb(bx, by, xc, yc, r_e, n, q, phi_rad, b_n, log_i0, out):
    """Surface brightness [1/arcsec^2] of a unit-flux elliptical Sérsic at (bx, by) [arcsec].

    ``I = exp(log_i0 - b_n (R / r_e)^(1/n))`` with the elliptical radius
    ``R^2 = q x'^2 + y'^2 / q`` in the frame rotated by ``phi_rad``.
    """
    c = math.cos(phi_rad)
    s = math.sin(phi_rad)
    inv_n = 1.0 / n
    inv_re = 1.0 / r_e
    for i in range(bx.size):
        dx = bx[i] - xc
        dy = by[i] - yc
        xp = c * dx + s * dy
        yp = -s * dx + c * dy
        r = math.sqrt(q * xp * xp + yp * yp / q) * inv_re
        out[i] = math.exp(log_i0 - b_n * r**inv_n)
    return out


@njit(cache=True)
def add_sersic_stamp(image, fluxes, x0, y0, r_e, n, q, phi_rad, b_n, log_i0, half, sub):
    """Add a Sérsic (``fluxes`` per band, total) to ``image`` (band, y, x) in pixel units.

    ``x0, y0`` is the centre in pixel coordinates (column, row), ``r_e`` in pixels, ``log_i0``
    the log central surface brightness of a unit-flux profile per pixel^2.  Only pixels within
    ``half`` pixels of the centre are touched; the ones within 2 pixels of the centre are
    sampled ``sub x sub`` times, the others at their centre.
    """
    nb, ny, nx = image.shape
    c = math.cos(phi_rad)
    s = math.sin(phi_rad)
    inv_n = 1.0 / n
    inv_re = 1.0 / r_e
    i0 = max(0, int(math.floor(y0 - half)))
    i1 = min(ny, int(math.ceil(y0 + half)) + 1)
    j0 = max(0, int(math.floor(x0 - half)))
    j1 = min(nx, int(math.ceil(x0 + half)) + 1)
    for i in range(i0, i1):
        for j in range(j0, j1):
            near = abs(i - y0) < 2.0 and abs(j - x0) < 2.0
            m = sub if near else 1
            acc = 0.0
            for a in range(m):
                for b in range(m):
                    dy = i + (a + 0.5) / m - 0.5 - y0
                    dx = j + (b + 0.5) / m - 0.5 - x0
                    xp = c * dx + s * dy
                    yp = -s * dx + c * dy
                    r = math.sqrt(q * xp * xp + yp * yp / q) * inv_re
                    acc += math.exp(log_i0 - b_n * r**inv_n)
            acc /= m * m
            for k in range(nb):
                image[k, i, j] += fluxes[k] * acc
    return image
