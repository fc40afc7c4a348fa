"""The elliptical Sérsic light profile and its rendering on (ray-traced) pixel grids.

Conventions: angles in arcsec, position angle ``phi`` in degrees counter-clockwise from +x,
fluxes in nanomaggies (AB zero point 22.5) in the bands g, r, z.  ``r_e`` is the
*circularised* half-light radius: the elliptical radius is ``R^2 = q x'^2 + y'^2 / q``, so the
half-light ellipse has semi-axes ``r_e / sqrt(q)`` and ``r_e sqrt(q)`` (the convention of
lenstronomy's ``SERSIC_ELLIPSE`` and of most lens modelling codes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc, gammaincinv, gammaln

from clusterlens._photometry import ZERO_POINT
from clusterlens._validation import as_coordinates, check_array, check_int, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.lensing import pixel_grid
from clusterlens.sources._kernels import (
    pixel_footprints,
    pixels_within,
    sersic_unit_sb,
    steep_pixel_flags,
    steep_pixel_flags_at,
)

__all__ = [
    "BANDS",
    "Sersic",
    "StructuredSource",
    "sersic_b",
    "render_sersic",
    "render_sersic_adaptive",
]

#: Band order of every image and flux tuple.
BANDS: tuple[str, ...] = ("g", "r", "z")


def sersic_b(n: float) -> float:
    """Exact Sérsic ``b_n``: the root of ``P(2n, b_n) = 1/2`` (regularised lower gamma).

    With it half of the total light falls inside ``R = r_e`` (Ciotti & Bertin 1999 give the
    asymptotic series ``b_n ~ 2n - 1/3 + 4/(405 n)``; here the root is exact).
    """
    n = check_scalar(n, "n", "sersic_b", low=0.0, low_inclusive=False)
    return float(gammaincinv(2.0 * n, 0.5))


@dataclass(frozen=True)
class Sersic:
    """An elliptical Sérsic source, normalised to a total flux per band.

    ``I(R) = I_0 exp[-b_n (R / r_e)^(1/n)]``, ``R^2 = q x'^2 + y'^2 / q`` with
    ``x' = cos(phi) dx + sin(phi) dy``, ``y' = -sin(phi) dx + cos(phi) dy``, and
    ``I_0 = F b_n^(2n) / (2 pi n r_e^2 Gamma(2n))`` so that the integral over the plane is
    the total flux ``F`` (Graham & Driver 2005, Eq. 4 with the circularised radius).

    Parameters
    ----------
    x, y : float
        Centre in the source plane [arcsec].
    r_e : float
        Circularised half-light radius [arcsec], > 0.
    n : float
        Sérsic index, in [0.2, 10].
    q : float
        Axis ratio b/a, in (0, 1].
    phi : float
        Position angle of the major axis [deg], counter-clockwise from +x.
    fluxes : tuple of float
        Total flux in g, r, z [nanomaggies], each >= 0.
    """

    x: float = 0.0
    y: float = 0.0
    r_e: float = 0.5
    n: float = 1.0
    q: float = 1.0
    phi: float = 0.0
    fluxes: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self):
        owner = "Sersic"
        set_ = object.__setattr__
        set_(self, "x", check_scalar(self.x, "x", owner))
        set_(self, "y", check_scalar(self.y, "y", owner))
        set_(self, "r_e", check_scalar(self.r_e, "r_e", owner, low=0.0, low_inclusive=False))
        set_(self, "n", check_scalar(self.n, "n", owner, low=0.2, high=10.0))
        set_(self, "q", check_scalar(self.q, "q", owner, low=0.0, high=1.0, low_inclusive=False))
        set_(self, "phi", check_scalar(self.phi, "phi", owner))
        fl = check_array(self.fluxes, "fluxes", owner, low=0.0, ndim=1)
        if fl.size != len(BANDS):
            raise ParameterError(
                f"The 'fluxes' parameter of Sersic must hold {len(BANDS)} values (bands "
                f"{', '.join(BANDS)}). Got {fl.size} instead."
            )
        set_(self, "fluxes", tuple(float(f) for f in fl))

    @classmethod
    def from_magnitudes(cls, magnitudes, **kwargs) -> Sersic:
        """Build from AB magnitudes in g, r, z (zero point 22.5); other fields as keywords."""
        mags = check_array(magnitudes, "magnitudes", "Sersic.from_magnitudes", ndim=1)
        return cls(fluxes=tuple(10.0 ** (0.4 * (ZERO_POINT - mags))), **kwargs)

    # --- derived quantities -------------------------------------------------------------
    @property
    def b_n(self) -> float:
        """Exact ``b_n`` of this index (see :func:`sersic_b`)."""
        return float(gammaincinv(2.0 * self.n, 0.5))

    @property
    def magnitudes(self) -> np.ndarray:
        """AB magnitudes in g, r, z (``inf`` for a zero flux)."""
        with np.errstate(divide="ignore"):
            return ZERO_POINT - 2.5 * np.log10(np.asarray(self.fluxes))

    @property
    def _log_i0(self) -> float:
        """log of the central surface brightness of the unit-flux profile [1/arcsec^2]."""
        n, b = self.n, self.b_n
        return 2.0 * n * math.log(b) - math.log(2.0 * math.pi * n * self.r_e**2) - gammaln(2 * n)

    def enclosed_fraction(self, radius) -> np.ndarray:
        """Fraction of the total flux inside the elliptical radius ``R`` [arcsec].

        ``L(<R) / L = P(2n, b_n (R / r_e)^(1/n))`` (regularised lower incomplete gamma).
        """
        r = check_array(radius, "radius", "Sersic.enclosed_fraction", low=0.0)
        return gammainc(2.0 * self.n, self.b_n * (r / self.r_e) ** (1.0 / self.n))

    # --- evaluation ---------------------------------------------------------------------
    def surface_brightness(self, beta_x, beta_y) -> np.ndarray:
        """Surface brightness [nanomaggies / arcsec^2] at source-plane positions [arcsec].

        Returns an array of shape ``(3,) + broadcast shape`` (bands g, r, z).
        """
        bx, by, shape = as_coordinates(beta_x, beta_y, "Sersic.surface_brightness")
        unit = self._unit_sb(bx, by)
        return (np.asarray(self.fluxes)[:, None] * unit).reshape((len(BANDS),) + shape)

    def _unit_sb(self, bx: np.ndarray, by: np.ndarray) -> np.ndarray:
        """Unit-flux surface brightness [1/arcsec^2] on flat float64 arrays (no checks)."""
        out = np.empty(bx.size)
        return sersic_unit_sb(
            bx,
            by,
            self.x,
            self.y,
            self.r_e,
            self.n,
            self.q,
            math.radians(self.phi),
            self.b_n,
            self._log_i0,
            out,
        )


@dataclass(frozen=True)
class StructuredSource:
    """A source made of several Sérsic components: a body plus star-forming clumps.

    The light is the sum of the components' (each normalised to its own fluxes), so the total
    flux is the sum of theirs.  Geometry attributes (``x, y, r_e, n, q, phi``) are the body's,
    so code that reads a source's centre or size works with either kind.

    Parameters
    ----------
    body : Sersic
        The main component (its centre is the source's centre).
    clumps : tuple of Sersic
        Further components (clumps), in the same source plane [arcsec].
    """

    body: Sersic
    clumps: tuple[Sersic, ...] = ()

    def __post_init__(self):
        owner = "StructuredSource"
        if not isinstance(self.body, Sersic):
            raise ParameterError(
                f"The 'body' parameter of {owner} must be a Sersic. "
                f"Got {type(self.body).__name__} instead."
            )
        try:
            clumps = tuple(self.clumps)
        except TypeError:
            clumps = (self.clumps,)
        for i, c in enumerate(clumps):
            if not isinstance(c, Sersic):
                raise ParameterError(
                    f"The 'clumps' parameter of {owner} must hold Sersic components; item {i} "
                    f"is a {type(c).__name__}."
                )
        object.__setattr__(self, "clumps", clumps)

    @property
    def components(self) -> tuple[Sersic, ...]:
        """The body followed by the clumps."""
        return (self.body,) + self.clumps

    @property
    def fluxes(self) -> tuple[float, float, float]:
        """Total flux in g, r, z [nanomaggies] (sum of the components)."""
        total = np.sum([c.fluxes for c in self.components], axis=0)
        return tuple(float(f) for f in total)

    @property
    def magnitudes(self) -> np.ndarray:
        """AB magnitudes of the total flux in g, r, z."""
        with np.errstate(divide="ignore"):
            return ZERO_POINT - 2.5 * np.log10(np.asarray(self.fluxes))

    @property
    def clump_fraction(self) -> np.ndarray:
        """Fraction of the total flux in the clumps, per band."""
        if not self.clumps:
            return np.zeros(len(BANDS))
        clumps = np.sum([c.fluxes for c in self.clumps], axis=0)
        return clumps / np.maximum(np.asarray(self.fluxes), 1e-300)

    x = property(lambda self: self.body.x, doc="Body centre x [arcsec].")
    y = property(lambda self: self.body.y, doc="Body centre y [arcsec].")
    r_e = property(lambda self: self.body.r_e, doc="Body half-light radius [arcsec].")
    n = property(lambda self: self.body.n, doc="Body Sérsic index.")
    q = property(lambda self: self.body.q, doc="Body axis ratio.")
    phi = property(lambda self: self.body.phi, doc="Body position angle [deg].")

    def surface_brightness(self, beta_x, beta_y) -> np.ndarray:
        """Surface brightness [nanomaggies / arcsec^2], ``(3,) + shape``: the sum of the
        components'."""
        return sum(c.surface_brightness(beta_x, beta_y) for c in self.components)


def _components(source, owner) -> tuple[Sersic, ...]:
    if isinstance(source, StructuredSource):
        return source.components
    _check_source(source, owner)
    return (source,)


def render_sersic(
    source: Sersic | StructuredSource,
    beta_x,
    beta_y,
    *,
    pixel_scale: float,
    supersample: int = 1,
) -> np.ndarray:
    """Pixel fluxes [nanomaggies] of ``source`` from ray-traced sub-pixel positions.

    Parameters
    ----------
    source : Sersic or StructuredSource
    beta_x, beta_y : array_like, shape ``(ny * s, nx * s)``
        Source-plane positions [arcsec] of the sub-pixel centres of
        :func:`clusterlens.lensing.pixel_grid` with ``supersample = s``, after ray tracing
        ``beta = theta - alpha(theta)``.
    pixel_scale : float
        Pixel size [arcsec].
    supersample : int
        Sub-pixels per pixel side ``s``; the pixel value is the mean surface brightness of
        its ``s^2`` sub-pixels times the pixel area (midpoint rule).

    Returns
    -------
    ndarray, float64, shape ``(3, ny, nx)``
        Flux per pixel in g, r, z [nanomaggies].  Surface brightness is conserved by lensing,
        so the total is the source flux times the magnification.
    """
    owner = "render_sersic"
    parts = _components(source, owner)
    scale = check_scalar(pixel_scale, "pixel_scale", owner, low=0.0, low_inclusive=False)
    s = check_int(supersample, "supersample", owner, low=1, high=65536)
    bx = check_array(beta_x, "beta_x", owner, ndim=2)
    by = check_array(beta_y, "beta_y", owner, ndim=2)
    if bx.shape != by.shape or bx.shape[0] % s or bx.shape[1] % s:
        raise ParameterError(
            f"The 'beta_x' and 'beta_y' parameters of {owner} must have the same 2-D shape, "
            f"a multiple of supersample={s} on each side. Got {bx.shape} and {by.shape}."
        )
    ny, nx = bx.shape[0] // s, bx.shape[1] // s
    fx, fy = np.ascontiguousarray(bx).ravel(), np.ascontiguousarray(by).ravel()
    out = np.zeros((len(BANDS), ny, nx))
    for part in parts:
        unit = part._unit_sb(fx, fy)
        pixel_flux = unit.reshape(ny, s, nx, s).mean(axis=(1, 3)) * scale**2
        out += np.asarray(part.fluxes)[:, None, None] * pixel_flux[None]
    return out


def render_sersic_adaptive(
    source: Sersic | StructuredSource,
    ray_trace: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None,
    *,
    shape,
    pixel_scale: float,
    max_supersample: int = 4096,
    rtol: float = 1e-5,
    beta=None,
) -> np.ndarray:
    """Pixel fluxes [nanomaggies] of a (lensed) source, sub-sampled only where it is steep.

    The image-plane grid is :func:`clusterlens.lensing.pixel_grid` (origin at the cutout
    centre).  Every pixel is first sampled at its centre.  A pixel is refined when (a) its value
    differs from the mean of its four neighbours by more than the tolerance, (b) its
    source-plane footprint (the distance to its neighbours' ray-traced positions) reaches the
    source centre, or (c) the profile's log slope across that footprint is large.  Refined
    pixels are integrated by an adaptive quadtree: a cell is split into 2 x 2 until the two
    estimates of its flux agree within the tolerance (``rtol`` times the source's total unlensed
    flux) and it does not contain the source centre (the accepted value is
    Richardson-extrapolated from the two), down to cells ``pixel_scale / max_supersample`` wide.
    The cusp of an n > 1 profile is thereby followed to a tiny fraction of a pixel at the cost
    of a few cells per level; each level is one vectorised call of ``ray_trace``.

    A :class:`StructuredSource` is rendered component by component (each with its own
    refinement, all on the same ray-traced pixel centres) and summed: small clumps only refine
    the few pixels they cover.

    Parameters
    ----------
    source : Sersic or StructuredSource
    ray_trace : callable or None
        ``ray_trace(x, y) -> (beta_x, beta_y)`` on flat float64 arrays [arcsec], for example
        ``lambda x, y: (x - ax, y - ay)`` with ``ax, ay = lens.deflection(x, y)``.  ``None``
        renders the unlensed source.
    shape : (int, int)
        ``(ny, nx)`` of the image.
    pixel_scale : float
        Pixel size [arcsec].
    max_supersample : int
        Smallest cell is ``pixel_scale / max_supersample`` (rounded up to a power of two).
    rtol : float
        Per-pixel tolerance as a fraction of the source's total flux.
    beta : (array_like, array_like), optional
        Ray-traced positions ``(beta_x, beta_y)`` [arcsec] of the pixel centres, shape
        ``shape``, if already known (e.g. one deflection map per cluster, reused for many
        sources); ``ray_trace`` is then only called for the sub-pixel samples.

    Returns
    -------
    ndarray, float64, shape ``(3, ny, nx)``
        Flux per pixel in g, r, z [nanomaggies].
    """
    owner = "render_sersic_adaptive"
    parts = _components(source, owner)
    ny, nx = _check_shape(shape, owner)
    scale = check_scalar(pixel_scale, "pixel_scale", owner, low=0.0, low_inclusive=False)
    smax = check_int(max_supersample, "max_supersample", owner, low=1, high=65536)
    tol = check_scalar(rtol, "rtol", owner, low=0.0, high=1.0, low_inclusive=False)
    if ray_trace is None:
        ray_trace = _identity
    elif not callable(ray_trace):
        raise ParameterError(
            f"The 'ray_trace' parameter of {owner} must be a callable (x, y) -> (beta_x, "
            f"beta_y) or None. Got {type(ray_trace).__name__} instead."
        )
    if beta is None:
        x, y = pixel_grid((ny, nx), scale)
        bx, by = _trace(ray_trace, x.ravel(), y.ravel(), owner)
    else:
        try:
            bx, by = beta
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"The 'beta' parameter of {owner} must be a pair (beta_x, beta_y)."
            ) from exc
        bx = check_array(bx, "beta", owner, ndim=2)
        by = check_array(by, "beta", owner, ndim=2)
        if bx.shape != (ny, nx) or by.shape != (ny, nx):
            raise ParameterError(
                f"The 'beta' parameter of {owner} must hold two arrays of shape {(ny, nx)}. "
                f"Got {bx.shape} and {by.shape}."
            )
        bx, by = np.ascontiguousarray(bx).ravel(), np.ascontiguousarray(by).ravel()
    depth = _max_depth(smax)
    if len(parts) == 1:
        return _render_one(parts[0], ray_trace, bx, by, (ny, nx), scale, tol, depth, owner)
    out = np.zeros((len(BANDS), ny, nx))
    total = max(sum(float(np.sum(p.fluxes)) for p in parts), 1e-300)
    foot = pixel_footprints(bx.reshape(ny, nx), by.reshape(ny, nx), np.empty((ny, nx))).ravel()
    for part in parts:
        # each component's tolerance is relative to the whole source's flux, so faint
        # clumps are not refined more finely than the body needs
        share = float(np.sum(part.fluxes)) / total
        if share <= 0.0:
            continue
        tol_p = min(tol / share, 0.5)
        # only pixels whose footprint reaches within the radius holding all but 1e-8 of the
        # component's light can see it: a small clump touches a few hundred pixels
        reach = part.r_e * (gammaincinv(2.0 * part.n, 1.0 - 1e-8) / part.b_n) ** part.n
        radius = reach / math.sqrt(part.q)
        subset = pixels_within(bx, by, foot, part.x, part.y, radius, np.empty(bx.size, np.int64))
        if subset.size > 0.5 * bx.size:
            subset = None
        out += _render_one(
            part, ray_trace, bx, by, (ny, nx), scale, tol_p, depth, owner, subset=subset
        )
    return out


def _render_one(source, ray_trace, bx, by, shape, scale, tol, depth, owner, subset=None):
    """:func:`render_sersic_adaptive` of one Sérsic on traced pixel centres (flat arrays);
    with ``subset`` (flat pixel indices) the light is evaluated there only (zero elsewhere)."""
    ny, nx = shape
    area = scale**2
    atol = tol / area  # tolerance on the mean surface brightness of a pixel (unit flux)
    if subset is None:
        value = source._unit_sb(bx, by).reshape(ny, nx)  # mean surface brightness per pixel
        todo = _steep_pixels(source, value, bx.reshape(ny, nx), by.reshape(ny, nx), atol)
    else:
        value = np.zeros(ny * nx)
        value[subset] = source._unit_sb(bx[subset], by[subset])
        value = value.reshape(ny, nx)
        flags = steep_pixel_flags_at(
            value,
            bx.reshape(ny, nx),
            by.reshape(ny, nx),
            subset,
            source.x,
            source.y,
            math.sqrt(source.q),
            source.r_e,
            source.b_n,
            source.n,
            atol,
            np.empty(subset.size, dtype=np.bool_),
        )
        todo = subset[flags]
    flux = value.ravel() * area
    if todo.size:
        rows, cols = np.divmod(todo, nx)
        cells = (
            todo,
            (cols - (nx - 1) / 2.0) * scale,
            (rows - (ny - 1) / 2.0) * scale,
            value.ravel()[todo],
            bx[todo],
            by[todo],
        )
        flux[todo] = 0.0
        _refine_cells(source, ray_trace, cells, scale, flux, tol, depth, owner)
    return np.asarray(source.fluxes)[:, None, None] * flux.reshape(1, ny, nx)


def _max_depth(max_supersample):
    return max(1, int(math.ceil(math.log2(max_supersample))))


def _refine_cells(source, ray_trace, cells, size, flux, tol, depth, owner):
    """Quadtree integration of the listed pixels (vectorised over cells, level by level).

    A cell (pixel index, centre x, y [arcsec], centre surface brightness, centre beta) is
    split into 2 x 2 children; the children's mean replaces the centre sample.  A cell is
    accepted when the two estimates of its flux agree within ``tol`` (a fraction of the
    unit total flux) and its source-plane footprint does not contain the source centre;
    otherwise its children are split again, down to ``depth`` levels.  Cusps (n > 1 at the
    centre) are thus followed to ~``pixel / 2^depth`` at a cost of a few cells per level.
    """
    pix, cx, cy, val, cbx, cby = cells
    h = size
    sq = math.sqrt(source.q)
    offs_x = np.array([-0.25, 0.25, -0.25, 0.25])
    offs_y = np.array([-0.25, -0.25, 0.25, 0.25])
    for level in range(depth):
        kx = (cx[:, None] + offs_x * h).ravel()
        ky = (cy[:, None] + offs_y * h).ravel()
        kbx, kby = _trace(ray_trace, kx, ky, owner)
        kval = source._unit_sb(kbx, kby)
        mean = kval.reshape(-1, 4).mean(axis=1)
        area = h * h
        foot = np.max(
            np.hypot(kbx.reshape(-1, 4) - cbx[:, None], kby.reshape(-1, 4) - cby[:, None]),
            axis=1,
        )
        holds_centre = np.hypot(cbx - source.x, cby - source.y) * sq <= 2.0 * foot
        split = (np.abs(mean - val) * area > tol) | holds_centre
        if level == depth - 1:
            split[:] = False
        done = ~split
        # Richardson step: the midpoint rule's error scales as h^2, so the centre sample
        # (error c h^2) and the children's mean (c h^2 / 4) extrapolate to the integral
        np.add.at(flux, pix[done], (mean[done] + (mean[done] - val[done]) / 3.0) * area)
        if not split.any():
            return
        sel = np.repeat(split, 4)
        pix = np.repeat(pix[split], 4)
        cx, cy = kx[sel], ky[sel]
        val, cbx, cby = kval[sel], kbx[sel], kby[sel]
        h = 0.5 * h


def _steep_pixels(source, value, bx, by, atol):
    """Flat indices of the pixels whose centre sample may misrepresent the pixel mean."""
    flags = steep_pixel_flags(
        value,
        bx,
        by,
        source.x,
        source.y,
        math.sqrt(source.q),
        source.r_e,
        source.b_n,
        source.n,
        atol,
        np.empty(value.shape, dtype=np.bool_),
    )
    return np.flatnonzero(flags)


def _identity(x, y):
    return x, y


def _trace(ray_trace, x, y, owner):
    bx, by = ray_trace(x, y)
    bx = np.ascontiguousarray(bx, dtype=np.float64).ravel()
    by = np.ascontiguousarray(by, dtype=np.float64).ravel()
    if bx.size != x.size or by.size != x.size:
        raise ParameterError(
            f"The 'ray_trace' callable passed to {owner} must return two arrays of "
            f"{x.size} positions. Got sizes {bx.size} and {by.size}."
        )
    if not (np.isfinite(bx).all() and np.isfinite(by).all()):
        raise ParameterError(
            f"The 'ray_trace' callable passed to {owner} returned NaN or infinite positions."
        )
    return bx, by


def _check_source(source, owner):
    if not isinstance(source, Sersic):
        raise ParameterError(
            f"The 'source' parameter of {owner} must be a Sersic. "
            f"Got {type(source).__name__} instead."
        )


def _check_shape(shape, owner):
    try:
        ny, nx = (int(v) for v in shape)
        ok = all(int(v) == v for v in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok or ny < 1 or nx < 1:
        raise ParameterError(
            f"The 'shape' parameter of {owner} must be two positive integers (ny, nx). "
            f"Got {shape!r} instead."
        )
    return ny, nx
