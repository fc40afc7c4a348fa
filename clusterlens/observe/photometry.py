"""AB magnitudes and nanomaggies, the flux unit of the Legacy Surveys.

``m_AB = 22.5 - 2.5 log10(f / nanomaggy)``: 1 nanomaggy is m_AB = 22.5, i.e. 3.631 microJy.
The definitions live in :mod:`clusterlens._photometry`, below both ``sources`` and
``observe``; this module is their public name.
"""

from __future__ import annotations

from clusterlens._photometry import ZERO_POINT, mag_to_nanomaggies, nanomaggies_to_mag

__all__ = ["ZERO_POINT", "mag_to_nanomaggies", "nanomaggies_to_mag"]
