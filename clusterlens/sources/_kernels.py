"""Numba kernels of the Sérsic light profile (private; inputs are assumed valid)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from clusterlens.profiles._fastmath import exp_finite, log_positive

__all__ = [
    "sersic_unit_sb",
    "add_sersic_stamp",
    "add_sersic_stamps",
    "steep_pixel_flags",
    "steep_pixel_flags_at",
    "pixel_footprints",
    "pixels_within",
]


@njit(inline="always", cache=True, error_model="numpy")
def _radius_power(dx, dy, c, s, q, inv_q, half_inv_n, log_inv_re2):
    """(R / r_e)^(1/n) of the elliptical radius R at offsets (dx, dy) [pixels] from the centre,
    vectorisable: (R^2 / r_e^2)^(1/(2n)) = exp(log(R^2 / r_e^2) / (2n))."""
    xp = c * dx + s * dy
    yp = c * dy - s * dx
    r2 = max(q * xp * xp + yp * yp * inv_q, 1e-300)
    return exp_finite(half_inv_n * (log_positive(r2) + log_inv_re2))


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def sersic_unit_sb(bx, by, xc, yc, r_e, n, q, phi_rad, b_n, log_i0, out):
    """Surface brightness [1/arcsec^2] of a unit-flux elliptical Sérsic at (bx, by) [arcsec].

    ``I = exp(log_i0 - b_n (R / r_e)^(1/n))`` with the elliptical radius
    ``R^2 = q x'^2 + y'^2 / q`` in the frame rotated by ``phi_rad`` (one SIMD loop).
    """
    c = math.cos(phi_rad)
    s = math.sin(phi_rad)
    inv_q = 1.0 / q
    half_inv_n = 0.5 / n
    log_inv_re2 = -2.0 * math.log(r_e)
    for i in range(bx.size):
        t = _radius_power(bx[i] - xc, by[i] - yc, c, s, q, inv_q, half_inv_n, log_inv_re2)
        out[i] = exp_finite(log_i0 - b_n * t)
    return out


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def add_sersic_stamp(image, fluxes, x0, y0, r_e, n, q, phi_rad, b_n, log_i0, half, sub):
    """Add a Sérsic (``fluxes`` per band, total) to ``image`` (band, y, x) in pixel units.

    ``x0, y0`` is the centre in pixel coordinates (column, row), ``r_e`` in pixels, ``log_i0``
    the log central surface brightness of a unit-flux profile per pixel^2.  Only pixels within
    ``half`` pixels of the centre are touched; the ones within 2 pixels of the centre are
    sampled ``sub x sub`` times, the others at their centre.  A row's centre samples are one
    SIMD loop (arithmetic-only exp and log), then added to every band.
    """
    nb, ny, nx = image.shape
    c = math.cos(phi_rad)
    s = math.sin(phi_rad)
    inv_q = 1.0 / q
    half_inv_n = 0.5 / n
    log_inv_re2 = -2.0 * math.log(r_e)
    i0 = max(0, int(math.floor(y0 - half)))
    i1 = min(ny, int(math.ceil(y0 + half)) + 1)
    j0 = max(0, int(math.floor(x0 - half)))
    j1 = min(nx, int(math.ceil(x0 + half)) + 1)
    if i1 <= i0 or j1 <= j0:
        return image
    row = np.empty(j1 - j0)
    # columns (relative to j0) that are sub-sampled on rows near the centre
    jn0 = max(j0, int(math.floor(x0 - 2.0)))
    jn1 = min(j1, int(math.ceil(x0 + 2.0)) + 1)
    for i in range(i0, i1):
        dy = i - y0
        for jj in range(j1 - j0):
            t = _radius_power(j0 + jj - x0, dy, c, s, q, inv_q, half_inv_n, log_inv_re2)
            row[jj] = exp_finite(log_i0 - b_n * t)
        if abs(dy) < 2.0:
            for j in range(jn0, jn1):
                if abs(j - x0) >= 2.0:
                    continue
                acc = 0.0
                for a in range(sub):
                    for b in range(sub):
                        sy = i + (a + 0.5) / sub - 0.5 - y0
                        sx = j + (b + 0.5) / sub - 0.5 - x0
                        t = _radius_power(sx, sy, c, s, q, inv_q, half_inv_n, log_inv_re2)
                        acc += exp_finite(log_i0 - b_n * t)
                row[j - j0] = acc / (sub * sub)
        for k in range(nb):
            out = image[k, i, j0:j1]
            f = fluxes[k]
            for jj in range(j1 - j0):
                out[jj] += f * row[jj]
    return image


@njit(cache=True)
def add_sersic_stamps(image, fluxes, x0, y0, r_e, n, q, phi_rad, b_n, log_i0, half, sub):
    """:func:`add_sersic_stamp` for every galaxy ``k`` of the arrays (``fluxes[:, k]``), in
    one call."""
    for k in range(x0.size):
        add_sersic_stamp(
            image,
            fluxes[:, k],
            x0[k],
            y0[k],
            r_e[k],
            n[k],
            q[k],
            phi_rad[k],
            b_n[k],
            log_i0[k],
            half[k],
            sub,
        )
    return image


@njit(cache=True, error_model="numpy", fastmath={"contract"})
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
    log_inv_re = -math.log(r_e)
    for i in range(ny):
        up = max(i - 1, 0)
        down = min(i + 1, ny - 1)
        for j in range(nx):
            left = max(j - 1, 0)
            right = min(j + 1, nx - 1)
            x0 = bx[i, j]
            y0 = by[i, j]
            acc = value[up, j] + value[down, j] + value[i, left] + value[i, right]
            foot2 = max(
                max(_dist2(bx[up, j], by[up, j], x0, y0), _dist2(bx[down, j], by[down, j], x0, y0)),
                max(
                    _dist2(bx[i, left], by[i, left], x0, y0),
                    _dist2(bx[i, right], by[i, right], x0, y0),
                ),
            )
            foot = math.sqrt(foot2)
            v = value[i, j]
            dist = math.sqrt(_dist2(x0, y0, xc, yc))
            # the elliptical radius is within [sqrt(q), 1/sqrt(q)] of the circular one
            r = max(dist, 1e-12)
            slope = b_n * inv_n * exp_finite(inv_n * (log_positive(r) + log_inv_re)) / r
            out[i, j] = (
                (abs(v - 0.25 * acc) > atol)
                | (dist * sqrt_q <= foot + 0.5 * r_e)
                | (v * min(1.0, (slope * foot) ** 2) > atol)
            )
    return out


@njit(inline="always", cache=True)
def _dist2(x1, y1, x2, y2):
    return (x1 - x2) * (x1 - x2) + (y1 - y2) * (y1 - y2)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def steep_pixel_flags_at(value, bx, by, idx, xc, yc, sqrt_q, r_e, b_n, n, atol, out):
    """:func:`steep_pixel_flags` for the flat pixel indices ``idx`` only (``out[k]`` for
    ``idx[k]``): a small component (a clump) is tested only where its light can be."""
    ny, nx = value.shape
    inv_n = 1.0 / n
    log_inv_re = -math.log(r_e)
    for k in range(idx.size):
        i = idx[k] // nx
        j = idx[k] - i * nx
        up = max(i - 1, 0)
        down = min(i + 1, ny - 1)
        left = max(j - 1, 0)
        right = min(j + 1, nx - 1)
        x0 = bx[i, j]
        y0 = by[i, j]
        acc = value[up, j] + value[down, j] + value[i, left] + value[i, right]
        foot2 = max(
            max(_dist2(bx[up, j], by[up, j], x0, y0), _dist2(bx[down, j], by[down, j], x0, y0)),
            max(
                _dist2(bx[i, left], by[i, left], x0, y0),
                _dist2(bx[i, right], by[i, right], x0, y0),
            ),
        )
        foot = math.sqrt(foot2)
        v = value[i, j]
        dist = math.sqrt(_dist2(x0, y0, xc, yc))
        r = max(dist, 1e-12)
        slope = b_n * inv_n * exp_finite(inv_n * (log_positive(r) + log_inv_re)) / r
        out[k] = (
            (abs(v - 0.25 * acc) > atol)
            | (dist * sqrt_q <= foot + 0.5 * r_e)
            | (v * min(1.0, (slope * foot) ** 2) > atol)
        )
    return out


@njit(cache=True, error_model="numpy")
def pixel_footprints(bx, by, out):
    """Source-plane footprint [arcsec] of every pixel: the largest distance from its traced
    position to that of one of its 4 neighbours (as in :func:`steep_pixel_flags`)."""
    ny, nx = bx.shape
    for i in range(ny):
        up = max(i - 1, 0)
        down = min(i + 1, ny - 1)
        for j in range(nx):
            left = max(j - 1, 0)
            right = min(j + 1, nx - 1)
            x0 = bx[i, j]
            y0 = by[i, j]
            foot2 = max(
                max(
                    _dist2(bx[up, j], by[up, j], x0, y0),
                    _dist2(bx[down, j], by[down, j], x0, y0),
                ),
                max(
                    _dist2(bx[i, left], by[i, left], x0, y0),
                    _dist2(bx[i, right], by[i, right], x0, y0),
                ),
            )
            out[i, j] = math.sqrt(foot2)
    return out


@njit(cache=True, error_model="numpy")
def pixels_within(bx, by, foot, xc, yc, radius, out):
    """Flat indices of the pixels whose traced position lies within ``radius + foot`` of
    ``(xc, yc)`` (flat arrays); returns the filled head of ``out``."""
    k = 0
    for i in range(bx.size):
        dx = bx[i] - xc
        dy = by[i] - yc
        lim = radius + foot[i]
        if dx * dx + dy * dy <= lim * lim:
            out[k] = i
            k += 1
    return out[:k]
