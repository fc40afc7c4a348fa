"""Cosmology helpers: cluster radii and masses, lensing distances, Einstein radii, NFW halos.

Every function takes an optional ``cosmology`` (any :mod:`astropy.cosmology` object); the
default is ``FlatLambdaCDM(H0=70, Om0=0.3)``, the cosmology of the Zou et al. (2021, ApJS 253,
56) cluster catalog.  Units: masses in Msun (no h), distances and radii in Mpc (physical),
angles in arcsec, velocity dispersions in km/s.  Functions accept scalars or arrays and
broadcast them (numpy rules); astropy Quantities are converted to these units (results stay
plain floats in them); bad input, a Quantity of an incompatible unit among it, raises
:class:`~clusterlens.errors.ParameterError` naming the parameter.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.constants import G, c
from astropy.cosmology import FlatLambdaCDM

from clusterlens._validation import as_value, check_array, check_scalar
from clusterlens.errors import ParameterError

__all__ = [
    "COLOSSUS_DEFAULTS",
    "DEFAULT_COSMOLOGY",
    "colossus_cosmology",
    "NFWHalo",
    "angular_diameter_distances",
    "critical_density",
    "m500",
    "nfw_halo",
    "r500",
    "sigma_crit",
    "sigma_crit_arcsec2",
    "sigma_to_theta_e",
    "velocity_dispersion",
]

#: The default cosmology: flat LambdaCDM with H0 = 70 km/s/Mpc and Omega_m = 0.3.
DEFAULT_COSMOLOGY = FlatLambdaCDM(H0=70.0, Om0=0.3)

_C_KMS = c.to_value(u.km / u.s)
_RAD_TO_ARCSEC = 180.0 / math.pi * 3600.0
# c^2 / (4 pi G) in Msun / Mpc
_C2_OVER_4PIG = (c**2 / (4.0 * math.pi * G)).to_value(u.Msun / u.Mpc)


def _array(value, name, owner, unit="", **bounds):
    """check_array for scalars too (validated as 1-element arrays), keeping the shape; a
    Quantity is converted to ``unit`` first (dimensionless by default: redshifts)."""
    value = as_value(value, unit, name, owner)
    shape = np.shape(value)
    return check_array(np.atleast_1d(value), name, owner, **bounds).reshape(shape)


def _cosmo(cosmology):
    return DEFAULT_COSMOLOGY if cosmology is None else cosmology


def _positive(value, name, owner, unit, *, allow_zero=False):
    return _array(value, name, owner, unit, low=0.0, low_inclusive=allow_zero)


def _redshift_pair(z_lens, z_source, owner):
    zl = _array(z_lens, "z_lens", owner, low=0.0)
    zs = _array(z_source, "z_source", owner, low=0.0)
    try:
        zl, zs = np.broadcast_arrays(zl, zs)
    except ValueError as exc:
        raise ParameterError(
            f"The 'z_lens' and 'z_source' parameters of {owner} must have broadcastable "
            f"shapes. Got {np.shape(zl)} and {np.shape(zs)}."
        ) from exc
    bad = zs <= zl
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise ParameterError(
            f"The 'z_source' parameter of {owner} must be larger than 'z_lens'. "
            f"Got z_source={zs.ravel()[i]!r} <= z_lens={zl.ravel()[i]!r}."
        )
    return zl, zs


def _broadcast(owner, **arrays):
    try:
        return np.broadcast_arrays(*arrays.values())
    except ValueError as exc:
        shapes = ", ".join(f"{k}={np.shape(v)}" for k, v in arrays.items())
        raise ParameterError(
            f"The parameters of {owner} must have broadcastable shapes. Got {shapes}."
        ) from exc


def _scalar_or_array(x):
    return float(x) if np.ndim(x) == 0 else x


# --- masses and radii ------------------------------------------------------------------------


def critical_density(z, cosmology=None) -> float | np.ndarray:
    """Critical density of the Universe rho_c(z) = 3 H(z)^2 / (8 pi G), in Msun/Mpc^3."""
    z = _array(z, "z", "critical_density", low=0.0)
    rho = _cosmo(cosmology).critical_density(z).to_value(u.Msun / u.Mpc**3)
    return _scalar_or_array(rho)


def r500(m500, z, cosmology=None) -> float | np.ndarray:
    """Radius R_500c (Mpc) inside which the mean density is 500 rho_c(z).

    R_500 = (3 M_500 / (4 pi 500 rho_c(z)))^(1/3).

    Parameters
    ----------
    m500 : float or array_like
        Mass M_500c in Msun (no h), > 0.
    z : float or array_like
        Redshift, >= 0.
    cosmology : astropy.cosmology.Cosmology, optional
        Default :data:`DEFAULT_COSMOLOGY`.
    """
    m = _positive(m500, "m500", "r500", "Msun")
    z = _array(z, "z", "r500", low=0.0)
    m, z = _broadcast("r500", m500=m, z=z)
    rho = _cosmo(cosmology).critical_density(z).to_value(u.Msun / u.Mpc**3)
    return _scalar_or_array(np.cbrt(3.0 * m / (4.0 * math.pi * 500.0 * rho)))


def m500(r500, z, cosmology=None) -> float | np.ndarray:
    """Mass M_500c (Msun) inside the radius ``r500`` (Mpc): the inverse of :func:`r500`."""
    r = _positive(r500, "r500", "m500", "Mpc")
    z = _array(z, "z", "m500", low=0.0)
    r, z = _broadcast("m500", r500=r, z=z)
    rho = _cosmo(cosmology).critical_density(z).to_value(u.Msun / u.Mpc**3)
    return _scalar_or_array(4.0 / 3.0 * math.pi * 500.0 * rho * r**3)


# --- lensing distances ---------------------------------------------------------------------


def angular_diameter_distances(
    z_lens, z_source, cosmology=None
) -> tuple[float | np.ndarray, float | np.ndarray, float | np.ndarray]:
    """Angular-diameter distances ``(D_d, D_s, D_ds)`` in Mpc.

    D_d to the lens, D_s to the source and D_ds from the lens to the source.
    """
    zl, zs = _redshift_pair(z_lens, z_source, "angular_diameter_distances")
    cosmo = _cosmo(cosmology)
    d_d = cosmo.angular_diameter_distance(zl).to_value(u.Mpc)
    d_s = cosmo.angular_diameter_distance(zs).to_value(u.Mpc)
    if "z2" in inspect.signature(cosmo.angular_diameter_distance).parameters:
        d_ds = cosmo.angular_diameter_distance(zl, zs).to_value(u.Mpc)
    else:  # astropy < 7
        d_ds = cosmo.angular_diameter_distance_z1z2(zl, zs).to_value(u.Mpc)
    return _scalar_or_array(d_d), _scalar_or_array(d_s), _scalar_or_array(d_ds)


def sigma_crit(z_lens, z_source, cosmology=None) -> float | np.ndarray:
    """Critical surface density Sigma_cr = c^2 D_s / (4 pi G D_d D_ds), in Msun/Mpc^2."""
    d_d, d_s, d_ds = angular_diameter_distances(z_lens, z_source, cosmology)
    return _C2_OVER_4PIG * np.asarray(d_s) / (np.asarray(d_d) * np.asarray(d_ds)) * 1.0


def sigma_crit_arcsec2(z_lens, z_source, cosmology=None) -> float | np.ndarray:
    """Critical surface density per square arcsec at the lens, Sigma_cr D_d^2, in Msun/arcsec^2."""
    d_d, _, _ = angular_diameter_distances(z_lens, z_source, cosmology)
    return sigma_crit(z_lens, z_source, cosmology) * (np.asarray(d_d) / _RAD_TO_ARCSEC) ** 2


def sigma_to_theta_e(sigma_kms, z_lens, z_source, cosmology=None) -> float | np.ndarray:
    """Einstein radius (arcsec) of an SIS/SIE with velocity dispersion ``sigma_kms``.

    theta_E = 4 pi (sigma / c)^2 D_ds / D_s (intermediate-axis convention for the SIE).
    Example: sigma = 250 km/s, z_l = 0.4, z_s = 2 in the default cosmology -> 1.263".
    """
    sigma = _positive(sigma_kms, "sigma_kms", "sigma_to_theta_e", "km/s", allow_zero=True)
    _, d_s, d_ds = angular_diameter_distances(z_lens, z_source, cosmology)
    theta = 4.0 * math.pi * (sigma / _C_KMS) ** 2 * np.asarray(d_ds) / np.asarray(d_s)
    return _scalar_or_array(theta * _RAD_TO_ARCSEC)


# --- member galaxies ------------------------------------------------------------------------

# Zahid et al. (2016, ApJ 832, 203) broken power law for quiescent galaxies.
_ZAHID_LOG_SIGMA_B = 2.07
_ZAHID_LOG_MB = 10.26
_ZAHID_ALPHA_LOW = 0.403
_ZAHID_ALPHA_HIGH = 0.293


def velocity_dispersion(stellar_mass, *, relation: str = "zahid2016") -> float | np.ndarray:
    """Central stellar velocity dispersion (km/s) of a quiescent galaxy from its stellar mass.

    ``relation="zahid2016"`` (default), Zahid et al. 2016 (ApJ 832, 203), a broken power law

        log10 sigma = 2.07 + alpha (log10 M* - 10.26),
        alpha = 0.403 below the break (M* < 10^10.26 Msun), 0.293 above it.

    The paper's abstract (arXiv:1607.04275) confirms sigma ~ M*^0.3 above ~10^10.3 Msun; the
    break values (sigma_b = 10^2.07 km/s, M_b = 10^10.26 Msun, slopes 0.403 / 0.293) are
    as commonly quoted from its Table 1 and were not re-checked against the table here.

    ``relation="auger2010"``: sigma = 10^2.32 (M* / 1e11 Msun)^0.24 km/s (Auger et al. 2010,
    as used in slsim).

    Parameters
    ----------
    stellar_mass : float or array_like
        Stellar mass in Msun (no h), > 0.
    relation : {"zahid2016", "auger2010"}
    """
    m = _positive(stellar_mass, "stellar_mass", "velocity_dispersion", "Msun")
    logm = np.log10(m)
    if relation == "zahid2016":
        alpha = np.where(logm < _ZAHID_LOG_MB, _ZAHID_ALPHA_LOW, _ZAHID_ALPHA_HIGH)
        log_sigma = _ZAHID_LOG_SIGMA_B + alpha * (logm - _ZAHID_LOG_MB)
    elif relation == "auger2010":
        log_sigma = 2.32 + 0.24 * (logm - 11.0)
    else:
        raise ParameterError(
            "The 'relation' parameter of velocity_dispersion must be 'zahid2016' or "
            f"'auger2010'. Got {relation!r} instead."
        )
    return _scalar_or_array(10.0**log_sigma)


# --- NFW halos through colossus ----------------------------------------------------------------

#: Parameters colossus needs that a bare astropy FlatLambdaCDM(H0, Om0) does not carry.
COLOSSUS_DEFAULTS = {"Ob0": 0.049, "sigma8": 0.81, "ns": 0.965}


def colossus_cosmology(cosmology=None, *, sigma8=None, ns=None):
    """Set colossus to the astropy ``cosmology`` (flat only) and return the colossus object.

    H0, Om0 and Ob0 come from the astropy object (Ob0 from :data:`COLOSSUS_DEFAULTS` when it
    has none), sigma8 and ns from the arguments or the defaults.
    """
    from colossus.cosmology import cosmology as ccosmo

    cosmo = _cosmo(cosmology)
    if abs(float(cosmo.Ok0)) > 1e-10:
        raise ParameterError(
            f"The 'cosmology' parameter must be a flat cosmology for colossus. Got Ok0={cosmo.Ok0}."
        )
    ob0 = cosmo.Ob0 if cosmo.Ob0 else COLOSSUS_DEFAULTS["Ob0"]
    tcmb0 = float(cosmo.Tcmb0.to_value(u.K))
    params = {
        "flat": True,
        "H0": float(cosmo.H0.to_value(u.km / u.s / u.Mpc)),
        "Om0": float(cosmo.Om0),
        "Ob0": float(ob0),
        "sigma8": float(COLOSSUS_DEFAULTS["sigma8"] if sigma8 is None else sigma8),
        "ns": float(COLOSSUS_DEFAULTS["ns"] if ns is None else ns),
        # colossus needs a CMB temperature for its power spectrum; the background has no
        # radiation term when the astropy object has none (Tcmb0 = 0)
        "Tcmb0": tcmb0 if tcmb0 > 0 else 2.7255,
        "relspecies": tcmb0 > 0,
    }
    current = ccosmo.current_cosmo
    if current is not None and all(
        getattr(current, k, None) == v for k, v in params.items() if k != "flat"
    ):
        return current
    return ccosmo.setCosmology("clusterlens", **params)


@dataclass(frozen=True)
class NFWHalo:
    """A spherical NFW halo in physical units (Msun, Mpc; no h).

    Attributes
    ----------
    m500c, c500c : float
        Mass inside R_500c and concentration R_500c / r_s.
    m200c, c200c, r200c : float
        The same halo in the 200c definition; r200c in Mpc.
    rs : float
        Scale radius r_s in Mpc.
    rho0 : float
        Characteristic density in Msun/Mpc^3: rho = rho0 / ((r/rs)(1 + r/rs)^2).
    valid : bool
        Whether the concentration model is calibrated for this mass and redshift.
    """

    m500c: float
    c500c: float
    m200c: float
    c200c: float
    r200c: float
    rs: float
    rho0: float
    valid: bool


def nfw_halo(
    m500,
    z,
    *,
    cosmology=None,
    concentration_model: str = "ishiyama21",
    c500c: float | None = None,
) -> NFWHalo:
    """NFW halo of a cluster of mass M_500c (Msun) at redshift ``z``, via colossus.

    The concentration c500c comes from colossus' ``concentration_model`` (``ishiyama21``
    has 500c natively; others are converted) unless ``c500c`` is given; the halo is then
    converted to 200c with ``mass_defs.changeMassDefinition`` (NFW profile).  colossus is set
    to the same cosmology as ``cosmology`` (see :func:`colossus_cosmology`) and works in
    Msun/h and kpc/h: masses are multiplied by h going in and divided coming out, radii
    converted from kpc/h to Mpc.
    """
    from colossus.halo import concentration, mass_defs

    owner = "nfw_halo"
    m = check_scalar(
        as_value(m500, "Msun", "m500", owner), "m500", owner, low=0.0, low_inclusive=False
    )
    zz = check_scalar(as_value(z, "", "z", owner), "z", owner, low=0.0)
    ccosmo = colossus_cosmology(cosmology)
    h = ccosmo.H0 / 100.0
    if c500c is None:
        c500, valid = concentration.concentration(
            m * h, "500c", zz, model=concentration_model, range_return=True
        )
        c500, valid = float(c500), bool(valid)
    else:
        c500 = as_value(c500c, "", "c500c", owner)
        c500 = check_scalar(c500, "c500c", owner, low=0.0, low_inclusive=False)
        valid = True
    m200_h, r200_kpch, c200 = mass_defs.changeMassDefinition(
        m * h, c500, zz, "500c", "200c", profile="nfw"
    )
    m200 = float(m200_h) / h
    r200 = float(r200_kpch) / h / 1000.0
    c200 = float(c200)
    rs = r200 / c200
    rho_c = critical_density(zz, cosmology)
    rho0 = 200.0 / 3.0 * rho_c * c200**3 / (math.log(1.0 + c200) - c200 / (1.0 + c200))
    return NFWHalo(m, c500, m200, c200, r200, rs, rho0, valid)
