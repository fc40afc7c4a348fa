"""Truncated member-galaxy profile: the dual pseudo-isothermal elliptical (dPIE) mass distribution.

The dPIE (Elíasdóttir et al. 2007, arXiv:0710.5636; the "truncated PIEMD" of Kassiola &
Kovner 1993, ApJ 417, 450) is the profile Lenstool (``potentiel 81``) and GLAFIC (``jaffe``)
use for cluster galaxies.  Its 3D density is ``rho ~ 1 / ((1 + r^2/a^2)(1 + r^2/s^2))``: flat
inside the core radius ``a``, isothermal (``r^-2``) between ``a`` and the cut radius ``s``,
``r^-4`` outside, so its mass is finite.  Projected, with the elliptical radius in the
intermediate-axis convention ``R^2 = q x'^2 + y'^2 / q`` (``x'`` along the major axis):

    kappa(R) = (theta_E / 2) s / (s - a) [ (a^2 + R^2)^(-1/2) - (s^2 + R^2)^(-1/2) ],

the difference of two cored isothermal ellipsoids (lenstronomy's ``NIE``, Keeton's softened
isothermal ellipsoid, Keeton 2001 arXiv:astro-ph/0102341) of cores ``a`` and ``s``.  The
deflection, Hessian and potential are the NIEs' closed forms (see ``_kernels``).

Normalisation
-------------
``theta_E`` is the Einstein radius of the SIE the profile tends to for ``a -> 0``,
``s -> inf`` (same intermediate-axis convention as :class:`~clusterlens.profiles.SIE`), so
``theta_E = 4 pi (sigma / c)^2 D_ds / D_s`` for a velocity dispersion ``sigma``
(:func:`clusterlens.cosmology.sigma_to_theta_e`).  The factor ``s / (s - a)`` is
Elíasdóttir et al.'s (with their fiducial ``sigma_0`` in place of ``sigma``):
it makes the total mass independent of the core,

    M_tot = pi Sigma_cr theta_E s   (angles in radians times D_d)  = pi sigma^2 s / G,

with ``s`` the physical cut radius: 1.07e12 Msun for sigma = 180 km/s, s = 45 kpc.  In the
units of the lensing quantities (``Sigma_cr`` times arcsec^2), ``M_tot = pi theta_E s``;
multiply by :func:`clusterlens.cosmology.sigma_crit_arcsec2` for Msun.  With the radii on the
intermediate axis the total mass does not depend on ``q``.  The 3D mass inside ``r`` is
``M_3d(r) = 2 theta_E s / (s - a) [s arctan(r/s) - a arctan(r/a)]`` (spherical; used for the
elliptical profile too).  In lenstronomy's ``PJAFFE`` parameters (spherical):
``sigma0 = theta_E / (2 Ra)``, ``Ra = a``, ``Rs = s``.

Cut radii of cluster members
----------------------------
Strong-lensing models of clusters (Lenstool) scale the members from an L* galaxy,
``sigma = sigma* (L/L*)^(1/4)``, ``r_cut = r_cut* (L/L*)^(1/2)``, ``r_core = r_core*
(L/L*)^(1/2)``, i.e. ``r = r* (sigma / sigma*)^2`` with a constant mass-to-light ratio
(Jullo et al. 2007, NJPh 9, 447; Limousin et al. 2007, ApJ 668, 643; Richard et al. 2010,
MNRAS 404, 325).  Galaxy-galaxy lensing of cluster members finds L* galaxies truncated at
r_cut* ~ 45 kpc (Limousin et al. 2007, A&A 461, 881; Natarajan et al. 2009, ApJ 693, 970)
for sigma* ~ 180 km/s, and Lenstool models use r_core* ~ 0.15 kpc (values as commonly
quoted from these papers; not re-checked against their tables here).
:func:`member_radii` applies this scaling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from clusterlens._validation import as_value, check_array, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.profiles import _kernels
from clusterlens.profiles._members import set_member_arrays
from clusterlens.profiles.base import KernelProfile, take_quantities

__all__ = ["DPIE", "DPIEPopulation", "member_radii", "SIGMA_STAR", "R_CUT_STAR", "R_CORE_STAR"]

#: Velocity dispersion of the L* galaxy of the scaling relations [km/s] (see module docs).
SIGMA_STAR = 180.0
#: Cut radius of an L* cluster member [kpc] (Limousin et al. 2007; Natarajan et al. 2009).
R_CUT_STAR = 45.0
#: Core radius of an L* cluster member [kpc] (Lenstool cluster models, e.g. Richard et al. 2010).
R_CORE_STAR = 0.15

_RAD_TO_ARCSEC = 180.0 / math.pi * 3600.0


def member_radii(
    sigma_kms,
    *,
    sigma_star: float = SIGMA_STAR,
    r_cut_star: float = R_CUT_STAR,
    r_core_star: float = R_CORE_STAR,
) -> tuple[np.ndarray, np.ndarray]:
    """Core and cut radii [kpc] of cluster members from their velocity dispersions.

    ``r_core = r_core* (sigma / sigma*)^2`` and ``r_cut = r_cut* (sigma / sigma*)^2``, the
    Lenstool scaling ``r ~ (L/L*)^(1/2)`` with Faber-Jackson ``L ~ sigma^4`` (module docs).

    Parameters
    ----------
    sigma_kms : array_like
        Velocity dispersions [km/s], >= 0.
    sigma_star, r_cut_star, r_core_star : float
        The L* galaxy: sigma* [km/s], r_cut* and r_core* [kpc] (defaults 180, 45, 0.15).
    """
    owner = "member_radii"
    sigma_kms = as_value(sigma_kms, "km/s", "sigma_kms", owner)
    sigma_star = as_value(sigma_star, "km/s", "sigma_star", owner)
    r_cut_star = as_value(r_cut_star, "kpc", "r_cut_star", owner)
    r_core_star = as_value(r_core_star, "kpc", "r_core_star", owner)
    sigma = check_array(np.atleast_1d(sigma_kms), "sigma_kms", owner, low=0.0)
    s_star = check_scalar(sigma_star, "sigma_star", owner, low=0.0, low_inclusive=False)
    cut = check_scalar(r_cut_star, "r_cut_star", owner, low=0.0, low_inclusive=False)
    core = check_scalar(r_core_star, "r_core_star", owner, low=0.0)
    if core >= cut:
        raise ParameterError(
            f"The 'r_core_star' parameter of {owner} must be smaller than 'r_cut_star' "
            f"({cut}). Got {core} instead."
        )
    x = (sigma / s_star) ** 2
    return core * x, cut * x


def kpc_to_arcsec(r_kpc, z_lens: float, cosmology=None):
    """Physical radii [kpc] at redshift ``z_lens`` as angles [arcsec]."""
    from clusterlens import cosmology as cosmo

    cosmo_ = cosmo.DEFAULT_COSMOLOGY if cosmology is None else cosmology
    r_kpc = as_value(r_kpc, "kpc", "r_kpc", "kpc_to_arcsec")
    z_lens = as_value(z_lens, "", "z_lens", "kpc_to_arcsec")
    d_a = cosmo_.angular_diameter_distance(z_lens).to_value("Mpc")
    return np.asarray(r_kpc, dtype=np.float64) / 1000.0 / d_a * _RAD_TO_ARCSEC


class _DPIEKernels(KernelProfile):
    """Shared private methods: both classes hold a dPIE constants table in ``_table``."""

    _table: np.ndarray

    def _accumulate(self, mode, x, y, o1, o2, o3):
        _kernels.dpie_accumulate(x, y, self._table, mode, o1, o2, o3)

    def total_mass(self) -> float:
        """Total mass in units of ``Sigma_cr arcsec^2``: ``pi theta_E r_cut`` summed."""
        return float(np.sum(math.pi * np.asarray(self.theta_e) * np.asarray(self.r_cut)))

    def mass_3d(self, radius: float) -> float:
        """Mass inside a sphere of ``radius`` [arcsec] about each galaxy's own centre, summed
        (units of ``Sigma_cr arcsec^2``; spherical formula, see the module docs)."""
        r = check_scalar(radius, "radius", type(self).__name__, low=0.0)
        te, a, s = (
            np.asarray(v, dtype=np.float64) for v in (self.theta_e, self.r_core, self.r_cut)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            core = np.where(a > 0.0, a * np.arctan(r / np.where(a > 0, a, 1.0)), 0.0)
        return float(np.sum(2.0 * te * s / (s - a) * (s * np.arctan(r / s) - core)))


def _check_radii(theta_e, r_core, r_cut, owner):
    bad = np.asarray(r_cut) <= np.asarray(r_core)
    if np.any(bad):
        i = int(np.flatnonzero(np.atleast_1d(bad))[0])
        raise ParameterError(
            f"The 'r_cut' parameter of {owner} must be larger than 'r_core'. Got r_cut="
            f"{np.atleast_1d(r_cut)[i]!r} <= r_core={np.atleast_1d(r_core)[i]!r} (member {i})."
        )


@dataclass(frozen=True)
class DPIE(_DPIEKernels):
    """One dPIE (truncated PIEMD) galaxy (Elíasdóttir et al. 2007; module docs).

    Parameters
    ----------
    theta_e : float
        Einstein radius of the untruncated SIE limit [arcsec], >= 0 (intermediate axis).
    r_core : float
        Core radius ``a`` [arcsec], >= 0 (intermediate axis).
    r_cut : float
        Cut radius ``s`` [arcsec], > r_core (intermediate axis).
    q : float
        Axis ratio of the convergence, in (0, 1].
    phi : float
        Position angle of the major axis [degrees CCW from +x].
    x0, y0 : float
        Centre [arcsec].

    Examples
    --------
    >>> import numpy as np
    >>> lens = DPIE(1.0, 0.0, 1e6)          # r_cut -> inf: the SIS of theta_E = 1"
    >>> ax, ay = lens.deflection(np.array([3.0]), np.array([4.0]))
    >>> round(float(np.hypot(ax, ay)[0]), 4)
    1.0
    """

    population_class: ClassVar[type]

    theta_e: float
    r_core: float
    r_cut: float
    q: float = 1.0
    phi: float = 0.0
    x0: float = 0.0
    y0: float = 0.0
    _table: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        take_quantities(self, ("theta_e", "r_core", "r_cut", "q", "phi", "x0", "y0"))
        name = type(self).__name__
        set_ = object.__setattr__
        set_(self, "theta_e", check_scalar(self.theta_e, "theta_e", name, low=0.0))
        set_(self, "r_core", check_scalar(self.r_core, "r_core", name, low=0.0))
        set_(self, "r_cut", check_scalar(self.r_cut, "r_cut", name, low=0.0, low_inclusive=False))
        _check_radii(self.theta_e, self.r_core, self.r_cut, name)
        set_(self, "q", check_scalar(self.q, "q", name, low=0.0, high=1.0, low_inclusive=False))
        for key in ("phi", "x0", "y0"):
            set_(self, key, check_scalar(getattr(self, key), key, name))
        set_(
            self,
            "_table",
            _kernels.dpie_table(
                self.theta_e, self.r_core, self.r_cut, self.q, self.phi, self.x0, self.y0
            ),
        )

    def scaled(self, factor: float) -> DPIE:
        """The same galaxy with every lensing quantity times ``factor`` (theta_E scaled)."""
        f = check_scalar(factor, "factor", "DPIE.scaled", low=0.0)
        return DPIE(self.theta_e * f, self.r_core, self.r_cut, self.q, self.phi, self.x0, self.y0)


@dataclass(frozen=True, eq=False)
class DPIEPopulation(_DPIEKernels):
    """Many dPIE galaxies (cluster members) evaluated in one fused numba kernel.

    The kernel is parallel over blocks of pixels with the members in the inner loop (as
    :class:`~clusterlens.profiles.SIEPopulation`); the result equals the sum of the
    individual :class:`DPIE` s.

    Parameters
    ----------
    theta_e, r_core, r_cut, q, phi, x0, y0 : array_like, shape (N,)
        Per member, as :class:`DPIE` (arcsec, degrees).  Scalars broadcast to the members.
    """

    theta_e: np.ndarray
    r_core: np.ndarray
    r_cut: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    _table: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        take_quantities(self, ("theta_e", "r_core", "r_cut", "q", "phi", "x0", "y0"))
        name = type(self).__name__
        values = {
            "theta_e": check_array(self.theta_e, "theta_e", name, low=0.0),
            "r_core": check_array(self.r_core, "r_core", name, low=0.0),
            "r_cut": check_array(self.r_cut, "r_cut", name, low=0.0, low_inclusive=False),
            "q": check_array(self.q, "q", name, low=0.0, high=1.0, low_inclusive=False),
            "phi": check_array(self.phi, "phi", name),
            "x0": check_array(self.x0, "x0", name),
            "y0": check_array(self.y0, "y0", name),
        }
        set_member_arrays(self, values)
        _check_radii(self.theta_e, self.r_core, self.r_cut, name)
        object.__setattr__(
            self,
            "_table",
            _kernels.dpie_table(
                self.theta_e, self.r_core, self.r_cut, self.q, self.phi, self.x0, self.y0
            ),
        )

    def __len__(self) -> int:
        return self.theta_e.size

    def __repr__(self) -> str:
        return f"DPIEPopulation(<{len(self)} members>)"

    def members(self) -> list[DPIE]:
        """The members as individual :class:`DPIE` objects."""
        cols = (self.theta_e, self.r_core, self.r_cut, self.q, self.phi, self.x0, self.y0)
        return [DPIE(*(float(v) for v in row)) for row in zip(*cols, strict=True)]

    def scaled(self, factor: float) -> DPIEPopulation:
        """The same members with every lensing quantity times ``factor``."""
        f = check_scalar(factor, "factor", "DPIEPopulation.scaled", low=0.0)
        return DPIEPopulation(
            self.theta_e * f, self.r_core, self.r_cut, self.q, self.phi, self.x0, self.y0
        )

    @classmethod
    def from_sigma(
        cls,
        sigma_kms,
        x0,
        y0,
        z_lens: float,
        z_source: float,
        *,
        q=1.0,
        phi=0.0,
        r_core_kpc=None,
        r_cut_kpc=None,
        cosmology=None,
    ) -> DPIEPopulation:
        """Members from velocity dispersions [km/s] and positions [arcsec].

        ``theta_E`` from :func:`clusterlens.cosmology.sigma_to_theta_e`; ``r_core_kpc`` and
        ``r_cut_kpc`` (physical kpc at ``z_lens``, scalars or per member) default to
        :func:`member_radii` of ``sigma_kms``.  This is the member-profile interface of the
        mock simulator (``[members] profile``).
        """
        from clusterlens import cosmology as cosmo

        owner = f"{cls.__name__}.from_sigma"
        sigma_kms = as_value(sigma_kms, "km/s", "sigma_kms", owner)
        r_core_kpc = as_value(r_core_kpc, "kpc", "r_core_kpc", owner)
        r_cut_kpc = as_value(r_cut_kpc, "kpc", "r_cut_kpc", owner)
        sigma = np.atleast_1d(np.asarray(sigma_kms, dtype=np.float64))
        core_d, cut_d = member_radii(sigma)
        core = core_d if r_core_kpc is None else np.broadcast_to(r_core_kpc, sigma.shape)
        cut = cut_d if r_cut_kpc is None else np.broadcast_to(r_cut_kpc, sigma.shape)
        theta = np.atleast_1d(cosmo.sigma_to_theta_e(sigma, z_lens, z_source, cosmology=cosmology))
        # massless members (sigma = 0) still need r_cut > r_core
        cut_a = np.maximum(kpc_to_arcsec(cut, z_lens, cosmology), 1e-6)
        core_a = np.minimum(kpc_to_arcsec(core, z_lens, cosmology), 0.5 * cut_a)
        return cls(theta, core_a, cut_a, q, phi, x0, y0)


DPIE.population_class = DPIEPopulation
