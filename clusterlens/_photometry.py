"""AB magnitudes and nanomaggies, the flux unit of the Legacy Surveys (private home).

``m_AB = 22.5 - 2.5 log10(f / nanomaggy)``: 1 nanomaggy is m_AB = 22.5, i.e. 3.631 microJy.
The convention sits below every stage that needs it (``sources`` describe galaxies in
magnitudes, ``observe`` turns them into pixels), so that neither imports the other for it;
:mod:`clusterlens.observe.photometry` is its public name.
"""

from __future__ import annotations

import numpy as np

from clusterlens._validation import as_value, check_array

__all__ = ["ZERO_POINT", "mag_to_nanomaggies", "nanomaggies_to_mag"]

#: AB magnitude of a flux of one nanomaggy.
ZERO_POINT = 22.5


def mag_to_nanomaggies(mag) -> float | np.ndarray:
    """Flux [nanomaggies] of an AB magnitude: ``10^(0.4 (22.5 - m))``."""
    mag = as_value(mag, ("mag", "mag(AB)"), "mag", "mag_to_nanomaggies")
    scalar = np.ndim(mag) == 0
    m = check_array(np.atleast_1d(mag), "mag", "mag_to_nanomaggies")
    out = 10.0 ** (0.4 * (ZERO_POINT - m))
    return float(out[0]) if scalar else out


def nanomaggies_to_mag(flux) -> float | np.ndarray:
    """AB magnitude of a positive flux [nanomaggies]: ``22.5 - 2.5 log10(f)``."""
    scalar = np.ndim(flux) == 0
    f = check_array(np.atleast_1d(flux), "flux", "nanomaggies_to_mag", low=0.0, low_inclusive=False)
    out = ZERO_POINT - 2.5 * np.log10(f)
    return float(out[0]) if scalar else out
