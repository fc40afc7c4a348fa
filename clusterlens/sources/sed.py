"""Observed g, r, z colours of star-forming galaxies from a redshifted analytic SED.

No template library is shipped: the rest-frame spectrum is a documented analytic shape that
captures the three features that set broad-band colours of star-forming galaxies from
z = 0 to 4 (see ``docs/sources.md``):

- the UV continuum, ``f_lambda ~ lambda^beta`` (``f_nu ~ lambda^(beta + 2)``) between the
  Lyman limit and 4000 A, with the UV slope ``beta`` (Calzetti et al. 1994; beta ~ -2.5 for
  young dust-free populations to ~0 for dusty ones);
- the Balmer / 4000 A break, a step of ``balmer_break`` (the ratio of ``f_nu`` redward to
  blueward of 4000 A, D4000 ~ 1.1-1.5 for star-forming galaxies, Kauffmann et al. 2003);
- the rest-optical continuum redward of 4000 A, ``f_lambda ~ lambda^beta_opt``;
- no flux below the Lyman limit (912 A rest; escape fractions are small), and the mean
  intergalactic H I absorption of Madau (1995): line blanketing by the Lyman series
  (Ly alpha - delta) with ``tau_j = A_j (lambda_obs / lambda_j)^3.46`` for
  ``lambda_obs < lambda_j (1 + z)``, ``A_j = 3.6e-3, 1.7e-3, 1.2e-3, 9.3e-4``.  The g band
  therefore drops out above z ~ 3 (Lyman-break galaxies).

The passbands are top-hats between the half-maximum wavelengths of the DECam 2014 total
throughput curves (atmosphere included) shipped with ``speclite`` (``decam2014-g/r/z``):
g 4180-5470 A, r 5680-7150 A, z 8490-9960 A (effective wavelengths 4890, 6470, 9196 A).
Magnitudes are AB photon-counting averages, ``<f_nu> = int f_nu T dlambda / lambda /
int T dlambda / lambda``; the tests compare the colours with speclite's full curves.
"""

from __future__ import annotations

import numpy as np

from clusterlens._validation import check_array
from clusterlens.errors import ParameterError

__all__ = ["PASSBANDS", "BREAK_WAVELENGTH", "igm_transmission", "sed_fnu", "sed_colours"]

#: Top-hat DECam passbands [Angstrom] (half-maximum edges of speclite's decam2014 curves).
PASSBANDS: dict[str, tuple[float, float]] = {
    "g": (4180.0, 5470.0),
    "r": (5680.0, 7150.0),
    "z": (8490.0, 9960.0),
}
#: Rest wavelength [Angstrom] of the Balmer / 4000 A break step.
BREAK_WAVELENGTH = 4000.0
_LYMAN_LIMIT = 911.75
# Madau (1995), Table 2: Lyman-series wavelengths [A] and line-blanketing coefficients
_LYMAN_LINES = np.array([1215.67, 1025.72, 972.54, 949.74])
_LYMAN_A = np.array([3.6e-3, 1.7e-3, 1.2e-3, 9.3e-4])
_N_SAMPLES = 48  # log-spaced samples per band: colours converge to < 1e-3 mag


def _band_grid():
    out = []
    for lo, hi in PASSBANDS.values():
        edges = np.geomspace(lo, hi, _N_SAMPLES + 1)
        out.append(np.sqrt(edges[1:] * edges[:-1]))  # uniform in ln(lambda): weight 1/lambda
    return np.stack(out)  # (3, _N_SAMPLES)


_GRID = _band_grid()


def igm_transmission(wavelength, redshift) -> np.ndarray:
    """Mean IGM transmission ``exp(-tau)`` of Madau (1995), Lyman-series line blanketing.

    Parameters
    ----------
    wavelength : array_like
        Observed wavelength [Angstrom].
    redshift : array_like
        Source redshift (broadcast against ``wavelength``).

    Returns
    -------
    ndarray
        Transmission in (0, 1].  Below the redshifted Lyman limit the source itself emits
        nothing here (:func:`sed_fnu`), so the Lyman-continuum term is not needed.
    """
    lam = np.asarray(wavelength, dtype=float)
    z1 = 1.0 + np.asarray(redshift, dtype=float)
    tau = np.zeros(np.broadcast_shapes(lam.shape, z1.shape))
    for lam_j, a_j in zip(_LYMAN_LINES, _LYMAN_A, strict=True):
        tau = tau + np.where(lam < lam_j * z1, a_j * (lam / lam_j) ** 3.46, 0.0)
    return np.exp(-tau)


def sed_fnu(rest_wavelength, uv_slope, optical_slope, balmer_break) -> np.ndarray:
    """Rest-frame ``f_nu`` (arbitrary units) of the analytic star-forming SED.

    ``f_nu = (lambda / 4000)^(beta + 2)`` between the Lyman limit and 4000 A,
    ``D (lambda / 4000)^(beta_opt + 2)`` redward of it, 0 below 912 A.  Arguments broadcast.

    Parameters
    ----------
    rest_wavelength : array_like
        [Angstrom].
    uv_slope, optical_slope : array_like
        ``beta`` and ``beta_opt`` of ``f_lambda ~ lambda^beta``.
    balmer_break : array_like
        ``D``, the ``f_nu`` ratio across 4000 A (>= 1 for a break).
    """
    lam = np.asarray(rest_wavelength, dtype=float)
    x = lam / BREAK_WAVELENGTH
    blue = x ** (np.asarray(uv_slope) + 2.0)
    red = np.asarray(balmer_break) * x ** (np.asarray(optical_slope) + 2.0)
    f = np.where(x < 1.0, blue, red)
    return np.where(lam < _LYMAN_LIMIT, 0.0, f)


def sed_colours(redshift, uv_slope, optical_slope, balmer_break) -> tuple[np.ndarray, np.ndarray]:
    """Observed ``g - r`` and ``r - z`` [AB mag] of the SED at ``redshift``.

    Parameters
    ----------
    redshift, uv_slope, optical_slope, balmer_break : array_like
        One value per source (1-D arrays of one length, or scalars).

    Returns
    -------
    (ndarray, ndarray)
        ``g - r`` and ``r - z``.  A g-band flux that the IGM removes entirely gives
        ``g - r`` = 30 (no source in the simulated range reaches it).
    """
    owner = "sed_colours"
    z = check_array(redshift, "redshift", owner, low=0.0)
    beta = check_array(uv_slope, "uv_slope", owner, low=-5.0, high=5.0)
    beta_opt = check_array(optical_slope, "optical_slope", owner, low=-5.0, high=5.0)
    d = check_array(balmer_break, "balmer_break", owner, low=0.1, high=10.0)
    try:
        z, beta, beta_opt, d = np.broadcast_arrays(
            *(np.atleast_1d(v) for v in (z, beta, beta_opt, d))
        )
    except ValueError:
        raise ParameterError(
            f"The arguments of {owner} must have one length (one value per source)."
        ) from None
    z1 = (1.0 + z)[:, None, None]
    lam_obs = _GRID[None]  # (1, 3, n)
    f = sed_fnu(lam_obs / z1, beta[:, None, None], beta_opt[:, None, None], d[:, None, None])
    f = f * igm_transmission(lam_obs, z[:, None, None])
    mean = f.mean(axis=2)  # log-spaced samples: the 1/lambda-weighted average
    mean = np.maximum(mean, mean[:, 1:2] * 1e-12)
    mag = -2.5 * np.log10(mean)
    return mag[:, 0] - mag[:, 1], mag[:, 1] - mag[:, 2]
