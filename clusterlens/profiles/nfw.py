"""NFW halos: spherical and pseudo-elliptical (ellipticity in the potential).

Parameterisation of lenstronomy's ``NFW`` and ``NFW_ELLIPSE_POTENTIAL``: the scale radius
``rs`` and the deflection ``alpha_rs`` at ``rs``, both in arcsec.  With X = R / rs and
A = alpha_rs / (1 + ln(1/2)):

* deflection  alpha(R) = A g(X) / X,  g(X) = ln(X/2) + arccosh(1/X)/sqrt(1 - X^2)  (X < 1),
  ln(X/2) + arccos(1/X)/sqrt(X^2 - 1)  (X > 1), 1 + ln(1/2)  (X = 1);
* convergence kappa = A/(2 rs) F(X),  F(X) = (1 - arccosh(1/X)/sqrt(1 - X^2))/(X^2 - 1)
  (analytic continuation for X > 1, F(1) = 1/3);
* potential  psi = (A rs / 2) [ln^2(X/2) - arccosh^2(1/X)]  (X < 1; + arccos^2 for X > 1)
  (Bartelmann 1996; Golse & Kneib 2002; Wright & Brainerd 2000).

The pseudo-elliptical NFW (Golse & Kneib 2002, A&A 390, 821) evaluates the spherical
potential at the stretched radius with x~ = x' sqrt(1 - e), y~ = y' sqrt(1 + e),
e = (1 - q^2)/(1 + q^2), in the frame of the major axis; deflection, Hessian and convergence
are its exact derivatives.  Its convergence becomes peanut-shaped (and can go negative) at
low q; :class:`~clusterlens.profiles.cse_nfw.EllipticalNFW` is the alternative.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from clusterlens._validation import as_value, check_scalar
from clusterlens.profiles import _kernels
from clusterlens.profiles.base import KernelProfile, take_quantities

__all__ = ["NFW", "ENFW", "nfw_angles"]

_ONE_PLUS_LN_HALF = 1.0 + math.log(0.5)
_RAD_TO_ARCSEC = 180.0 / math.pi * 3600.0


def nfw_angles(m200c, c200c, z_lens, z_source, *, cosmology=None) -> tuple[float, float]:
    """Lensing parameters ``(rs, alpha_rs)`` in arcsec of an NFW halo of mass M200c.

    rho_c(z) from the cosmology, r200 = (3 M / (4 pi 200 rho_c))^(1/3), rs = r200 / c,
    rho0 = (200/3) rho_c c^3 / (ln(1 + c) - c/(1 + c)), kappa_s = rho0 rs / Sigma_cr,
    rs_angle = rs / D_d, alpha_rs = 4 kappa_s rs_angle (1 + ln 1/2) (lenstronomy's
    ``LensCosmo.nfw_physical2angle``).  Example: M200c = 1e15 Msun, c = 4, z_l = 0.4,
    z_s = 2 (default cosmology) -> rs = 83.42", alpha_rs = 23.40".

    Parameters
    ----------
    m200c : float
        Mass in Msun (no h).
    c200c : float
        Concentration r200c / rs.
    z_lens, z_source : float
        Redshifts; z_source > z_lens.
    cosmology : astropy.cosmology.Cosmology, optional
    """
    from clusterlens import cosmology as cosmo

    m200c = as_value(m200c, "Msun", "m200c", "nfw_angles")
    m = check_scalar(m200c, "m200c", "nfw_angles", low=0.0, low_inclusive=False)
    conc = check_scalar(
        as_value(c200c, "", "c200c", "nfw_angles"),
        "c200c",
        "nfw_angles",
        low=0.0,
        low_inclusive=False,
    )
    rho_c = cosmo.critical_density(z_lens, cosmology)
    r200 = (3.0 * m / (4.0 * math.pi * 200.0 * rho_c)) ** (1.0 / 3.0)
    rs = r200 / conc
    rho0 = 200.0 / 3.0 * rho_c * conc**3 / (math.log(1.0 + conc) - conc / (1.0 + conc))
    return _rs_alpha(rs, rho0, z_lens, z_source, cosmology)


def _rs_alpha(rs_mpc, rho0, z_lens, z_source, cosmology):
    from clusterlens import cosmology as cosmo

    d_d, _, _ = cosmo.angular_diameter_distances(z_lens, z_source, cosmology)
    kappa_s = rho0 * rs_mpc / float(cosmo.sigma_crit(z_lens, z_source, cosmology))
    rs_angle = rs_mpc / d_d * _RAD_TO_ARCSEC
    return rs_angle, 4.0 * kappa_s * rs_angle * _ONE_PLUS_LN_HALF


def validate_halo(profile, *, elliptical: bool) -> None:
    """Check and normalise rs, alpha_rs, x0, y0 (and q, phi) of a frozen halo dataclass."""
    name = type(profile).__name__
    take_quantities(profile, ("rs", "alpha_rs", "x0", "y0") + (("q", "phi") if elliptical else ()))
    checks = {
        "rs": {"low": 0.0, "low_inclusive": False},
        "alpha_rs": {"low": 0.0},
        "x0": {},
        "y0": {},
    }
    if elliptical:
        checks["q"] = {"low": 0.0, "high": 1.0, "low_inclusive": False}
        checks["phi"] = {}
    for key, bounds in checks.items():
        object.__setattr__(profile, key, check_scalar(getattr(profile, key), key, name, **bounds))


def _scaled_halo(profile, factor):
    """``profile`` with ``alpha_rs`` (the whole normalisation) times ``factor``."""
    f = check_scalar(factor, "factor", f"{type(profile).__name__}.scaled", low=0.0)
    return dataclasses.replace(profile, alpha_rs=profile.alpha_rs * f)


class _HaloFromMass:
    """``from_m500`` for the halo classes whose constructor is (rs, alpha_rs, q, phi, x0, y0).

    This classmethod is what the mock simulator needs of a ``[halo] profile``: any
    registered class with ``from_m500(m500, z_lens, z_source, q, phi, *, cosmology, c500c)``
    (returning a :class:`~clusterlens.profiles.MassProfile`) can be the cluster halo.
    """

    @classmethod
    def from_m500(
        cls,
        m500,
        z_lens,
        z_source,
        q=1.0,
        phi=0.0,
        x0=0.0,
        y0=0.0,
        *,
        cosmology=None,
        concentration_model: str = "ishiyama21",
        c500c: float | None = None,
    ):
        """The cluster halo from its catalog mass M_500c (Msun, no h), at ``z_lens``, lensing
        a source at ``z_source``, with axis ratio ``q`` and position angle ``phi`` (degrees).

        The concentration comes from colossus (``concentration_model``, or a given
        ``c500c``), the halo is converted to 200c (:func:`clusterlens.cosmology.nfw_halo`)
        and then to ``(rs, alpha_rs)`` by :func:`nfw_angles`.
        """
        from clusterlens import cosmology as cosmo

        halo = cosmo.nfw_halo(
            m500,
            z_lens,
            cosmology=cosmology,
            concentration_model=concentration_model,
            c500c=c500c,
        )
        rs, alpha_rs = nfw_angles(halo.m200c, halo.c200c, z_lens, z_source, cosmology=cosmology)
        return cls(rs, alpha_rs, q, phi, x0, y0)


class _NFWKernels(KernelProfile):
    """Private methods shared by NFW and ENFW: one kernel, constants in ``_consts``."""

    _consts: tuple

    def _accumulate(self, mode, x, y, o1, o2, o3):
        _kernels.enfw_all(x, y, self._consts, mode, o1, o2, o3)

    def scaled(self, factor: float):
        """The same halo with ``alpha_rs`` (every lensing quantity) times ``factor``."""
        return _scaled_halo(self, factor)

    def _set_consts(self, q, phi):
        e = (1.0 - q * q) / (1.0 + q * q)
        p = math.radians(phi)
        consts = (
            float(self.x0),
            float(self.y0),
            math.cos(p),
            math.sin(p),
            math.sqrt(1.0 - e),
            math.sqrt(1.0 + e),
            float(self.rs),
            float(self.alpha_rs) / _ONE_PLUS_LN_HALF,
        )
        object.__setattr__(self, "_consts", consts)


@dataclass(frozen=True)
class NFW(_NFWKernels):
    """Spherical NFW lens (lenstronomy ``NFW`` parameterisation).

    Parameters
    ----------
    rs : float
        Scale radius in arcsec, > 0.
    alpha_rs : float
        Deflection at ``rs`` in arcsec, >= 0.
    x0, y0 : float
        Centre in arcsec.
    """

    rs: float
    alpha_rs: float
    x0: float = 0.0
    y0: float = 0.0
    _consts: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        validate_halo(self, elliptical=False)
        self._set_consts(1.0, 0.0)


@dataclass(frozen=True)
class ENFW(_HaloFromMass, _NFWKernels):
    """Pseudo-elliptical NFW lens (Golse & Kneib 2002; lenstronomy ``NFW_ELLIPSE_POTENTIAL``).

    Parameters
    ----------
    rs : float
        Scale radius in arcsec, > 0.
    alpha_rs : float
        Deflection of the spherical profile at ``rs`` in arcsec, >= 0.
    q : float
        Axis ratio of the potential's ellipticity, in (0, 1].
    phi : float
        Position angle of the major axis, degrees counter-clockwise from +x.
    x0, y0 : float
        Centre in arcsec.
    """

    rs: float
    alpha_rs: float
    q: float = 1.0
    phi: float = 0.0
    x0: float = 0.0
    y0: float = 0.0
    _consts: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        validate_halo(self, elliptical=True)
        self._set_consts(self.q, self.phi)
