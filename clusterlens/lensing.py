"""Lensing maps of any mass profile: grids, ray shooting, magnification, critical curves.

Everything here is written once against the :class:`~clusterlens.profiles.MassProfile`
interface, so it works for a single profile, a ``halo + members`` composite or a user's own
profile alike.

Conventions: image-plane and source-plane angles in arcsec; ``x`` grows with the column
index and ``y`` with the row index of a pixel grid, with the origin at the grid's centre.
With the lensing potential :math:`\\psi` and its second derivatives
:math:`f_{ij} = \\partial_i \\partial_j \\psi`, the convergence is
:math:`\\kappa = (f_{xx} + f_{yy})/2`, the shear
:math:`\\gamma = \\sqrt{((f_{xx} - f_{yy})/2)^2 + f_{xy}^2}`, and the two eigenvalues of the
lens-mapping Jacobian :math:`A = \\partial \\beta / \\partial \\theta` are

* :math:`\\lambda_t = 1 - \\kappa - \\gamma` (zero on the **tangential** critical curves), and
* :math:`\\lambda_r = 1 - \\kappa + \\gamma` (zero on the **radial** critical curves),

so that the magnification is :math:`\\mu = 1 / \\det A = 1 / (\\lambda_t \\lambda_r)`
(Schneider, Ehlers & Falco 1992, ch. 5; Narayan & Bartelmann 1996, sec. 3.3).

Critical curves are traced adaptively (see :func:`critical_curves`): the eigenvalues are
evaluated on a coarse grid, only the cells where a curve can pass are evaluated at full
resolution and contoured, and every contour point is then moved onto the exact zero of its
eigenvalue by a bracketed root search, so the curves are accurate far below a pixel.

The module is about 800 lines on purpose: nearly half of it is the private steps of that
adaptive tracer (``_Grid`` to ``_polish``), which serve :func:`critical_curves`,
:func:`caustics` and :func:`einstein_radius` only and are read together with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from clusterlens._validation import as_coordinates, check_int, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.profiles.base import Composite, MassProfile

__all__ = [
    "pixel_grid",
    "ray_shoot",
    "magnification",
    "LensCurves",
    "critical_curves",
    "caustics",
    "einstein_radius",
]

# Root polishing: a contour point is final when its eigenvalue is below _POLISH_TOL
# (dimensionless; the eigenvalues change by about 1/theta_E per arcsec, so this is a position
# error of about 1e-7 theta_E), or its bracket or last step on the grid edge is below
# _POLISH_BRACKET pixel.
_POLISH_TOL = 1e-7
_POLISH_BRACKET = 1e-4
_SECANT_STEPS = 8
_MULTISECTION = 31


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _check_lens(lens, owner: str) -> MassProfile:
    if not isinstance(lens, MassProfile):
        raise ParameterError(
            f"The 'lens' parameter of {owner} must be a MassProfile (for example an ENFW, an "
            f"SIE or their sum). Got {type(lens).__name__} instead."
        )
    return lens


def _check_center(center, owner: str) -> tuple[float, float]:
    try:
        cx, cy = center
    except (TypeError, ValueError):
        raise ParameterError(
            f"The 'center' parameter of {owner} must be a pair (x, y) in arcsec. "
            f"Got {center!r} instead."
        ) from None
    return check_scalar(cx, "center[0]", owner), check_scalar(cy, "center[1]", owner)


def _check_shape(n_pix, owner: str) -> tuple[int, int]:
    if isinstance(n_pix, Integral) and not isinstance(n_pix, bool):
        n_pix = (n_pix, n_pix)
    try:
        ny, nx = n_pix
    except (TypeError, ValueError):
        raise ParameterError(
            f"The 'n_pix' parameter of {owner} must be an integer or a pair (n_y, n_x). "
            f"Got {n_pix!r} instead."
        ) from None
    return check_int(ny, "n_pix", owner, low=2), check_int(nx, "n_pix", owner, low=2)


# --------------------------------------------------------------------------------------------
# grids, ray shooting, magnification
# --------------------------------------------------------------------------------------------
def pixel_grid(
    n_pix, pixel_scale: float, *, center=(0.0, 0.0), supersample: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Image-plane coordinates (arcsec) of the (sub-)pixel centres of a cutout.

    Parameters
    ----------
    n_pix : int or (int, int)
        Number of pixels per side, or ``(n_y, n_x)`` (rows, columns).
    pixel_scale : float
        Pixel size in arcsec.
    center : (float, float), optional
        Image-plane position (arcsec) of the grid's centre.
    supersample : int, optional
        Split each pixel into ``supersample x supersample`` sub-pixels; the arrays then have
        shape ``(n_y s, n_x s)`` and their block means over ``s x s`` give back the pixel
        centres below.

    Returns
    -------
    x, y : numpy.ndarray
        Arrays of shape ``(n_y, n_x)`` (without supersampling):
        ``x[i, j] = (j - (n_x - 1)/2) * pixel_scale + center[0]`` grows with the column index
        ``j`` and ``y[i, j] = (i - (n_y - 1)/2) * pixel_scale + center[1]`` with the row index
        ``i``; the origin is the centre of the cutout (between
        the two middle pixels when a side is even). Shown with ``origin="lower"``, +x is to
        the right and +y up.
    """
    ny, nx = _check_shape(n_pix, "pixel_grid")
    s = check_scalar(pixel_scale, "pixel_scale", "pixel_grid", low=0.0, low_inclusive=False)
    cx, cy = _check_center(center, "pixel_grid")
    k = check_int(supersample, "supersample", "pixel_grid", low=1)
    xs = ((np.arange(nx * k) + 0.5) / k - 0.5 - (nx - 1) / 2.0) * s + cx
    ys = ((np.arange(ny * k) + 0.5) / k - 0.5 - (ny - 1) / 2.0) * s + cy
    x, y = np.meshgrid(xs, ys)
    return x, y


def ray_shoot(lens: MassProfile, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Map image-plane positions to the source plane with the lens equation.

    :math:`\\beta = \\theta - \\alpha(\\theta)`.

    Parameters
    ----------
    lens : MassProfile
        The lens (any profile or sum of profiles).
    x, y : array_like
        Image-plane positions in arcsec (broadcastable shapes).

    Returns
    -------
    beta_x, beta_y : numpy.ndarray
        Source-plane positions in arcsec, in the broadcast shape of ``x`` and ``y``.
    """
    _check_lens(lens, "ray_shoot")
    xf, yf, shape = as_coordinates(x, y, "ray_shoot")
    ax, ay = lens._deflection(xf, yf)
    return (xf - ax).reshape(shape), (yf - ay).reshape(shape)


def _eigenvalues(fxx, fxy, fyy) -> tuple[np.ndarray, np.ndarray]:
    """Tangential and radial eigenvalues ``(1 - kappa - gamma, 1 - kappa + gamma)``."""
    kappa = 0.5 * (fxx + fyy)
    gamma = np.hypot(0.5 * (fxx - fyy), fxy)
    return 1.0 - kappa - gamma, 1.0 - kappa + gamma


def magnification(lens: MassProfile, x, y) -> np.ndarray:
    """Signed magnification from the Hessian of the lensing potential.

    :math:`\\mu = 1 / [(1 - f_{xx})(1 - f_{yy}) - f_{xy}^2]`: negative for images of odd
    parity, ``+inf`` exactly on a critical curve (where the determinant is zero).

    Parameters
    ----------
    lens : MassProfile
        The lens.
    x, y : array_like
        Image-plane positions in arcsec (broadcastable shapes).

    Returns
    -------
    numpy.ndarray
        Dimensionless magnification in the broadcast shape of ``x`` and ``y``.
    """
    _check_lens(lens, "magnification")
    xf, yf, shape = as_coordinates(x, y, "magnification")
    fxx, fxy, fyy = lens._hessian(xf, yf)
    det = (1.0 - fxx) * (1.0 - fyy) - fxy * fxy
    mu = np.full_like(det, np.inf)
    np.divide(1.0, det, out=mu, where=det != 0.0)
    return mu.reshape(shape)


# --------------------------------------------------------------------------------------------
# critical curves and caustics
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LensCurves:
    """Tangential and radial curves of a lens: critical curves or their caustics.

    Attributes
    ----------
    tangential, radial : tuple of numpy.ndarray
        One ``(N, 2)`` array of ``(x, y)`` positions in arcsec per connected curve. A closed
        curve repeats its first point at the end; a curve that leaves the traced field is
        open and ends on the field's border.
    pixel_scale : float
        Resolution (arcsec) of the grid the curves were traced on.
    """

    tangential: tuple[np.ndarray, ...]
    radial: tuple[np.ndarray, ...]
    pixel_scale: float

    def __post_init__(self):
        for name in ("tangential", "radial"):
            curves = tuple(np.asarray(c, dtype=np.float64) for c in getattr(self, name))
            for c in curves:
                if c.ndim != 2 or c.shape[1] != 2:
                    raise ParameterError(
                        f"The {name!r} curves of LensCurves must be (N, 2) arrays. "
                        f"Got shape {c.shape} instead."
                    )
            object.__setattr__(self, name, curves)

    @property
    def all(self) -> tuple[np.ndarray, ...]:
        """Tangential curves followed by radial curves."""
        return self.tangential + self.radial

    def __len__(self) -> int:
        return len(self.tangential) + len(self.radial)


@dataclass(frozen=True)
class _Grid:
    """The fine pixel grid curves are traced on (node ``(i, j)`` at ``(x0 + j s, y0 + i s)``)."""

    ny: int
    nx: int
    s: float
    x0: float
    y0: float

    def xy(self, rows, cols):
        return self.x0 + np.asarray(cols) * self.s, self.y0 + np.asarray(rows) * self.s


def _profile_centres(lens: MassProfile) -> tuple[np.ndarray, np.ndarray]:
    """Centres (arcsec) of the parts of ``lens`` that expose ``x0`` and ``y0`` attributes.

    Member galaxies (SIE, SIEPopulation) have their own small critical curves around their
    centres; tracing refines the grid there so that none is missed between coarse nodes.
    """
    parts = lens.components if isinstance(lens, Composite) else (lens,)
    xs, ys = [], []
    for p in parts:
        x0, y0 = getattr(p, "x0", None), getattr(p, "y0", None)
        if x0 is None or y0 is None:
            continue
        try:
            x0 = np.atleast_1d(np.asarray(x0, dtype=np.float64)).ravel()
            y0 = np.atleast_1d(np.asarray(y0, dtype=np.float64)).ravel()
        except (TypeError, ValueError):
            continue
        if x0.shape == y0.shape:
            xs.append(x0)
            ys.append(y0)
    if not xs:
        return np.empty(0), np.empty(0)
    return np.concatenate(xs), np.concatenate(ys)


def _neighbour_stats(v: np.ndarray):
    """Min and max over the 8 neighbours of every node, ignoring NaN, and whether all 8
    neighbours are known."""
    p = np.pad(v, 1, constant_values=np.nan)
    ny, nx = v.shape
    shifts = np.stack(
        [
            p[1 + di : 1 + di + ny, 1 + dj : 1 + dj + nx]
            for di in (-1, 0, 1)
            for dj in (-1, 0, 1)
            if di or dj
        ]
    )
    # fmin/fmax skip NaN (nodes not evaluated) without warning on all-NaN neighbourhoods
    return (
        np.fmin.reduce(shifts, axis=0),
        np.fmax.reduce(shifts, axis=0),
        np.isfinite(shifts).all(axis=0),
    )


def _active_cells(lam: np.ndarray) -> np.ndarray:
    """Cells where a zero contour of ``lam`` (values at the nodes of one level) may pass.

    A cell is active when ``lam`` changes sign over its corners; when the smallest ``|lam|``
    at its corners is not larger than the largest second difference of ``lam`` at them (a
    zero can bend into a cell without a sign change at its corners only through the
    curvature of ``lam``: for a contour of curvature ``k`` the corners it bulges past are
    within ``k h^2 / 8`` of it, and the second difference across them is about
    ``|grad lam| k h^2``); or when one of its corners is a strict local extremum among all 8
    neighbours (a closed contour can hide between nodes only around an extremum, and a
    narrow spike's extremal node is a corner of the cell holding it). Unknown (NaN) values
    are ignored.
    """
    # fmin/fmax skip NaN without warnings
    corners = np.stack([lam[:-1, :-1], lam[:-1, 1:], lam[1:, :-1], lam[1:, 1:]])
    sign_change = (np.fmin.reduce(corners, axis=0) <= 0) & (np.fmax.reduce(corners, axis=0) >= 0)
    # Without a sign change at the corners, a zero can only bend into a cell through the
    # curvature of lam: |lam| at a corner must then be below lam's second difference there.
    bend = _second_difference(lam)
    bends = np.stack([bend[:-1, :-1], bend[:-1, 1:], bend[1:, :-1], bend[1:, 1:]])
    near = np.fmin.reduce(np.abs(corners), axis=0) <= np.fmax.reduce(bends, axis=0)
    nmin, nmax, complete = _neighbour_stats(lam)
    # an extremum is only meaningful among known neighbours all round: on the border of the
    # region refined so far most nodes would look like one
    ext = complete & ((lam < nmin) | (lam > nmax))
    return sign_change | near | ext[:-1, :-1] | ext[:-1, 1:] | ext[1:, :-1] | ext[1:, 1:]


def _second_difference(v: np.ndarray) -> np.ndarray:
    """Largest |second difference| of ``v`` at every node along rows, columns and both
    diagonals (NaN where none is known)."""
    p = np.pad(v, 1, constant_values=np.nan)
    ny, nx = v.shape

    def at(di, dj):
        return p[1 + di : 1 + di + ny, 1 + dj : 1 + dj + nx]

    diffs = np.stack(
        [np.abs(at(-di, -dj) - 2 * v + at(di, dj)) for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1))]
    )
    return np.fmax.reduce(diffs, axis=0)


def _coarse_index(n: int, step: int) -> np.ndarray:
    idx = np.arange(0, n, step)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def _nearest_coarse(index: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """Position in ``index`` (sorted fine indices of coarse nodes) nearest to ``fine``."""
    k = np.clip(np.searchsorted(index, fine), 1, len(index) - 1)
    return np.where(fine - index[k - 1] <= index[k] - fine, k - 1, k)


def _trace_fields(lens, grid: _Grid, coarse: int):
    """Tangential and radial eigenvalue fields on the fine grid, NaN where not evaluated.

    Quadtree refinement: the nodes every ``coarse`` pixels are evaluated; then, halving the
    step each time, the nodes of the finer level that lie in the active cells
    (:func:`_active_cells`, plus the cells around profile centres) of the current level.
    """
    lt = np.full((grid.ny, grid.nx), np.nan)
    lr = np.full((grid.ny, grid.nx), np.nan)

    def evaluate(rows, cols):
        todo = np.isnan(lt[rows, cols])
        rows, cols = rows[todo], cols[todo]
        if rows.size:
            x, y = grid.xy(rows, cols)
            lt[rows, cols], lr[rows, cols] = _eigenvalues(*lens._hessian(x, y))

    step = coarse
    ir, ic = _coarse_index(grid.ny, step), _coarse_index(grid.nx, step)
    rows, cols = np.meshgrid(ir, ic, indexing="ij")
    evaluate(rows.ravel(), cols.ravel())

    px, py = _profile_centres(lens)
    fc, fr = (px - grid.x0) / grid.s, (py - grid.y0) / grid.s
    inside = (fc >= 0) & (fc <= grid.nx - 1) & (fr >= 0) & (fr <= grid.ny - 1)
    fc, fr = fc[inside], fr[inside]

    while step > 1:
        sub = np.ix_(ir, ic)
        cells = _active_cells(lt[sub]) | _active_cells(lr[sub])
        # the 2 x 2 cells around the node nearest to every profile centre: they cover at
        # least half a cell on every side of the centre, and a member's curve reaching
        # farther passes within reach of a node and is flagged by _active_cells
        if fc.size:
            nr, nc = _nearest_coarse(ir, fr), _nearest_coarse(ic, fc)
            for dr in (-1, 0):
                for dc in (-1, 0):
                    cells[np.clip(nr + dr, 0, len(ir) - 2), np.clip(nc + dc, 0, len(ic) - 2)] = True
        step //= 2
        ir2, ic2 = _coarse_index(grid.ny, step), _coarse_index(grid.nx, step)
        # finer-level nodes of the active cells (a node on a cell border is in both cells)
        row_cell = np.clip(np.searchsorted(ir, ir2, side="right") - 1, 0, len(ir) - 2)
        col_cell = np.clip(np.searchsorted(ic, ic2, side="right") - 1, 0, len(ic) - 2)
        a = cells[row_cell[:, None], col_cell[None, :]]
        nodes = a.copy()
        nodes[1:, :] |= a[:-1, :]
        nodes[:, 1:] |= a[:, :-1]
        nodes[1:, 1:] |= a[:-1, :-1]
        rows, cols = np.nonzero(nodes)
        evaluate(ir2[rows], ic2[cols])
        ir, ic = ir2, ic2
    return lt, lr


def _edge_brackets(paths, field: np.ndarray, grid: _Grid):
    """Grid edge of every contour point: start node, step (dr, dc), end values, start t.

    Marching squares puts every point on a grid edge whose end nodes have opposite signs
    (or on a node, where the value is zero: ``dr = dc = 0``).
    """
    pts = np.concatenate(paths) if paths else np.empty((0, 2))
    r, c = pts[:, 0], pts[:, 1]
    r0, c0 = np.floor(r), np.floor(c)
    vertical = r > r0  # the point lies between rows r0 and r0 + 1 of column c
    horizontal = ~vertical & (c > c0)
    ra, ca = r0.astype(np.intp), c0.astype(np.intp)
    rb = np.minimum(np.where(vertical, ra + 1, ra), grid.ny - 1)
    cb = np.minimum(np.where(horizontal, ca + 1, ca), grid.nx - 1)
    t0 = np.where(vertical, r - r0, c - c0)
    fa, fb = field[ra, ca], field[rb, cb]
    t0 = _cubic_start(field, ra, ca, rb - ra, cb - ca, fa, fb, t0)
    return ra, ca, rb - ra, cb - ca, fa, fb, t0


def _cubic_start(field, ra, ca, dr, dc, fa, fb, t_linear):
    """A better first guess than marching squares' linear one: the zero in (0, 1) of the
    cubic through the four nodes at t = -1, 0, 1, 2 along the edge's grid line, where those
    are known; the linear guess elsewhere (and wherever the cubic misbehaves)."""
    ny, nx = field.shape
    rm, cm = ra - dr, ca - dc  # the node before the edge
    rp, cp = ra + 2 * dr, ca + 2 * dc  # the node after it
    ok = (rm >= 0) & (cm >= 0) & (rp < ny) & (cp < nx) & ((dr != 0) | (dc != 0))
    fm = np.full(fa.shape, np.nan)
    fp = np.full(fa.shape, np.nan)
    fm[ok] = field[rm[ok], cm[ok]]
    fp[ok] = field[rp[ok], cp[ok]]
    # Lagrange cubic through (-1, fm), (0, fa), (1, fb), (2, fp) as a + b t + c t^2 + d t^3
    b = -fm / 3 - fa / 2 + fb - fp / 6
    c = fm / 2 - fa + fb / 2
    d = -fm / 6 + fa / 2 - fb / 2 + fp / 6
    t = t_linear.copy()
    for _ in range(3):  # Newton from the linear guess
        slope = b + t * (2 * c + 3 * d * t)
        value = fa + t * (b + t * (c + d * t))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = t - value / slope
    good = np.isfinite(t) & (t > 0) & (t < 1) & (np.abs(t - t_linear) < 0.5)
    return np.where(good, t, t_linear)


def _polish(lens, paths_t, paths_r, lt, lr, grid: _Grid):
    """Move contour points onto the exact zeros of their eigenvalues, along their edges.

    The zero on each point's grid edge is bracketed, so the search never leaves the edge and
    the contours keep their topology: a few safeguarded secant steps (a step leaving the
    bracket falls back to regula falsi) settle almost every point; the few left (next to a
    member's singular centre) are finished by multisection, 31 points per bracket per step.
    Both kinds are polished together so that each step is one call of the lens' Hessian.
    """
    brackets = [_edge_brackets(p, f, grid) for p, f in ((paths_t, lt), (paths_r, lr))]
    ra, ca, dr, dc, fa, fb, t = (np.concatenate(parts) for parts in zip(*brackets, strict=True))
    which = np.repeat([0, 1], [len(brackets[0][0]), len(brackets[1][0])])
    dr, dc = dr.astype(np.float64), dc.astype(np.float64)
    ta, tb = np.zeros(t.size), np.ones(t.size)
    f_now = np.zeros(t.size)

    def lam(idx, tt):
        """Eigenvalue of points ``idx`` at edge positions ``tt`` (same shape as ``idx``)."""
        x, y = grid.xy(ra[idx] + tt * dr[idx], ca[idx] + tt * dc[idx])
        shape = x.shape
        t_, r_ = _eigenvalues(*lens._hessian(x.ravel().copy(), y.ravel().copy()))
        return np.where(which[idx] == 0, t_.reshape(shape), r_.reshape(shape))

    active = np.nonzero((dr != 0) | (dc != 0))[0]
    # the previous iterate of the secant; at first the edge end across the zero from t
    t_prev, f_prev = np.zeros(t.size), fa.copy()
    for it in range(_SECANT_STEPS):
        if active.size == 0:
            break
        a = active
        if it == 0:  # the cubic (or marching squares' linear) first guess
            ts = t[a]
        else:
            denom = f_now[a] - f_prev[a]
            with np.errstate(divide="ignore", invalid="ignore"):
                ts = t[a] - f_now[a] * (t[a] - t_prev[a]) / denom
            # safeguard: a secant step leaving the bracket falls back to regula falsi on it
            bad = ~np.isfinite(ts) | (ts <= ta[a]) | (ts >= tb[a])
            rf = (ta[a] * fb[a] - tb[a] * fa[a]) / np.where(fb[a] != fa[a], fb[a] - fa[a], 1.0)
            ts = np.where(bad, np.clip(rf, ta[a], tb[a]), ts)
        ft = lam(a, ts)
        if it == 0:
            t_prev[a] = np.where(np.sign(ft) == np.sign(fa[a]), tb[a], ta[a])
            f_prev[a] = np.where(np.sign(ft) == np.sign(fa[a]), fb[a], fa[a])
        else:
            t_prev[a], f_prev[a] = t[a], f_now[a]
        step = np.abs(ts - t[a]) if it else np.full(a.size, np.inf)
        t[a], f_now[a] = ts, ft
        keep_b = np.sign(ft) == np.sign(fa[a])  # the zero lies in [ts, tb]
        ta[a], tb[a] = np.where(keep_b, ts, ta[a]), np.where(keep_b, tb[a], ts)
        fa[a], fb[a] = np.where(keep_b, ft, fa[a]), np.where(keep_b, fb[a], ft)
        # converged: on the zero, or its bracket or its last step (the secant converges
        # superlinearly, so the step bounds the error) below _POLISH_BRACKET
        active = a[
            (np.abs(ft) > _POLISH_TOL)
            & (tb[a] - ta[a] > _POLISH_BRACKET)
            & (step > _POLISH_BRACKET)
        ]
    frac = np.arange(1, _MULTISECTION + 1) / (_MULTISECTION + 1)
    while active.size:
        a = active
        grid_t = ta[a, None] + (tb[a] - ta[a])[:, None] * frac
        f = lam(np.broadcast_to(a[:, None], grid_t.shape), grid_t)
        # the first sub-interval whose right end has left fa's sign holds a zero
        vals = np.column_stack([fa[a], f, fb[a]])
        ts_all = np.column_stack([ta[a], grid_t, tb[a]])
        k = np.argmax(np.sign(vals[:, 1:]) != np.sign(fa[a])[:, None], axis=1)
        rows = np.arange(a.size)
        ta[a], fa[a] = ts_all[rows, k], vals[rows, k]
        tb[a], fb[a] = ts_all[rows, k + 1], vals[rows, k + 1]
        denom = fb[a] - fa[a]
        t[a] = np.where(
            denom != 0.0, (ta[a] * fb[a] - tb[a] * fa[a]) / np.where(denom, denom, 1), ta[a]
        )
        active = a[tb[a] - ta[a] > _POLISH_BRACKET]

    rows, cols = ra + t * dr, ca + t * dc
    x, y = grid.xy(rows, cols)
    points = np.column_stack([x, y])
    out, start = [], 0
    for paths in (paths_t, paths_r):
        curves = []
        for p in paths:
            curves.append(points[start : start + len(p)])
            start += len(p)
        out.append(curves)
    return out


def critical_curves(
    lens: MassProfile,
    *,
    n_pix=800,
    pixel_scale: float = 0.125,
    center=(0.0, 0.0),
    coarse: int = 8,
) -> LensCurves:
    """Tangential and radial critical curves of a lens inside a square field.

    The curves are the zero contours of the Jacobian eigenvalues
    :math:`\\lambda_t = 1 - \\kappa - \\gamma` (tangential) and
    :math:`\\lambda_r = 1 - \\kappa + \\gamma` (radial) on the pixel grid
    ``pixel_grid(n_pix, pixel_scale, center=center)``, traced adaptively:

    1. the eigenvalues are evaluated on every ``coarse``-th node of the grid (``coarse`` a
       power of two);
    2. quadtree refinement, halving the step down to one pixel: a cell is split (the nodes
       of the next level inside it evaluated) when ``lambda`` changes sign over its corners,
       when the smallest ``|lambda|`` at its corners is below the second difference of
       ``lambda`` there (a curved zero line can bulge into a cell between its corners),
       when one of its corners is a strict local extremum of ``lambda``, or when
       it touches the node nearest to the centre of a profile part that exposes
       ``x0``/``y0`` (member galaxies, whose small critical curves can hide between nodes);
    3. the refined nodes are contoured with marching squares
       (:func:`skimage.measure.find_contours`), and every contour point is polished onto the
       exact zero of its eigenvalue along its grid edge by a bracketed root search.

    Resolution limit: a closed critical curve is found when it encloses a disc of radius
    ``pixel_scale / sqrt(2)`` (it then contains a pixel node) and lies in a refined cell;
    smaller curves (member galaxies with Einstein radii below about ``0.7 pixel_scale``) are
    missed, as on any pixel grid; loops that polishing shrinks below 1e-3 pixel (a node that
    is on the zero to rounding) are dropped. Use ``coarse=1`` to evaluate every pixel (brute
    force): it gives the same curves.
    The points are exact zeros to about 1e-4 pixel; their spacing is about one pixel.

    Parameters
    ----------
    lens : MassProfile
        The lens.
    n_pix : int or (int, int), optional
        Pixels per side of the traced field, or ``(n_y, n_x)``. Default 800.
    pixel_scale : float, optional
        Pixel size in arcsec. Default 0.125 (with 800 pixels, a 100 arcsec field).
    center : (float, float), optional
        Centre of the field in arcsec. Default ``(0, 0)``.
    coarse : int, optional
        Pixels per coarse cell of the first pass. Default 8.

    Returns
    -------
    LensCurves
        ``.tangential`` and ``.radial`` lists of ``(N, 2)`` arrays of ``(x, y)`` in arcsec.

    Examples
    --------
    >>> from clusterlens.lensing import critical_curves
    >>> curves = critical_curves(lens, n_pix=400, pixel_scale=0.25)  # doctest: +SKIP
    >>> [c.shape for c in curves.tangential]  # doctest: +SKIP
    """
    owner = "critical_curves"
    _check_lens(lens, owner)
    ny, nx = _check_shape(n_pix, owner)
    s = check_scalar(pixel_scale, "pixel_scale", owner, low=0.0, low_inclusive=False)
    cx, cy = _check_center(center, owner)
    coarse = check_int(coarse, "coarse", owner, low=1)
    if coarse & (coarse - 1):
        raise ParameterError(
            f"The 'coarse' parameter of {owner} must be a power of two (1, 2, 4, 8, ...). "
            f"Got {coarse} instead."
        )
    grid = _Grid(ny, nx, s, cx - (nx - 1) / 2.0 * s, cy - (ny - 1) / 2.0 * s)

    from skimage.measure import find_contours  # imported here: only this function needs it

    lt, lr = _trace_fields(lens, grid, coarse)
    tangential, radial = _polish(lens, find_contours(lt, 0.0), find_contours(lr, 0.0), lt, lr, grid)
    tangential, radial = _drop_degenerate(tangential, s), _drop_degenerate(radial, s)
    return LensCurves(tuple(tangential), tuple(radial), s)


def _drop_degenerate(curves: list[np.ndarray], pixel_scale: float) -> list[np.ndarray]:
    """Drop closed curves that polishing shrank below 1e-3 pixel: a single node whose
    eigenvalue is zero to rounding, not a resolved critical curve."""
    return [c for c in curves if np.ptp(c, axis=0).max() > 1e-3 * pixel_scale]


def caustics(
    lens: MassProfile,
    critical: LensCurves | None = None,
    *,
    n_pix=800,
    pixel_scale: float = 0.125,
    center=(0.0, 0.0),
    coarse: int = 8,
) -> LensCurves:
    """Caustics: the critical curves mapped to the source plane by :func:`ray_shoot`.

    Parameters
    ----------
    lens : MassProfile
        The lens.
    critical : LensCurves, optional
        Critical curves of ``lens`` from :func:`critical_curves`; traced here with the
        options below when not given (the options are ignored when it is).
    n_pix, pixel_scale, center, coarse
        As in :func:`critical_curves`.

    Returns
    -------
    LensCurves
        ``.tangential`` caustics (the images of the tangential critical curves) and
        ``.radial`` caustics, as ``(N, 2)`` arrays of source-plane ``(x, y)`` in arcsec.
    """
    _check_lens(lens, "caustics")
    if critical is None:
        critical = critical_curves(
            lens, n_pix=n_pix, pixel_scale=pixel_scale, center=center, coarse=coarse
        )
    elif not isinstance(critical, LensCurves):
        raise ParameterError(
            "The 'critical' parameter of caustics must be the LensCurves returned by "
            f"critical_curves. Got {type(critical).__name__} instead."
        )

    # one deflection call for all curves: each call of a parallel kernel has a fixed cost
    curves = critical.all
    if curves:
        pts = np.concatenate(curves)
        ax, ay = lens._deflection(pts[:, 0].copy(), pts[:, 1].copy())
        beta = np.column_stack([pts[:, 0] - ax, pts[:, 1] - ay])
        mapped = np.split(beta, np.cumsum([len(c) for c in curves])[:-1])
    else:
        mapped = []
    n_t = len(critical.tangential)
    return LensCurves(tuple(mapped[:n_t]), tuple(mapped[n_t:]), critical.pixel_scale)


# --------------------------------------------------------------------------------------------
# Einstein radius
# --------------------------------------------------------------------------------------------
def _polygon_area(c: np.ndarray) -> float:
    """Unsigned shoelace area (arcsec^2) of a closed polygon."""
    x, y = c[:, 0], c[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _contains(c: np.ndarray, px: float, py: float) -> bool:
    """Whether the point lies inside the closed polygon (even-odd crossing rule)."""
    x1, y1 = c[:, 0], c[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    crosses = (y1 > py) != (y2 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xcross = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
    return bool(np.count_nonzero(crosses & (px < xcross)) % 2)


def _is_closed(c: np.ndarray) -> bool:
    return len(c) > 3 and bool(np.all(c[0] == c[-1]))


def einstein_radius(
    lens: MassProfile,
    *,
    lens_center=(0.0, 0.0),
    critical: LensCurves | None = None,
    n_pix=800,
    pixel_scale: float = 0.125,
    center=None,
    coarse: int = 8,
) -> float:
    """Effective Einstein radius: ``sqrt(area inside the tangential critical curve / pi)``.

    The curve used is the tangential critical curve that encloses ``lens_center``; when
    several do (a member galaxy's curve nested in the cluster's, say), the one enclosing the
    largest area. Curves around member galaxies elsewhere are ignored. A lens with no
    tangential critical curve around its centre, and :math:`\\lambda_t \\ge 0` there (too weak
    to lens strongly), has an Einstein radius of 0.

    For an SIS this is its theta_E; for an SIE in the intermediate-axis convention too (the
    kappa = 1/2 ellipse has area pi theta_E^2). The area is that of the polygon through the
    polished curve points, accurate to about ``(pixel_scale / theta_E)^2`` relative.

    Parameters
    ----------
    lens : MassProfile
        The lens.
    lens_center : (float, float), optional
        The lens centre in arcsec (the BCG or halo centre). Default ``(0, 0)``.
    critical : LensCurves, optional
        Critical curves from :func:`critical_curves`; traced here when not given.
    n_pix, pixel_scale, coarse
        As in :func:`critical_curves`.
    center : (float, float), optional
        Centre of the traced field; defaults to ``lens_center``.

    Returns
    -------
    float
        Effective Einstein radius in arcsec.

    Raises
    ------
    ParameterError
        If the tangential critical curve around ``lens_center`` leaves the traced field, or
        the whole field is inside it (enlarge the field).
    """
    owner = "einstein_radius"
    _check_lens(lens, owner)
    lx, ly = _check_center(lens_center, owner)
    if critical is None:
        critical = critical_curves(
            lens,
            n_pix=n_pix,
            pixel_scale=pixel_scale,
            center=(lx, ly) if center is None else center,
            coarse=coarse,
        )
    elif not isinstance(critical, LensCurves):
        raise ParameterError(
            "The 'critical' parameter of einstein_radius must be the LensCurves returned by "
            f"critical_curves. Got {type(critical).__name__} instead."
        )
    best = 0.0
    for c in critical.tangential:
        if len(c) < 3 or not _contains(c, lx, ly):
            continue
        if not _is_closed(c):
            raise ParameterError(
                "The tangential critical curve around 'lens_center' of einstein_radius leaves "
                "the traced field; pass a larger 'n_pix' or 'pixel_scale'."
            )
        best = max(best, _polygon_area(c))
    if best == 0.0:
        # No closed curve around the centre: either the lens is subcritical there, or the
        # centre sits in a critical region whose border the traced field does not contain.
        lam_t = _eigenvalues(*lens._hessian(np.array([lx]), np.array([ly])))[0][0]
        if not lam_t >= 0.0:
            raise ParameterError(
                "The 'lens_center' of einstein_radius lies inside a tangential critical "
                "region whose border is not a closed curve inside the traced field; pass a "
                "larger 'n_pix' or 'pixel_scale'."
            )
    return math.sqrt(best / math.pi)
