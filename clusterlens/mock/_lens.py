"""The lens of one mock: the mass budget, the registered profiles it is built from, and its
deflection and Hessian maps at the reference source redshift (steps 1-3 of
:mod:`clusterlens.mock.simulator`).

Private module of :mod:`clusterlens.mock.simulator`, which is where these names are public.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from clusterlens import cosmology as cosmo
from clusterlens.errors import ParameterError
from clusterlens.mock._kernels import summed_hessian
from clusterlens.profiles import get_profile
from clusterlens.profiles.base import Composite

_EIGHT = np.ones((3, 3), dtype=bool)
_RAD_TO_ARCSEC = 180.0 / math.pi * 3600.0
# The halo keeps at least this fraction of M500 whatever the galaxies weigh (an SIE's mass
# inside R500 can exceed the cluster's).
_MIN_HALO_FRACTION = 0.05


def mass_budget(m500, galaxies, z_lens, z_source, *, cosmology=None):
    """The fraction of M500 left to the halo once the galaxies' mass is taken out.

    The galaxies' mass is the sum over ``galaxies`` (a profile or a
    :class:`~clusterlens.profiles.Composite` of populations built for ``z_source``) of
    ``mass_3d(R500)``: each galaxy's 3D mass inside a sphere of radius R500 about its own
    centre (for a dPIE with r_cut << R500 nearly its total mass, ``pi sigma^2 r_cut / G``).
    The galaxies of a cutout lie inside R500 in projection and are counted whole.  The halo
    built for the full M500 is then scaled by ``f = 1 - M_galaxies / M500`` (at least
    0.05): its 3D mass inside R500 becomes ``f M500``, and halo + galaxies hold M500.

    Parameters
    ----------
    m500 : float
        M500c [Msun].
    galaxies : MassProfile
        Parts with a ``mass_3d(radius_arcsec)`` method (units of Sigma_cr arcsec^2):
        :class:`~clusterlens.profiles.DPIEPopulation`, :class:`~clusterlens.profiles.DPIE`,
        the SIE classes.
    z_lens, z_source : float
    cosmology : astropy.cosmology.Cosmology, optional

    Returns
    -------
    fraction : float
        ``f`` in [0.05, 1].
    m_galaxies : float
        The galaxies' mass inside R500 [Msun].
    """
    parts = galaxies.components if isinstance(galaxies, Composite) else (galaxies,)
    missing = [type(p).__name__ for p in parts if not hasattr(p, "mass_3d")]
    if missing:
        raise ParameterError(
            f"halo.mass_budget needs galaxy profiles with a mass_3d(radius) method; {missing} "
            "has none (choose members.profile = 'dpie' or set halo.mass_budget = false)."
        )
    d_d, d_s, d_ds = (
        float(d) for d in cosmo.angular_diameter_distances(z_lens, z_source, cosmology)
    )
    r500_arcsec = float(cosmo.r500(m500, z_lens, cosmology)) / d_d * _RAD_TO_ARCSEC
    # Sigma_cr D_d^2 per arcsec^2 (cosmology.sigma_crit_arcsec2, without its second
    # distance computation: this runs once per cluster)
    unit = cosmo._C2_OVER_4PIG * d_s / (d_d * d_ds) * (d_d / _RAD_TO_ARCSEC) ** 2
    m_gal = unit * sum(float(p.mass_3d(r500_arcsec)) for p in parts)
    return max(1.0 - m_gal / float(m500), _MIN_HALO_FRACTION), m_gal


def _resolve(name: str, key: str, method: str):
    """The registered class ``name`` (or its ``population_class``) if it offers ``method``."""
    try:
        cls = get_profile(name)
    except ParameterError as exc:
        raise ParameterError(f"{key} = {name!r} is not a registered profile: {exc}") from None
    cls = getattr(cls, "population_class", cls)
    if not callable(getattr(cls, method, None)):
        raise ParameterError(
            f"{key} = {name!r} ({cls.__module__}.{cls.__qualname__}) cannot be used by the "
            f"simulator: it needs a classmethod {method}(...) (see docs/profiles.md)."
        )
    return cls


class LensMaps:
    """Deflection and Hessian maps of one lens at the reference source redshift.

    Parameters
    ----------
    halo, members : MassProfile
        Evaluated at ``z_ref``.
    x, y : ndarray, shape ``(n, n)``
        Pixel centres [arcsec].
    pixel_scale : float
    members_hessian : tuple of ndarray, optional
        Precomputed flat member Hessian (shared by every halo draw of a cluster).
    members_deflection : callable, optional
        Returns the flat member deflection (computed once, shared likewise).
    """

    def __init__(
        self, halo, members, x, y, pixel_scale, *, members_hessian=None, members_deflection=None
    ):
        self.halo, self.members = halo, members
        self.x, self.y, self.pixel_scale = x, y, pixel_scale
        self.shape = x.shape
        xf, yf = x.ravel(), y.ravel()
        self._xf, self._yf = xf, yf
        mh = members_hessian if members_hessian is not None else members._hessian(xf, yf)
        self._members_deflection = members_deflection
        hh = halo._hessian(xf, yf)
        fxx, fxy, fyy, kpg = (np.empty(xf.size) for _ in range(4))
        # f = halo + galaxies and kappa + gamma in one pass
        summed_hessian(*(np.ascontiguousarray(a, dtype=np.float64) for a in (*hh, *mh)),
                       fxx, fxy, fyy, kpg)  # fmt: skip
        self.fxx, self.fxy, self.fyy = (v.reshape(self.shape) for v in (fxx, fxy, fyy))
        self.kappa_plus_gamma = kpg.reshape(self.shape)
        self._deflection = None
        self._region = None
        c = (self.shape[0] // 2, self.shape[1] // 2)
        self._centre = c

    @property
    def deflection(self):
        """``(alpha_x, alpha_y)`` maps [arcsec] at ``z_ref``."""
        if self._deflection is None:
            md = self._members_deflection
            md = self.members._deflection(self._xf, self._yf) if md is None else md()
            hd = self.halo._deflection(self._xf, self._yf)
            self._deflection = tuple(
                (a + b).reshape(self.shape) for a, b in zip(hd, md, strict=True)
            )
        return self._deflection

    def ray_trace(self, s: float):
        """``(x, y) -> beta`` for flat arrays, at deflection scale ``s``."""
        halo, members = self.halo, self.members

        def trace(x, y):
            hx, hy = halo._deflection(x, y)
            mx, my = members._deflection(x, y)
            return x - s * (hx + mx), y - s * (hy + my)

        return trace

    def _box(self):
        """The region at ``s = 1`` (the largest: regions shrink with ``s``), cut to its
        bounding box, so that smaller ``s`` only label a small array."""
        if self._region is None:
            inside = self.kappa_plus_gamma > 1.0
            c = self._centre
            if not inside[c]:
                self._region = (np.zeros((1, 1)), (0, 0))
            else:
                labels, _ = ndimage.label(inside, structure=_EIGHT)
                comp = labels == labels[c]
                sl = ndimage.find_objects(comp.astype(np.int32))[0]
                kg = np.where(comp[sl], self.kappa_plus_gamma[sl], 0.0)
                self._region = (kg, (c[0] - sl[0].start, c[1] - sl[1].start))
        return self._region

    def _area(self, s: float) -> int:
        kg, c = self._box()
        inside = kg * s > 1.0
        if not inside[c]:
            return 0
        labels, _ = ndimage.label(inside, structure=_EIGHT)
        return int(np.count_nonzero(labels == labels[c]))

    def tangential_region(self, s: float) -> np.ndarray:
        """Boolean map of the region around the centre inside the tangential critical curve
        at deflection scale ``s``: ``s (kappa + gamma) > 1`` (``lambda_t < 0``), 8-connected to
        the central pixel."""
        inside = self.kappa_plus_gamma * s > 1.0
        if not inside[self._centre]:
            return np.zeros_like(inside)
        labels, _ = ndimage.label(inside, structure=_EIGHT)
        return labels == labels[self._centre]

    def truncated(self, s: float) -> bool:
        """Whether the critical region at scale ``s`` reaches the edge of the maps (its
        Einstein radius is then a lower bound)."""
        r = self.tangential_region(s)
        return bool(r[0].any() or r[-1].any() or r[:, 0].any() or r[:, -1].any())

    def einstein_radius(self, s: float) -> float:
        """Effective Einstein radius [arcsec] ``sqrt(area / pi)`` at deflection scale ``s``
        (``s <= 1``; the area is counted in pixels)."""
        return math.sqrt(self._area(min(s, 1.0)) * self.pixel_scale**2 / math.pi)

    def scale_for_radius(self, theta_min: float) -> float | None:
        """Smallest deflection scale ``s`` in (0, 1] whose Einstein radius reaches
        ``theta_min`` [arcsec], or ``None`` if even ``s = 1`` does not.

        The region at ``s`` is a connected part of ``{kappa + gamma > 1/s}``, so its area is at
        most the number of such pixels: with ``t_n`` the n-th largest value of
        ``kappa + gamma`` (n pixels make ``theta_min``), ``s >= 1 / t_n``.  That bound is the
        answer whenever those n pixels are connected to the centre (one labelling); otherwise
        bisection (to 1e-4) between it and 1."""
        n = max(1, math.ceil(math.pi * theta_min**2 / self.pixel_scale**2))
        if self._area(1.0) < n:
            return None
        kg, _ = self._box()
        values = kg.ravel()
        t_n = float(np.partition(values, values.size - n)[values.size - n])
        lo = float(np.nextafter(1.0 / t_n, 2.0))  # area(lo) counts every pixel above t_n
        if self._area(lo) >= n:
            return lo
        hi = 1.0
        while hi - lo > 1e-4:
            mid = 0.5 * (lo + hi)
            if self._area(mid) >= n:
                hi = mid
            else:
                lo = mid
        return hi
