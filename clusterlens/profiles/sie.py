"""Singular isothermal ellipsoid (SIE) and populations of SIEs (cluster member galaxies).

The SIE of Kormann, Schneider & Bartelmann (1994, A&A 284, 285), with the Einstein radius in
the intermediate-axis convention (as lenstronomy's ``SIE``).  In the frame of the major axis
(``x' = cos(phi) dx + sin(phi) dy``, ``y' = -sin(phi) dx + cos(phi) dy``):

* convergence  kappa = theta_E / (2 sqrt(q x'^2 + y'^2 / q)),
* deflection   alpha_x' = b/s arctan(s x'/psi),  alpha_y' = b/s arctanh(s y'/psi),
  with b = theta_E sqrt(q), s = sqrt(1 - q^2), psi = sqrt(q^2 x'^2 + y'^2),
* potential    psi_lens = x' alpha_x' + y' alpha_y',
* Hessian      f_x'x' = b y'^2/(r^2 psi), f_x'y' = -b x'y'/(r^2 psi), f_y'y' = b x'^2/(r^2 psi).

q = 1 is the singular isothermal sphere, |alpha| = theta_E, reached without dividing by zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from clusterlens._validation import check_array, check_scalar
from clusterlens.profiles import _kernels
from clusterlens.profiles._members import set_member_arrays
from clusterlens.profiles.base import KernelProfile, take_quantities

__all__ = ["SIE", "SIEPopulation"]


class _SIEKernels(KernelProfile):
    """Shared private methods: both classes hold an SIE constants table in ``_table``."""

    _table: np.ndarray

    def _accumulate(self, mode, x, y, o1, o2, o3):
        _kernels.sie_accumulate(x, y, self._table, mode, o1, o2, o3)

    def mass_3d(self, radius: float) -> float:
        """Mass inside a sphere of ``radius`` [arcsec] about each galaxy's centre, summed, in
        units of ``Sigma_cr arcsec^2``: ``2 theta_E r`` (the singular isothermal sphere,
        M_3d = 2 sigma^2 r / G; used for the ellipsoid too).  It grows without bound: an
        SIE has no finite mass."""
        r = check_scalar(radius, "radius", type(self).__name__, low=0.0)
        return float(np.sum(2.0 * np.asarray(self.theta_e) * r))


@dataclass(frozen=True)
class SIE(_SIEKernels):
    """Singular isothermal ellipsoid (Kormann et al. 1994).

    Parameters
    ----------
    theta_e : float
        Einstein radius in arcsec (intermediate-axis convention), > 0.
    q : float
        Axis ratio (minor/major) of the convergence, in (0, 1]; 1 is the SIS.
    phi : float
        Position angle of the major axis in degrees, counter-clockwise from +x.
    x0, y0 : float
        Centre in arcsec.

    Examples
    --------
    >>> import numpy as np
    >>> ax, ay = SIE(1.5, 1.0, 0.0).deflection(np.array([3.0]), np.array([4.0]))
    >>> float(np.hypot(ax, ay)[0])  # doctest: +ELLIPSIS
    1.5...
    """

    population_class: ClassVar[type]

    theta_e: float
    q: float = 1.0
    phi: float = 0.0
    x0: float = 0.0
    y0: float = 0.0
    _table: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        take_quantities(self, ("theta_e", "q", "phi", "x0", "y0"))
        name = type(self).__name__
        set_ = object.__setattr__
        set_(self, "theta_e", check_scalar(self.theta_e, "theta_e", name, low=0.0))
        set_(self, "q", check_scalar(self.q, "q", name, low=0.0, high=1.0, low_inclusive=False))
        set_(self, "phi", check_scalar(self.phi, "phi", name))
        set_(self, "x0", check_scalar(self.x0, "x0", name))
        set_(self, "y0", check_scalar(self.y0, "y0", name))
        set_(self, "_table", _kernels.sie_table(self.theta_e, self.q, self.phi, self.x0, self.y0))

    def scaled(self, factor: float) -> SIE:
        """The same SIE with every lensing quantity times ``factor`` (theta_E scaled)."""
        f = check_scalar(factor, "factor", "SIE.scaled", low=0.0)
        return SIE(self.theta_e * f, self.q, self.phi, self.x0, self.y0)


@dataclass(frozen=True, eq=False)
class SIEPopulation(_SIEKernels):
    """Many SIEs (e.g. the member galaxies of a cluster) evaluated in one fused kernel.

    Deflection and Hessian are one numba kernel, parallel over blocks of pixels, with the
    members in the inner loop and their constants computed once; the result equals the sum
    of the individual :class:`SIE` s.

    Parameters
    ----------
    theta_e, q, phi, x0, y0 : array_like, shape (N,)
        Per-member Einstein radius (arcsec, >= 0), axis ratio in (0, 1], position angle
        (degrees CCW from +x) and centre (arcsec).  Scalars broadcast to the members.
    """

    theta_e: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    _table: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        take_quantities(self, ("theta_e", "q", "phi", "x0", "y0"))
        name = type(self).__name__
        values = {
            "theta_e": check_array(self.theta_e, "theta_e", name, low=0.0),
            "q": check_array(self.q, "q", name, low=0.0, high=1.0, low_inclusive=False),
            "phi": check_array(self.phi, "phi", name),
            "x0": check_array(self.x0, "x0", name),
            "y0": check_array(self.y0, "y0", name),
        }
        set_member_arrays(self, values)
        object.__setattr__(
            self, "_table", _kernels.sie_table(self.theta_e, self.q, self.phi, self.x0, self.y0)
        )

    def __len__(self) -> int:
        return self.theta_e.size

    def __repr__(self) -> str:
        return f"SIEPopulation(<{len(self)} members>)"

    def scaled(self, factor: float) -> SIEPopulation:
        """The same members with every lensing quantity times ``factor``."""
        f = check_scalar(factor, "factor", "SIEPopulation.scaled", low=0.0)
        return SIEPopulation(self.theta_e * f, self.q, self.phi, self.x0, self.y0)

    def members(self) -> list[SIE]:
        """The members as individual :class:`SIE` objects."""
        return [
            SIE(float(t), float(q), float(p), float(x), float(y))
            for t, q, p, x, y in zip(self.theta_e, self.q, self.phi, self.x0, self.y0, strict=True)
        ]

    @classmethod
    def from_stellar_masses(
        cls,
        stellar_mass,
        x0,
        y0,
        z_lens: float,
        z_source: float,
        *,
        q=1.0,
        phi=0.0,
        cosmology=None,
    ) -> SIEPopulation:
        """Members from stellar masses: M* -> sigma -> theta_E.

        Parameters
        ----------
        stellar_mass : array_like
            Stellar masses in Msun (no h), > 0.
        x0, y0 : array_like
            Member positions in arcsec.
        z_lens, z_source : float
            Redshifts of the cluster and of the source plane.
        q, phi : float or array_like
            Axis ratios in (0, 1] and position angles (degrees CCW from +x).
        cosmology : astropy.cosmology.Cosmology, optional
            Default FlatLambdaCDM(H0=70, Om0=0.3).

        Notes
        -----
        Velocity dispersions from :func:`clusterlens.cosmology.velocity_dispersion`; Einstein
        radii from :func:`clusterlens.cosmology.sigma_to_theta_e`.
        """
        from clusterlens import cosmology as cosmo

        sigma = cosmo.velocity_dispersion(stellar_mass)
        theta_e = cosmo.sigma_to_theta_e(sigma, z_lens, z_source, cosmology=cosmology)
        return cls(theta_e, q, phi, x0, y0)

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
    ) -> SIEPopulation:
        """Members from velocity dispersions [km/s] and positions [arcsec] (the mock
        simulator's member-profile interface, as
        :meth:`~clusterlens.profiles.DPIEPopulation.from_sigma`).

        ``r_core_kpc`` and ``r_cut_kpc`` are accepted and ignored: an SIE is the limit
        r_core -> 0, r_cut -> inf of the truncated profile.
        """
        from clusterlens import cosmology as cosmo

        theta_e = cosmo.sigma_to_theta_e(
            np.atleast_1d(sigma_kms), z_lens, z_source, cosmology=cosmology
        )
        return cls(theta_e, q, phi, x0, y0)


SIE.population_class = SIEPopulation
