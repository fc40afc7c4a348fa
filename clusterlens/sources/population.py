"""Populations of background sources: the realistic default, the paper's Table 1 (the
``paper`` preset), or a user's catalog.

Every draw takes a :class:`numpy.random.Generator` or a seed and returns plain data: a
:class:`DrawnSource` (a :class:`~clusterlens.sources.Sersic` plus its redshift and colour
class) or an astropy :class:`~astropy.table.Table` of many draws.

Where it lives
--------------
This module holds the populations (:class:`SourcePopulation`, :class:`CatalogSourcePopulation`)
and :class:`DrawnSource`; ``_distributions`` holds the parameter distributions
(:class:`Uniform`, :class:`TruncatedNormal`, :class:`TruncatedLogNormal`,
:class:`SmailRedshift`) and ``_population_config`` the :class:`SourcePopulationConfig` with
its checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from astropy.table import Table
from scipy.special import ndtr, ndtri

from clusterlens._photometry import ZERO_POINT
from clusterlens._validation import check_int, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.sources._distributions import (
    Distribution,
    SmailRedshift,
    TruncatedLogNormal,
    TruncatedNormal,
    Uniform,
    _rng,
)
from clusterlens.sources._population_config import COLOUR_CLASSES, SourcePopulationConfig

# importable from here as before the split (clusterlens.mock.config reads DISTRIBUTION_FIELDS)
from clusterlens.sources._population_config import COLOUR_MODELS as COLOUR_MODELS
from clusterlens.sources._population_config import DISTRIBUTION_FIELDS as DISTRIBUTION_FIELDS
from clusterlens.sources._population_config import SIZE_MODELS as SIZE_MODELS
from clusterlens.sources.sed import sed_colours
from clusterlens.sources.sersic import BANDS, Sersic, StructuredSource

__all__ = [
    "Uniform",
    "TruncatedNormal",
    "TruncatedLogNormal",
    "SmailRedshift",
    "COLOUR_CLASSES",
    "SourcePopulationConfig",
    "DrawnSource",
    "SourcePopulation",
    "CatalogSourcePopulation",
]

# The dataclasses moved to private modules keep their own ``__module__``: Sphinx reads
# their fields' documentation from its source.


@dataclass(frozen=True)
class DrawnSource:
    """One drawn source: its light profile, redshift, colour class and drawn parameters."""

    profile: Sersic | StructuredSource
    redshift: float
    colour_class: str
    n_clumps: int = 0
    clump_fraction: float = 0.0

    def as_dict(self) -> dict:
        """Flat dictionary of every parameter (for a parameter table)."""
        p = self.profile
        mags = p.magnitudes
        return {
            "source_x": p.x,
            "source_y": p.y,
            "source_r_e": p.r_e,
            "source_n": p.n,
            "source_q": p.q,
            "source_phi": p.phi,
            **{f"source_mag_{b}": float(m) for b, m in zip(BANDS, mags, strict=True)},
            "source_redshift": self.redshift,
            "source_colour": self.colour_class,
            "source_n_clumps": self.n_clumps,
            "source_clump_flux_fraction": self.clump_fraction,
        }


_UNITS = {"r_e": "arcsec", "phi": "deg", "mag_g": "mag", "mag_r": "mag", "mag_z": "mag"}


def _colour_class(g_minus_r) -> np.ndarray:
    """Class index (0 red, 1 green, 2 blue) of section 2.2 by g - r."""
    gr = np.asarray(g_minus_r, dtype=float)
    return np.where(gr >= 1.3, 0, np.where(gr <= 0.8, 2, 1))


def _row_value(row, name, default):
    try:
        return row[name]
    except (KeyError, ValueError, IndexError):
        return default


class _Population:
    """Shared drawing logic: subclasses implement ``draw_table``."""

    def draw_table(self, size: int, rng=None, *, min_redshift: float | None = None) -> Table:
        raise NotImplementedError

    def _draw_row(self, rng, *, min_redshift: float | None = None):
        """One draw, ``draw_table(1, rng, min_redshift=...)[0]``: indexable by column name
        (the simulator draws its sources one at a time)."""
        return self.draw_table(1, rng, min_redshift=min_redshift)[0]

    def make_source(self, row, *, x: float = 0.0, y: float = 0.0):
        """The light profile of one row of :meth:`draw_table`, centred at ``(x, y)``
        [arcsec, source plane]: a :class:`~clusterlens.sources.Sersic`, or a
        :class:`~clusterlens.sources.StructuredSource` when the row has clumps.

        The clumps' positions, sizes and flux shares are drawn from the row's ``clump_seed``,
        so the same row always gives the same source.
        """
        body = dict(
            x=x,
            y=y,
            r_e=float(row["r_e"]),
            n=float(row["n"]),
            q=float(row["q"]),
            phi=float(row["phi"]),
        )
        k = int(_row_value(row, "n_clumps", 0))
        mags = [row["mag_g"], row["mag_r"], row["mag_z"]]
        if k == 0:
            return Sersic.from_magnitudes(mags, **body)
        return _structured(row, body, k, self._clump_config())

    def _clump_config(self):
        return SourcePopulationConfig()

    def draw(self, rng=None, *, center=(0.0, 0.0), min_redshift: float | None = None):
        """Draw one source centred at ``center`` (source plane, arcsec).

        Parameters
        ----------
        rng : numpy.random.Generator or int or None
        center : (float, float)
            Source-plane position [arcsec] of the source centre.
        min_redshift : float, optional
            Only sources behind this redshift (e.g. the lens redshift plus a margin).

        Returns
        -------
        DrawnSource
        """
        row = self.draw_table(1, rng, min_redshift=min_redshift)[0]
        cx, cy = center
        profile = self.make_source(row, x=cx, y=cy)
        return DrawnSource(
            profile,
            float(row["redshift"]),
            str(row["colour_class"]),
            int(_row_value(row, "n_clumps", 0)),
            float(_row_value(row, "clump_fraction", 0.0)),
        )


def _structured(row, body, k, cfg) -> StructuredSource:
    """Body + ``k`` clumps of a table row (see :class:`SourcePopulationConfig`)."""
    f = float(row["clump_fraction"])
    flux_r = 10.0 ** (0.4 * (ZERO_POINT - float(row["mag_r"])))

    def fluxes(r, gr, rz):
        return np.array([r * 10.0 ** (-0.4 * gr), r, r * 10.0 ** (0.4 * rz)])

    body_flux = fluxes((1.0 - f) * flux_r, row["g_minus_r_body"], row["r_minus_z_body"])
    clump_flux = fluxes(f * flux_r, row["g_minus_r_clumps"], row["r_minus_z_clumps"])
    rng = np.random.default_rng(int(row["clump_seed"]))
    share = rng.dirichlet(np.ones(k))
    lo, hi = cfg.clump_r_e
    r_e = np.minimum(np.exp(rng.uniform(math.log(lo), math.log(hi), k)), body["r_e"])
    radius = rng.uniform(*cfg.clump_distance, k) * body["r_e"]
    t = rng.uniform(0.0, 2.0 * math.pi, k)
    sq = math.sqrt(body["q"])
    xp, yp = radius * np.cos(t) / sq, radius * np.sin(t) * sq  # on the body's ellipse
    c, s = math.cos(math.radians(body["phi"])), math.sin(math.radians(body["phi"]))
    q = rng.uniform(0.5, 1.0, k)
    phi = rng.uniform(-90.0, 90.0, k)
    clumps = tuple(
        Sersic(
            x=body["x"] + c * xp[i] - s * yp[i],
            y=body["y"] + s * xp[i] + c * yp[i],
            r_e=float(r_e[i]),
            n=0.5,
            q=float(q[i]),
            phi=float(phi[i]),
            fluxes=tuple(share[i] * clump_flux),
        )
        for i in range(k)
    )
    return StructuredSource(Sersic(fluxes=tuple(body_flux), **body), clumps)


class SourcePopulation(_Population):
    """Sources drawn from parametric distributions (defaults: the realistic population;
    the ``paper`` preset gives Table 1).

    Parameters
    ----------
    config : SourcePopulationConfig, optional
    cosmology : astropy.cosmology.Cosmology, optional
        For the luminosity and angular size of ``size_model = "redshift"``; default
        FlatLambdaCDM(H0=70, Om0=0.3).

    Examples
    --------
    >>> from clusterlens.sources import SourcePopulation
    >>> src = SourcePopulation().draw(42, center=(0.3, -0.1), min_redshift=0.6)
    >>> src.redshift > 0.6
    True
    """

    def __init__(self, config: SourcePopulationConfig | None = None, *, cosmology=None):
        if config is None:
            config = SourcePopulationConfig()
        if not isinstance(config, SourcePopulationConfig):
            raise ParameterError(
                "The 'config' parameter of SourcePopulation must be a SourcePopulationConfig. "
                f"Got {type(config).__name__} instead."
            )
        self.config = config
        self._cosmology = cosmology
        self._grid = None

    def _clump_config(self):
        return self.config

    def _distance_grid(self):
        """``(z, distance modulus, kpc per arcsec)`` on a grid up to the highest redshift."""
        if self._grid is None:
            from astropy.cosmology import FlatLambdaCDM

            cosmo = self._cosmology or FlatLambdaCDM(H0=70.0, Om0=0.3)
            z = np.geomspace(1e-3, 1.01 * self.config.redshift.high + 0.01, 256)
            dm = cosmo.distmod(z).value
            kpc = cosmo.angular_diameter_distance(z).to_value("kpc") * (math.pi / 648000.0)
            self._grid = (z, dm, kpc)
        return self._grid

    def _redshifts(self, min_redshift, owner):
        zdist = self.config.redshift
        if min_redshift is not None:
            zmin = check_scalar(min_redshift, "min_redshift", owner)
            if zmin >= zdist.high:
                raise ParameterError(
                    f"The 'min_redshift' parameter of {owner} must be below the population's "
                    f"highest redshift {zdist.high}. Got {zmin} instead."
                )
            if zmin > zdist.low:
                zdist = _with_low(zdist, zmin)
        return zdist

    def _class_magnitudes(self, rng, size):
        """Section 2.2's colour classes: ``(class index, (g, r, z) magnitudes)``."""
        cfg = self.config
        w = np.asarray(cfg.colour_weights, dtype=float)
        cls = rng.choice(3, size=size, p=w / w.sum())
        mags = np.empty((3, size))
        todo = np.arange(size)
        for _ in range(1000):  # rejection on the g and z ranges; almost always one pass
            if not todo.size:
                break
            k = cls[todo]
            r = cfg.mag_r.sample(rng, todo.size)
            gr_lo, gr_hi = np.array(cfg.g_minus_r).T
            rz_lo, rz_hi = np.array(cfg.r_minus_z).T
            g = r + rng.uniform(gr_lo[k], gr_hi[k])
            z = r - rng.uniform(rz_lo[k], rz_hi[k])
            mags[:, todo] = g, r, z
            ok = (
                (cfg.mag_g_range[0] <= g)
                & (g <= cfg.mag_g_range[1])
                & (cfg.mag_z_range[0] <= z)
                & (z <= cfg.mag_z_range[1])
            )
            todo = todo[~ok]
        if todo.size:
            raise ParameterError(
                "SourcePopulationConfig: the 'mag_r' distribution and colour ranges almost "
                "never give g and z magnitudes inside 'mag_g_range' / 'mag_z_range'."
            )
        return cls, mags

    def sizes(self, rng, mag_r, redshift) -> np.ndarray:
        """Half-light radii [arcsec] of ``size_model = "redshift"`` for observed r magnitudes
        and redshifts (arrays of one length); see :class:`SourcePopulationConfig`."""
        cfg = self.config
        rng = _rng(rng)
        z = np.maximum(np.asarray(redshift, dtype=float), 1e-3)
        zg, dm_g, kpc_g = self._distance_grid()
        dm = np.interp(z, zg, dm_g)
        kpc_per_arcsec = np.interp(z, zg, kpc_g)
        abs_mag = np.asarray(mag_r, dtype=float) - dm + 2.5 * np.log10(1.0 + z)
        ln_l = -0.4 * math.log(10.0) * (abs_mag - cfg.size_m_star)
        centre = (
            math.log(cfg.size_r0_kpc)
            - cfg.size_redshift_slope * np.log1p(z)
            + cfg.size_luminosity_slope * ln_l
            - np.log(kpc_per_arcsec)
        )
        lo, hi = math.log(cfg.r_e.low), math.log(cfg.r_e.high)
        sigma = cfg.size_scatter_ln
        if sigma == 0.0:
            return np.exp(np.clip(centre, lo, hi))
        a, b = ndtr((lo - centre) / sigma), ndtr((hi - centre) / sigma)
        # a median far outside the range leaves no probability inside it: clip to the edge
        u = rng.uniform(a, np.maximum(b, a + 1e-300))
        v = np.where(b - a > 1e-12, centre + sigma * ndtri(np.clip(u, 1e-300, 1.0)), centre)
        return np.exp(np.clip(v, lo, hi))

    def draw_table(self, size: int, rng=None, *, min_redshift: float | None = None) -> Table:
        """Draw ``size`` sources.

        Returns a Table with columns ``mag_g, mag_r, mag_z`` [AB, whole source], ``r_e``
        [arcsec], ``n``, ``q``, ``phi`` [deg], ``redshift``, ``colour_class`` (section 2.2's
        class of the total g - r), the SED's ``uv_slope``, ``optical_slope``,
        ``balmer_break`` (NaN with ``colour_model = "classes"``), ``n_clumps``,
        ``clump_fraction`` (of the r flux), ``clump_uv_slope_offset``, ``clump_seed`` and the
        colours of the body and of the clumps (``g_minus_r_body``, ``r_minus_z_body``,
        ``g_minus_r_clumps``, ``r_minus_z_clumps``).  With the ``paper`` preset the first
        nine columns are exactly those of earlier versions for the same seed.
        """
        columns = self._draw_columns(size, rng, min_redshift, "SourcePopulation.draw_table")
        return Table(columns, units=_UNITS)

    def _draw_row(self, rng, *, min_redshift: float | None = None) -> dict:
        """``draw_table(1, rng, min_redshift=...)[0]`` as a dict of numpy scalars (the same
        values and draws, without building a Table: ~1 ms per source)."""
        columns = self._draw_columns(1, rng, min_redshift, "SourcePopulation.draw_table")
        return {name: values[0] for name, values in columns.items()}

    def _draw_columns(self, size, rng, min_redshift, owner) -> dict:
        """The columns of :meth:`draw_table` as a dict of arrays."""
        size = check_int(size, "size", owner, low=0)
        rng = _rng(rng)
        cfg = self.config
        sed = cfg.colour_model == "sed"
        if sed:
            mag_r = cfg.mag_r.sample(rng, size)
        else:
            cls, mags = self._class_magnitudes(rng, size)
            mag_r = mags[1]
        zdist = self._redshifts(min_redshift, owner)
        # the order of the draws below keeps the paper preset's tables reproducible
        r_e = cfg.r_e.sample(rng, size) if cfg.size_model == "distribution" else None
        n = cfg.sersic_n.sample(rng, size)
        q = cfg.q.sample(rng, size)
        phi = cfg.phi.sample(rng, size)
        z = zdist.sample(rng, size)
        if r_e is None:
            r_e = self.sizes(rng, mag_r, z)
        nan = np.full(size, np.nan)
        if sed:
            beta = cfg.uv_slope.sample(rng, size)
            beta_opt = cfg.optical_slope.sample(rng, size)
            d4000 = cfg.balmer_break.sample(rng, size)
            gr_b, rz_b = sed_colours(z, beta, beta_opt, d4000) if size else (nan, nan)
        else:
            beta = beta_opt = d4000 = nan
            gr_b, rz_b = mags[0] - mags[1], mags[1] - mags[2]
        n_clumps = np.zeros(size, dtype=np.int64)
        frac = np.zeros(size)
        offset = np.zeros(size)
        seed = np.zeros(size, dtype=np.int64)
        if cfg.has_clumps:
            clumpy = rng.uniform(size=size) < cfg.clump_chance(z)
            lo, hi = cfg.clump_count
            n_clumps = np.where(clumpy, rng.integers(lo, hi + 1, size), 0)
            frac = np.where(clumpy, rng.uniform(*cfg.clump_flux_fraction, size), 0.0)
            offset = np.where(clumpy, rng.uniform(*cfg.clump_uv_slope_offset, size), 0.0)
            seed = rng.integers(0, 2**62, size)
        if sed and size:
            gr_c, rz_c = sed_colours(
                z, np.clip(beta - offset, -5, 5), np.clip(beta_opt - offset, -5, 5), 1.0
            )
        else:
            gr_c, rz_c = gr_b, rz_b
        if sed or cfg.has_clumps:
            # totals of body ((1 - f) of the r flux) and clumps (f), each with its colours
            def total(colour_b, colour_c, sign):  # F_band / F_r = 10^(sign 0.4 colour)
                rel = (1.0 - frac) * 10.0 ** (sign * 0.4 * colour_b) + frac * 10.0 ** (
                    sign * 0.4 * colour_c
                )
                return mag_r - 2.5 * np.log10(rel)

            mag_g = total(gr_b, gr_c, -1.0)
            mag_z = total(rz_b, rz_c, 1.0)
            if not sed:  # rows without clumps keep their drawn magnitudes bit for bit
                mag_g = np.where(n_clumps > 0, mag_g, mags[0])
                mag_z = np.where(n_clumps > 0, mag_z, mags[2])
            cls = _colour_class(mag_g - mag_r)
        else:
            mag_g, mag_z = mags[0], mags[2]
        return {
            "mag_g": mag_g,
            "mag_r": mag_r,
            "mag_z": mag_z,
            "r_e": r_e,
            "n": n,
            "q": q,
            "phi": phi,
            "redshift": z,
            "colour_class": np.array(COLOUR_CLASSES)[cls],
            "uv_slope": beta,
            "optical_slope": beta_opt,
            "balmer_break": d4000,
            "n_clumps": n_clumps,
            "clump_fraction": frac,
            "clump_uv_slope_offset": offset,
            "clump_seed": seed,
            "g_minus_r_body": gr_b,
            "r_minus_z_body": rz_b,
            "g_minus_r_clumps": gr_c,
            "r_minus_z_clumps": rz_c,
        }


def _with_low(dist, low):
    kw = {f.name: getattr(dist, f.name) for f in fields(dist)}
    kw["low"] = low
    return type(dist)(**kw)


class CatalogSourcePopulation(_Population):
    """Sources drawn (with replacement) from the rows of a user's own catalog.

    For example the Collett (2015) lensed-source population that the paper used, which the
    user supplies (it is not shipped).  The catalog needs magnitudes in g, r, z, a
    circularised half-light radius [arcsec], an axis ratio and a redshift; the Sérsic index
    and position angle may be absent, and are then drawn from ``sersic_n`` and ``phi``
    (the paper replaced Collett's n = 1 by the z = 1-2 distribution the same way).

    Parameters
    ----------
    table : astropy.table.Table
    columns : dict, optional
        Maps the library's names to the table's column names.  Keys: ``mag_g``, ``mag_r``,
        ``mag_z``, ``r_e``, ``q``, ``redshift`` (required) and ``n``, ``phi`` (optional);
        defaults are the keys themselves.
    sersic_n, phi : distribution, optional
        Used when the table has no ``n`` / ``phi`` column, or always with ``override_n``.
    override_n : bool
        Ignore the table's Sérsic index and draw it from ``sersic_n`` (what the paper did).
    colour_weights : (float, float, float) or None
        If given, first draw a colour class (red, green, blue by g - r, section 2.2) with
        these weights, then a row of that class: the paper's 1:1:2 reweighting.  ``None``
        draws rows uniformly.
    """

    _REQUIRED = ("mag_g", "mag_r", "mag_z", "r_e", "q", "redshift")
    _OPTIONAL = ("n", "phi")

    def __init__(
        self,
        table: Table,
        *,
        columns: dict | None = None,
        sersic_n: Distribution | None = None,
        phi: Distribution | None = None,
        override_n: bool = False,
        colour_weights: tuple[float, float, float] | None = None,
    ):
        owner = "CatalogSourcePopulation"
        if not isinstance(table, Table):
            raise ParameterError(
                f"The 'table' parameter of {owner} must be an astropy Table. "
                f"Got {type(table).__name__} instead."
            )
        mapping = {k: k for k in self._REQUIRED + self._OPTIONAL}
        unknown = set(columns or {}) - set(mapping)
        if unknown:
            raise ParameterError(
                f"The 'columns' parameter of {owner} has unknown keys {sorted(unknown)}; "
                f"allowed: {sorted(mapping)}."
            )
        mapping.update(columns or {})
        defaults = SourcePopulationConfig()
        self.sersic_n = sersic_n if sersic_n is not None else defaults.sersic_n
        self.phi = phi if phi is not None else defaults.phi
        data = {}
        for key in self._REQUIRED + self._OPTIONAL:
            name = mapping[key]
            if name not in table.colnames:
                if key in self._OPTIONAL:
                    continue
                raise ParameterError(
                    f"The 'table' parameter of {owner} has no column {name!r} for {key!r}. "
                    f"Columns: {table.colnames}. Pass columns={{{key!r}: 'your_name'}}."
                )
            col = np.ma.filled(np.ma.asarray(table[name], dtype=float), np.nan)
            bad = ~np.isfinite(col)
            if key == "r_e":
                bad |= col <= 0
            elif key == "q":
                bad |= (col <= 0) | (col > 1)
            elif key == "n":
                bad |= (col < 0.2) | (col > 10)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ParameterError(
                    f"Column {name!r} ({key}) of the table passed to {owner} has an invalid "
                    f"value {col[i]!r} in row {i} ({int(bad.sum())} bad rows)."
                )
            data[key] = col
        if len(table) == 0:
            raise ParameterError(f"The 'table' parameter of {owner} has no rows.")
        if override_n:
            data.pop("n", None)
        self._data = data
        gr = data["mag_g"] - data["mag_r"]
        self._classes = _colour_class(gr)
        self.colour_weights = None
        if colour_weights is not None:
            w = np.asarray(colour_weights, dtype=float)
            if w.shape != (3,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ParameterError(
                    f"The 'colour_weights' parameter of {owner} must be 3 non-negative weights "
                    f"(red, green, blue) with a positive sum. Got {colour_weights!r}."
                )
            for k in np.flatnonzero(w > 0):
                if not (self._classes == k).any():
                    raise ParameterError(
                        f"The table passed to {owner} has no {COLOUR_CLASSES[k]} source, but "
                        f"'colour_weights' asks for them. Set its weight to 0."
                    )
            self.colour_weights = w / w.sum()

    def __len__(self) -> int:
        return len(self._data["mag_r"])

    def draw_table(self, size: int, rng=None, *, min_redshift: float | None = None) -> Table:
        """Draw ``size`` rows (with replacement); same columns as
        :meth:`SourcePopulation.draw_table`."""
        owner = "CatalogSourcePopulation.draw_table"
        size = check_int(size, "size", owner, low=0)
        rng = _rng(rng)
        allowed = np.ones(len(self), bool)
        if min_redshift is not None:
            zmin = check_scalar(min_redshift, "min_redshift", owner)
            allowed = self._data["redshift"] > zmin
            if not allowed.any():
                raise ParameterError(
                    f"No source of the catalog passed to CatalogSourcePopulation lies behind "
                    f"min_redshift={zmin}."
                )
        if self.colour_weights is None:
            idx = rng.choice(np.flatnonzero(allowed), size=size)
        else:
            w = self.colour_weights.copy()
            for k in range(3):
                if not (allowed & (self._classes == k)).any():
                    w[k] = 0.0
            cls = rng.choice(3, size=size, p=w / w.sum())
            idx = np.empty(size, dtype=np.int64)
            for k in range(3):
                sel = cls == k
                if sel.any():
                    idx[sel] = rng.choice(np.flatnonzero(allowed & (self._classes == k)), sel.sum())
        d = self._data
        n = d["n"][idx] if "n" in d else self.sersic_n.sample(rng, size)
        phi = d["phi"][idx] if "phi" in d else self.phi.sample(rng, size)
        return Table(
            {
                "mag_g": d["mag_g"][idx],
                "mag_r": d["mag_r"][idx],
                "mag_z": d["mag_z"][idx],
                "r_e": d["r_e"][idx],
                "n": n,
                "q": d["q"][idx],
                "phi": phi,
                "redshift": d["redshift"][idx],
                "colour_class": np.array(COLOUR_CLASSES)[self._classes[idx]],
                "catalog_row": idx,
            },
            units=_UNITS,
        )
