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


@njit(cache=True)
def steep_pixel_flags(value, bx, by, xc, yc, sqrt_q, r_e, b_n, n, atol, out):
    """Flag pixels whose centre sample may misrepresent the pixel mean (see the caller).

    ``value`` is the unit-flux surface brightness at the pixel centres, ``bx, by`` their
    ray-traced positions (2-D).  A pixel is flagged when its value departs from the mean of
    its 4 neighbours by more than ``atol``, when its source-plane footprint (largest distance
    to a neighbour's position) reaches the source centre, or when the profile's log slope
    across the footprint, weighted by the value, exceeds ``atol``.
    """
    ny, nx = value.shape
    inv_n = 1.0 / n
    for i in range(ny):
        for j in range(nx):
            acc = 0.0
            foot = 0.0
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                ii = min(max(i + di, 0), ny - 1)
                jj = min(max(j + dj, 0), nx - 1)
                acc += value[ii, jj]
                d = math.hypot(bx[ii, jj] - bx[i, j], by[ii, jj] - by[i, j])
                if d > foot:
                    foot = d
            v = value[i, j]
            flag = abs(v - 0.25 * acc) > atol
            dist = math.hypot(bx[i, j] - xc, by[i, j] - yc)
            # the elliptical radius is within [sqrt(q), 1/sqrt(q)] of the circular one
            flag = flag or dist * sqrt_q <= foot + 0.5 * r_e
            if not flag:
                r = max(dist, 1e-12)
                slope = b_n * inv_n * (r / r_e) ** inv_n / r
                flag = v * min(1.0, (slope * foot) ** 2) > atol
            out[i, j] = flag
    return out
