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
    atan_atanh_ratio,
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
SIE_COLUMNS = 12


def sie_table(theta_e, q, phi_deg, x0, y0) -> np.ndarray:
    """Per-member constants: x0, y0, cos(phi), sin(phi), q^2, s, b/s, b, and for the
    deflection q^2/s^2, 1/s^2, cos(phi) b/s, sin(phi) b/s.

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
    table[:, 8] = (q / s) ** 2
    table[:, 9] = 1.0 / (s * s)
    table[:, 10] = table[:, 2] * table[:, 6]
    table[:, 11] = table[:, 3] * table[:, 6]
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
    # arctan(s x'/psi) = arctan(x'/(psi/s)): dividing psi by s instead of multiplying both
    # numerators by s saves a multiplication per pixel (psi/s = sqrt(q^2/s^2 x'^2 + y'^2/s^2)),
    # and the rotation back carries the amplitude b/s (columns 10, 11)
    xc, yc, c, sn = row[0], row[1], row[2], row[3]
    q2_s2, inv_s2, c_scale, s_scale = row[8], row[9], row[10], row[11]
    for i in range(x.size):
        xp, yp = _to_major_axis(x[i], y[i], xc, yc, c, sn)
        psi_s = max(math.sqrt(q2_s2 * xp * xp + (inv_s2 * yp) * yp), _PSI_MIN)
        tx, ty = atan_atanh_ratio(xp, yp, psi_s)
        # written as two multiply-adds into the output each (no separate products to add)
        ax[i] = ax[i] + c_scale * tx - s_scale * ty
        ay[i] = ay[i] + s_scale * tx + c_scale * ty


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
        t = b / (r2 * max(math.sqrt(q2 * xx + yy), _PSI_MIN))
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


@njit(inline="always", cache=True, error_model="numpy")
def _enfw_point(xi, yi, consts):
    """Stretched major-axis coordinates, R, X = R/rs and the NFW functions at one pixel."""
    xc, yc, c, sn, sm, sp, rs, _ = consts
    dx = xi - xc
    dy = yi - yc
    xt = sm * (c * dx + sn * dy)
    yt = sp * (c * dy - sn * dx)
    R = max(math.sqrt(xt * xt + yt * yt), _X_MIN * rs)
    X = R / rs
    g, F, lnx2, G = _nfw_g_f_h(X)
    return xt, yt, R, X, g, F, lnx2, G


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _enfw_deflection_block(x, y, consts, ax, ay):
    # a loop of its own (no mode branch), so that it vectorises
    _, _, c, sn, sm, sp, _, A = consts
    for i in range(x.size):
        xt, yt, R, X, g, _, _, _ = _enfw_point(x[i], y[i], consts)
        a = A * g / (X * R)
        fx = sm * a * xt
        fy = sp * a * yt
        ax[i] += c * fx - sn * fy
        ay[i] += sn * fx + c * fy


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _enfw_block(x, y, consts, mode, o1, o2, o3):
    if mode == DEFLECTION:
        _enfw_deflection_block(x, y, consts, o1, o2)
        return
    _, _, c, sn, sm, sp, rs, A = consts
    cc = c * c
    ss = sn * sn
    cs = c * sn
    for i in range(x.size):
        xt, yt, R, X, g, F, lnx2, G = _enfw_point(x[i], y[i], consts)
        if mode == POTENTIAL:
            t = (1.0 - X) * (1.0 + X)
            o1[i] += 0.5 * A * rs * (lnx2 * lnx2 - t * G * G)
            continue
        kappa = 0.5 * A / rs * F
        gam = A * g / (X * R) - kappa
        cos2 = (xt * xt - yt * yt) / (R * R)
        sin2 = 2.0 * xt * yt / (R * R)
        hxx = (kappa - gam * cos2) * sm * sm
        hyy = (kappa + gam * cos2) * sp * sp
        hxy = -gam * sin2 * sm * sp
        if mode == CONVERGENCE:
            o1[i] += 0.5 * (hxx + hyy)
        else:
            o1[i] += cc * hxx - 2.0 * cs * hxy + ss * hyy
            o3[i] += ss * hxx + 2.0 * cs * hxy + cc * hyy
            o2[i] += cs * (hxx - hyy) + (cc - ss) * hxy


# --- cored steep ellipsoids (Oguri 2021) ------------------------------------------------------
# One CSE of the major-axis form, with psi = sqrt(q^2 (s^2 + u^2) + v^2) and
# Phi = (psi + s)^2 + (1 - q^2) u^2 (Oguri 2021, PASP 133, 074504, eqs. 19-23):
#   potential  q/(2s) ln Phi - q/s ln((1 + q) s)
#   deflection (q u (psi + q^2 s), q v (psi + s)) / (s psi Phi)
#   Hessian    eqs. 21-23 (below).


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _cse_block(u, v, amp, s, q, mode, o1, o2, o3):
    q2 = q * q
    one_m_q2 = 1.0 - q2
    qs2 = q2 * s * s
    log_norm = math.log((1.0 + q) * s)
    for i in range(u.size):
        uu = u[i] * u[i]
        vv = v[i] * v[i]
        psi2 = qs2 + q2 * uu + vv
        psi = math.sqrt(psi2)
        phi_ = (psi + s) * (psi + s) + one_m_q2 * uu
        if mode == DEFLECTION:
            t = amp * q / (s * psi * phi_)
            o1[i] += t * u[i] * (psi + q2 * s)
            o2[i] += t * v[i] * (psi + s)
        elif mode == POTENTIAL:
            o1[i] += amp * q / s * (0.5 * log_positive(phi_) - log_norm)
        else:
            t = amp * q / (s * phi_)
            psi3 = psi2 * psi
            pq = psi + q2 * s
            ps = psi + s
            inv = 1.0 / (psi2 * phi_)
            hxx = t * (1.0 + q2 * s * (qs2 + vv) / psi3 - 2.0 * uu * pq * pq * inv)
            hyy = t * (1.0 + q2 * s * (s * s + uu) / psi3 - 2.0 * vv * ps * ps * inv)
            hxy = -t * u[i] * v[i] * (q2 * s / psi3 + 2.0 * pq * ps * inv)
            if mode == CONVERGENCE:
                o1[i] += 0.5 * (hxx + hyy)
            else:
                o1[i] += hxx
                o2[i] += hxy
                o3[i] += hyy


@njit(parallel=True, cache=True, error_model="numpy")
def cse_sum(u, v, amps, scales, q, mode, o1, o2, o3):
    """Add the sum of CSEs (amplitudes ``amps``, core radii ``scales``, axis ratio ``q``)
    at major-axis-frame positions (u, v) into the outputs; ``mode`` as in sie_accumulate.
    The caller scales, rotates and normalises."""
    n = u.size
    nblocks = (n + BLOCK - 1) // BLOCK
    for blk in prange(nblocks):
        start = blk * BLOCK
        stop = min(start + BLOCK, n)
        ub, vb = u[start:stop], v[start:stop]
        b1, b2, b3 = o1[start:stop], o2[start:stop], o3[start:stop]
        for k in range(amps.size):
            _cse_block(ub, vb, amps[k], scales[k], q, mode, b1, b2, b3)


# --- dPIE (truncated PIEMD) -----------------------------------------------------------------
# A dPIE is s/(s - a) times the difference of two cored isothermal ellipsoids (Keeton's
# "NIE"), core a minus core s.  In Keeton's major-axis form, with b the NIE's amplitude,
# core w (major-axis units), psi_w = sqrt(q^2 (w^2 + x^2) + y^2), S = sqrt(1 - q^2) and
# D_w = (1 + q^2) w^2 + x^2 + y^2 + 2 w psi_w = (psi_w + w)^2 + S^2 x^2:
#   alpha_x = (b q / S) arctan(S x / (psi_w + w)),
#   alpha_y = (b q / S) arctanh(S y / (psi_w + q^2 w)),
#   f_xx = b q (y^2 + q^2 w^2 + w psi_w) / (psi_w D_w), f_yy = b q (x^2 + w^2 + w psi_w) /
#   (psi_w D_w), f_xy = -b q x y / (psi_w D_w), kappa = b q / (2 psi_w),
#   psi = x alpha_x + y alpha_y - b q w (ln D_w / 2 - ln((1 + q) w))   (Keeton 2001).
# The two arctan (arctanh) of a member are combined into one with
#   arctan u1 - arctan u2 = arctan((u1 - u2) / (1 + u1 u2))  (u1 u2 >= 0),
#   arctanh v1 - arctanh v2 = arctanh((v1 - v2) / (1 - v1 v2))  (|v| < 1),
# and psi_s - psi_a = q^2 (s^2 - a^2) / (psi_s + psi_a) has no cancellation, so a member
# costs two square roots, three divisions and one arctan/arctanh pair.

# Columns of the dPIE constants table (see ``dpie_table``).
DPIE_COLUMNS = 12


def dpie_table(theta_e, r_core, r_cut, q, phi_deg, x0, y0) -> np.ndarray:
    """Per-member constants: x0, y0, cos(phi), sin(phi), q^2, S, A / S, A, a, s, S^2, C.

    ``theta_e``, ``r_core``, ``r_cut`` are in the intermediate-axis convention (arcsec);
    a = r_core / sqrt(q) and s = r_cut / sqrt(q) are the major-axis cores of the two NIEs,
    A = theta_e sqrt(q) r_cut / (r_cut - r_core) their common amplitude b q, and
    C = A (a ln((1 + q) a) - s ln((1 + q) s)) the potential's constant.  q = 1 uses
    S = 1e-8 (as the SIE), for which arctan(S t) / S = t to rounding.
    """
    arrays = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (theta_e, r_core, r_cut, q)]
    theta_e, r_core, r_cut, q = np.broadcast_arrays(*arrays)
    phi = np.deg2rad(np.broadcast_to(np.asarray(phi_deg, dtype=np.float64), theta_e.shape))
    sq = np.sqrt(q)
    s_big = np.maximum(np.sqrt((1.0 - q) * (1.0 + q)), 1e-8)
    a = r_core / sq
    s = r_cut / sq
    amp = theta_e * sq * r_cut / (r_cut - r_core)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_log = np.where(a > 0.0, a * np.log((1.0 + q) * np.where(a > 0, a, 1.0)), 0.0)
    table = np.empty((theta_e.size, DPIE_COLUMNS))
    table[:, 0] = x0
    table[:, 1] = y0
    table[:, 2] = np.cos(phi)
    table[:, 3] = np.sin(phi)
    table[:, 4] = q * q
    table[:, 5] = s_big
    table[:, 6] = amp / s_big
    table[:, 7] = amp
    table[:, 8] = a
    table[:, 9] = s
    table[:, 10] = s_big * s_big
    table[:, 11] = amp * (a_log - s * np.log((1.0 + q) * s))
    return table


@njit(inline="always", cache=True, error_model="numpy")
def _dpie_psis(xx, yy, q2, a, s):
    """psi_a, psi_s and psi_s - psi_a at one pixel (major-axis frame squares xx, yy)."""
    pa = max(math.sqrt(q2 * (a * a + xx) + yy), _PSI_MIN)
    ps = math.sqrt(q2 * (s * s + xx) + yy)
    return pa, ps, q2 * (s - a) * (s + a) / (pa + ps)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _dpie_deflection_block(x, y, row, ax, ay):
    xc, yc, c, sn, q2, sb, scale = row[0], row[1], row[2], row[3], row[4], row[5], row[6]
    a, s, sb2 = row[8], row[9], row[10]
    ds = s - a
    for i in range(x.size):
        xp, yp = _to_major_axis(x[i], y[i], xc, yc, c, sn)
        xx = xp * xp
        yy = yp * yp
        pa, ps, dpsi = _dpie_psis(xx, yy, q2, a, s)
        tx = atan_ratio(sb * xp * (dpsi + ds), (pa + a) * (ps + s) + sb2 * xx)
        ty = atanh_ratio(sb * yp * (dpsi + q2 * ds), (pa + q2 * a) * (ps + q2 * s) - sb2 * yy)
        fx = scale * tx
        fy = scale * ty
        ax[i] += c * fx - sn * fy
        ay[i] += sn * fx + c * fy


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _dpie_hessian_block(x, y, row, fxx, fxy, fyy):
    xc, yc, c, sn, q2, amp = row[0], row[1], row[2], row[3], row[4], row[7]
    a, s = row[8], row[9]
    one_q2 = 1.0 + q2
    cc, ss, cs = c * c, sn * sn, c * sn
    c2 = cc - ss
    for i in range(x.size):
        xp, yp = _to_major_axis(x[i], y[i], xc, yc, c, sn)
        xx = xp * xp
        yy = yp * yp
        pa, ps, _ = _dpie_psis(xx, yy, q2, a, s)
        r2 = xx + yy
        da = max(one_q2 * a * a + r2 + 2.0 * a * pa, _R2_MIN)
        db = one_q2 * s * s + r2 + 2.0 * s * ps
        ta = amp / (pa * da)
        tb = amp / (ps * db)
        hxx = ta * (yy + q2 * a * a + a * pa) - tb * (yy + q2 * s * s + s * ps)
        hyy = ta * (xx + a * a + a * pa) - tb * (xx + s * s + s * ps)
        hxy = -(ta - tb) * xp * yp
        fxx[i] += cc * hxx - 2.0 * cs * hxy + ss * hyy
        fyy[i] += ss * hxx + 2.0 * cs * hxy + cc * hyy
        fxy[i] += cs * (hxx - hyy) + c2 * hxy


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _dpie_potential_block(x, y, row, out):
    xc, yc, c, sn, q2, sb, scale = row[0], row[1], row[2], row[3], row[4], row[5], row[6]
    amp, a, s, sb2, const = row[7], row[8], row[9], row[10], row[11]
    ds = s - a
    one_q2 = 1.0 + q2
    for i in range(x.size):
        xp, yp = _to_major_axis(x[i], y[i], xc, yc, c, sn)
        xx = xp * xp
        yy = yp * yp
        pa, ps, dpsi = _dpie_psis(xx, yy, q2, a, s)
        tx = atan_ratio(sb * xp * (dpsi + ds), (pa + a) * (ps + s) + sb2 * xx)
        ty = atanh_ratio(sb * yp * (dpsi + q2 * ds), (pa + q2 * a) * (ps + q2 * s) - sb2 * yy)
        r2 = xx + yy
        da = max(one_q2 * a * a + r2 + 2.0 * a * pa, _R2_MIN)
        db = one_q2 * s * s + r2 + 2.0 * s * ps
        logs = a * log_positive(da) - s * log_positive(db)
        out[i] += scale * (xp * tx + yp * ty) - amp * 0.5 * logs + const


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _dpie_convergence_block(x, y, row, out):
    xc, yc, c, sn, q2, half = row[0], row[1], row[2], row[3], row[4], 0.5 * row[7]
    a, s = row[8], row[9]
    for i in range(x.size):
        xp, yp = _to_major_axis(x[i], y[i], xc, yc, c, sn)
        xx = xp * xp
        yy = yp * yp
        pa, ps, dpsi = _dpie_psis(xx, yy, q2, a, s)
        # 1/pa - 1/ps = (ps - pa) / (pa ps), without cancellation
        out[i] += half * dpsi / (pa * ps)


@njit(parallel=True, cache=True, error_model="numpy")
def dpie_accumulate(x, y, table, mode, o1, o2, o3):
    """Add the dPIE quantity ``mode`` of every row of ``table`` into the outputs (as
    :func:`sie_accumulate`: parallel over pixel blocks, members inside)."""
    n = x.size
    nblocks = (n + BLOCK - 1) // BLOCK
    for blk in prange(nblocks):
        start = blk * BLOCK
        stop = min(start + BLOCK, n)
        xb, yb = x[start:stop], y[start:stop]
        b1, b2, b3 = o1[start:stop], o2[start:stop], o3[start:stop]
        for j in range(table.shape[0]):
            row = table[j]
            if mode == DEFLECTION:
                _dpie_deflection_block(xb, yb, row, b1, b2)
            elif mode == HESSIAN:
                _dpie_hessian_block(xb, yb, row, b1, b2, b3)
            elif mode == POTENTIAL:
                _dpie_potential_block(xb, yb, row, b1)
            else:
                _dpie_convergence_block(xb, yb, row, b1)
