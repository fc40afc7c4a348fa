"""numba kernels of the analytic profiles (private; inputs are assumed valid).

Layout: the public classes pack per-component constants into a float64 table, one row per
component, so that nothing is recomputed per pixel.  The pixel loop is split into blocks that
run in parallel (``prange``); inside a block the components are the outer loop and the
pixels the inner, SIMD-vectorised loop, so each component's constants stay in registers and
its contribution is added in place.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clusterlens.profiles._fastmath import (
    _poly_atan_tail,
    _poly_atanh_tail,
    atan_ratio,
    atanh_ratio,
    log_positive,
)

__all__: list[str] = []

BLOCK = 512
# Smallest elliptical radius used (arcsec): the SIE deflection is finite (zero) at its centre.
_PSI_MIN = 1e-15
_R2_MIN = 1e-30

# Columns of the SIE constants table (see ``sie_table``).
SIE_COLUMNS = 8


def sie_table(theta_e, q, phi_deg, x0, y0) -> np.ndarray:
    """Per-member constants: x0, y0, cos(phi), sin(phi), q^2, s, b/s, b.

    ``b = theta_e sqrt(q)``, ``s = sqrt(1 - q^2)``; q = 1 (the SIS) uses s = 1e-8, for which
    arctan(s t)/s = t to rounding, so no division by zero happens.
    """
    theta_e = np.atleast_1d(np.asarray(theta_e, dtype=np.float64))
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    phi = np.deg2rad(np.atleast_1d(np.asarray(phi_deg, dtype=np.float64)))
    s = np.sqrt((1.0 - q) * (1.0 + q))
    s = np.maximum(s, 1e-8)
    b = theta_e * np.sqrt(q)
    table = np.empty((theta_e.size, SIE_COLUMNS))
    table[:, 0] = x0
    table[:, 1] = y0
    table[:, 2] = np.cos(phi)
    table[:, 3] = np.sin(phi)
    table[:, 4] = q * q
    table[:, 5] = s
    table[:, 6] = b / s
    table[:, 7] = b
    return table


# What ``sie_accumulate`` computes.
DEFLECTION, HESSIAN, POTENTIAL, CONVERGENCE = 0, 1, 2, 3


@njit(inline="always", cache=True)
def _to_major_axis(xi, yi, xc, yc, c, sn):
    """Offsets from the centre (xc, yc), rotated into the frame of the major axis."""
    dx = xi - xc
    dy = yi - yc
    return c * dx + sn * dy, c * dy - sn * dx


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _sie_deflection_block(x, y, row, ax, ay):
    xc, yc, c, sn, q2, s, scale = row[0], row[1], row[2], row[3], row[4], row[5], row[6]
    for i in range(x.size):
        xp, yp = _to_major_axis(x[i], y[i], xc, yc, c, sn)
        psi = max(math.sqrt(q2 * xp * xp + yp * yp), _PSI_MIN)
        fx = scale * atan_ratio(s * xp, psi)
        fy = scale * atanh_ratio(s * yp, psi)
        ax[i] += c * fx - sn * fy
        ay[i] += sn * fx + c * fy


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _sie_hessian_block(x, y, row, fxx, fxy, fyy):
    # major-axis frame: f_xx = b y^2/(r^2 psi), f_xy = -b x y/(r^2 psi), f_yy = b x^2/(r^2 psi)
    xc, yc, c, sn, q2, b = row[0], row[1], row[2], row[3], row[4], row[7]
    cc, ss, cs = c * c, sn * sn, c * sn
    c2 = cc - ss
    for i in range(x.size):
        xp, yp = _to_major_axis(x[i], y[i], xc, yc, c, sn)
        xx = xp * xp
        yy = yp * yp
        r2 = max(xx + yy, _R2_MIN)
        psi = max(math.sqrt(q2 * xx + yy), _PSI_MIN)
        t = b / (r2 * psi)
        hxx = t * yy
        hxy = -t * xp * yp
        hyy = t * xx
        fxx[i] += cc * hxx - 2.0 * cs * hxy + ss * hyy
        fyy[i] += ss * hxx + 2.0 * cs * hxy + cc * hyy
        fxy[i] += cs * (hxx - hyy) + c2 * hxy


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _sie_potential_block(x, y, row, out):
    xc, yc, c, sn = row[0], row[1], row[2], row[3]
    q2, s, scale = row[4], row[5], row[6]
    for i in range(x.size):
        xp, yp = _to_major_axis(x[i], y[i], xc, yc, c, sn)
        psi = max(math.sqrt(q2 * xp * xp + yp * yp), _PSI_MIN)
        out[i] += scale * (xp * atan_ratio(s * xp, psi) + yp * atanh_ratio(s * yp, psi))


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _sie_convergence_block(x, y, row, out):
    xc, yc, c, sn = row[0], row[1], row[2], row[3]
    q2, half_b = row[4], 0.5 * row[7]
    for i in range(x.size):
        xp, yp = _to_major_axis(x[i], y[i], xc, yc, c, sn)
        out[i] += half_b / max(math.sqrt(q2 * xp * xp + yp * yp), _PSI_MIN)


@njit(parallel=True, cache=True, error_model="numpy")
def sie_accumulate(x, y, table, mode, o1, o2, o3):
    """Add the SIE quantity ``mode`` of every row of ``table`` into the outputs.

    DEFLECTION -> (o1, o2) = (alpha_x, alpha_y); HESSIAN -> (o1, o2, o3) = (fxx, fxy, fyy);
    POTENTIAL or CONVERGENCE -> o1.  Parallel over pixel blocks; members inside.
    """
    n = x.size
    nblocks = (n + BLOCK - 1) // BLOCK
    for blk in prange(nblocks):
        start = blk * BLOCK
        stop = min(start + BLOCK, n)
        # views, so that the inner loops run from 0: numba then drops the negative-index
        # wraparound that would otherwise stop LLVM from vectorising them
        xb, yb = x[start:stop], y[start:stop]
        b1, b2, b3 = o1[start:stop], o2[start:stop], o3[start:stop]
        for j in range(table.shape[0]):
            row = table[j]
            if mode == DEFLECTION:
                _sie_deflection_block(xb, yb, row, b1, b2)
            elif mode == HESSIAN:
                _sie_hessian_block(xb, yb, row, b1, b2, b3)
            elif mode == POTENTIAL:
                _sie_potential_block(xb, yb, row, b1)
            else:
                _sie_convergence_block(xb, yb, row, b1)


# --- NFW -------------------------------------------------------------------------------------
# With X = R / rs and t = 1 - X^2, every NFW function uses G(t) = arctanh(sqrt t)/sqrt t
# (= arctan(sqrt -t)/sqrt -t for t < 0), analytic through t = 0 (X = 1):
#   g(X) = ln(X/2) + G,  F(X) = (G - 1)/t,  h(X) = ln(X/2)^2 - t G^2.
_T_SERIES = (math.sqrt(2.0) - 1.0) ** 2
_X_MIN = 1e-8


@njit(inline="always", cache=True, error_model="numpy")
def _nfw_g_f_h(X):
    """Return (g, F, ln(X/2), G) of the NFW profile at X = R/rs > 0."""
    t = (1.0 - X) * (1.0 + X)
    at = abs(t)
    rt = math.sqrt(at)
    lnx = log_positive(X)
    # series branch: |t| small, G = 1 + t G1(t)
    g1_series = _poly_atanh_tail(at) if t > 0.0 else -_poly_atan_tail(at)
    # closed forms away from X = 1
    g_inner = (log_positive(1.0 + rt) - lnx) / rt  # X < 1
    g_outer = atan_ratio(rt, 1.0) / rt  # X > 1
    G = g_inner if t > 0.0 else g_outer
    series = at <= _T_SERIES
    G = 1.0 + t * g1_series if series else G
    F = g1_series if series else (G - 1.0) / t
    return lnx - math.log(2.0) + G, F, lnx - math.log(2.0), G


@njit(parallel=True, cache=True, error_model="numpy")
def enfw_all(x, y, consts, mode, o1, o2, o3):
    """Pseudo-elliptical NFW (q = 1: spherical) on flat arrays.

    consts = (x0, y0, cos phi, sin phi, sqrt(1 - e), sqrt(1 + e), rs, A) with
    A = alpha_rs / (1 + ln 1/2) = 4 rho0 rs^2 (arcsec).  ``mode`` as in
    :func:`sie_accumulate`; results are added into the outputs.
    """
    n = x.size
    nblocks = (n + BLOCK - 1) // BLOCK
    for blk in prange(nblocks):
        start = blk * BLOCK
        stop = min(start + BLOCK, n)
        _enfw_block(
            x[start:stop],
            y[start:stop],
            consts,
            mode,
            o1[start:stop],
            o2[start:stop],
            o3[start:stop],
        )


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _enfw_block(x, y, consts, mode, o1, o2, o3):
    xc, yc, c, sn, sm, sp, rs, A = consts
    for i in range(x.size):
        dx = x[i] - xc
        dy = y[i] - yc
        xt = sm * (c * dx + sn * dy)
        yt = sp * (c * dy - sn * dx)
        R = max(math.sqrt(xt * xt + yt * yt), _X_MIN * rs)
        X = R / rs
        g, F, lnx2, G = _nfw_g_f_h(X)
        if mode == DEFLECTION:
            a = A * g / (X * R)
            fx = sm * a * xt
            fy = sp * a * yt
            o1[i] += c * fx - sn * fy
            o2[i] += sn * fx + c * fy
        elif mode == POTENTIAL:
            t = (1.0 - X) * (1.0 + X)
            o1[i] += 0.5 * A * rs * (lnx2 * lnx2 - t * G * G)
        else:
            kappa = 0.5 * A / rs * F
            kbar = A * g / (X * R)
            gam = kbar - kappa
            cos2 = (xt * xt - yt * yt) / (R * R)
            sin2 = 2.0 * xt * yt / (R * R)
            hxx = (kappa - gam * cos2) * sm * sm
            hyy = (kappa + gam * cos2) * sp * sp
            hxy = -gam * sin2 * sm * sp
            if mode == CONVERGENCE:
                o1[i] += 0.5 * (hxx + hyy)
            else:
                cc = c * c
                ss = sn * sn
                cs = c * sn
                o1[i] += cc * hxx - 2.0 * cs * hxy + ss * hyy
                o3[i] += ss * hxx + 2.0 * cs * hxy + cc * hyy
                o2[i] += cs * (hxx - hyy) + (cc - ss) * hxy
