"""What a synthetic cluster field is drawn into and with: the drawn field, the working form of
its tables, and the samplers of member radii and stellar masses (see :mod:`clusterlens.fields`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from astropy.table import Table
from scipy.special import gammainc

from clusterlens.confusers import CONFUSER_KINDS

__all__ = ["SyntheticField"]


class SyntheticField(NamedTuple):
    """One drawn cluster field."""

    image: np.ndarray
    """float32 ``(3, N, N)``: observed cutout [nanomaggies], bands g, r, z."""
    noiseless: np.ndarray
    """float32 ``(3, N, N)``: the same, PSF-convolved, before noise."""
    members: Table
    """Member galaxies (BCG first): x, y [arcsec], stellar_mass [Msun], q, phi [deg],
    r_e [arcsec], n, mag_g/r/z [AB], is_bcg, z.  Positions relative to the cutout centre."""
    field_galaxies: Table
    """Foreground/background galaxies (not cluster members): same light columns."""
    stars: Table
    """Stars: x, y [arcsec], mag_g/r/z."""
    confusers: tuple = ()
    """The confusers painted (:class:`clusterlens.confusers.Confuser`: kind, x, y [arcsec],
    mag_r [AB; 99 for masks], params)."""
    mask: np.ndarray | None = None
    """bool ``(3, N, N)``: True where a mask or a saturated star overwrote the pixel."""
    hard_negative: bool = False
    """Whether the field was drawn as a hard negative."""

    def confuser_counts(self) -> dict[str, int]:
        """Number of confusers of each kind (every kind of ``CONFUSER_KINDS``, zeros too)."""
        counts = dict.fromkeys(CONFUSER_KINDS, 0)
        for c in self.confusers:
            counts[c.kind] += 1
        return counts


class _Columns(dict):
    """A table's columns as plain arrays, with its units and meta: the field's working form
    (building an astropy Table costs ~0.5 ms; :meth:`SyntheticClusterField.draw` builds
    them for its result, the mock sky reads the columns directly)."""

    def __init__(self, columns, units=None, meta=None):
        super().__init__(columns)
        self.units = dict(units or {})
        self.meta = dict(meta or {})

    @property
    def colnames(self) -> list[str]:
        return list(self)

    def table(self) -> Table:
        return Table(dict(self), units=self.units, meta=self.meta)


def _n_rows(table) -> int:
    return len(next(iter(table.values()))) if isinstance(table, dict) else len(table)


def _sample_nfw_radius(rng, size, c):
    """3-D radii in units of R500 of an NFW number density with concentration ``c``,
    truncated at R500: inverse of ``m(x) = ln(1 + x) - x / (1 + x)`` tabulated."""
    xs = np.linspace(0.0, c, 2049)
    m = np.log1p(xs) - xs / (1.0 + xs)
    uu = rng.uniform(0.0, m[-1], size)
    return np.interp(uu, m, xs) / c


def _sample_schechter(rng, size, log_mchar, alpha, log_min, log_max):
    """log10 stellar masses from a Schechter mass function ``phi(M) ~ (M/M*)^alpha
    exp(-M/M*)`` between 10^log_min and 10^log_max: inverse CDF in ``t = M / M*`` tabulated
    with the incomplete gamma function where ``alpha > -1`` and numerically otherwise."""
    t = np.logspace(log_min - log_mchar, log_max - log_mchar, 4097)
    if alpha > -1.0:
        cdf = gammainc(alpha + 1.0, t)
    else:  # dN/dlog t ~ t^(alpha+1) exp(-t): cumulative trapezoid in log t
        dens = t ** (alpha + 1.0) * np.exp(-t)
        lt = np.log(t)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(lt))])
    cdf = (cdf - cdf[0]) / (cdf[-1] - cdf[0])
    uu = rng.uniform(0.0, 1.0, size)
    return np.interp(uu, cdf, np.log10(t)) + log_mchar
