"""Populations of background sources: the paper's Table 1 defaults, or a user's catalog.

Every draw takes a :class:`numpy.random.Generator` or a seed and returns plain data: a
:class:`DrawnSource` (a :class:`~clusterlens.sources.Sersic` plus its redshift and colour
class) or an astropy :class:`~astropy.table.Table` of many draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
from astropy.table import Table
from scipy.special import ndtr, ndtri

from clusterlens._validation import check_scalar
from clusterlens.errors import ParameterError
from clusterlens.sources.sersic import BANDS, Sersic

__all__ = [
    "Uniform",
    "TruncatedNormal",
    "TruncatedLogNormal",
    "COLOUR_CLASSES",
    "SourcePopulationConfig",
    "DrawnSource",
    "SourcePopulation",
    "CatalogSourcePopulation",
]

#: Colour classes of section 2.2 by g - r: red (g >= r + 1.3), green, blue (g <= r + 0.8).
COLOUR_CLASSES: tuple[str, ...] = ("red", "green", "blue")


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, int | np.integer | np.random.SeedSequence):
        return np.random.default_rng(seed)
    raise ParameterError(
        "The 'rng' parameter must be a numpy.random.Generator, a SeedSequence, an integer "
        f"seed or None. Got {type(seed).__name__} instead."
    )


def _check_bounds(owner, low, high):
    lo = check_scalar(low, "low", owner)
    hi = check_scalar(high, "high", owner)
    if not lo < hi:
        raise ParameterError(
            f"The 'low' parameter of {owner} must be smaller than 'high'. Got low={lo}, high={hi}."
        )
    return lo, hi


@dataclass(frozen=True)
class Uniform:
    """Uniform distribution on ``[low, high)``."""

    low: float
    high: float

    def __post_init__(self):
        lo, hi = _check_bounds("Uniform", self.low, self.high)
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws."""
        return rng.uniform(self.low, self.high, size)


@dataclass(frozen=True)
class TruncatedNormal:
    """Normal distribution (``mean``, ``sigma``) truncated to ``[low, high]``.

    Drawn by inverting the CDF (no rejection), so every draw costs the same.
    """

    mean: float
    sigma: float
    low: float
    high: float

    def __post_init__(self):
        owner = type(self).__name__
        object.__setattr__(self, "mean", check_scalar(self.mean, "mean", owner))
        object.__setattr__(
            self, "sigma", check_scalar(self.sigma, "sigma", owner, low=0, low_inclusive=False)
        )
        lo, hi = _check_bounds(owner, self.low, self.high)
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    def _transform(self, v):
        return v

    def _centre(self):
        return self.mean

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws."""
        a = (self._transform(self.low) - self._centre()) / self.sigma
        b = (self._transform(self.high) - self._centre()) / self.sigma
        u = rng.uniform(ndtr(a), ndtr(b), size)
        v = self._centre() + self.sigma * ndtri(u)
        return np.clip(self._inverse(v), self.low, self.high)

    def _inverse(self, v):
        return v


@dataclass(frozen=True)
class TruncatedLogNormal(TruncatedNormal):
    """Log-normal distribution truncated to ``[low, high]`` (``low > 0``).

    ``ln X ~ Normal(ln median, sigma)``: ``mean`` is the median of the untruncated
    distribution and ``sigma`` the standard deviation of ``ln X``.
    """

    def __post_init__(self):
        super().__post_init__()
        check_scalar(self.mean, "mean", "TruncatedLogNormal", low=0.0, low_inclusive=False)
        check_scalar(self.low, "low", "TruncatedLogNormal", low=0.0, low_inclusive=False)

    def _transform(self, v):
        return math.log(v)

    def _centre(self):
        return math.log(self.mean)

    def _inverse(self, v):
        return np.exp(v)


Distribution = Uniform | TruncatedNormal


@dataclass(frozen=True)
class SourcePopulationConfig:
    """Distributions of the source parameters; the defaults follow the paper's Table 1.

    Ranges are those of Table 1 (Zhang et al.); where the table gives no analytic form the
    shape is a documented choice (see ``docs/sources.md``):

    - ``mag_r``: r-band AB magnitude, truncated normal (24.5, 1.2) on [21.0, 28.0], a faint
      peak like the unlensed magnitudes of the Collett (2015) population;
    - colours: the class (red, green, blue) is drawn with ``colour_weights`` (1:1:2); g - r is
      uniform inside the class (red [1.3, 2.0], green [0.8, 1.3], blue [0.0, 0.8]), r - z
      uniform in the class's ``r_minus_z`` range; draws whose g or z magnitude falls outside
      ``mag_g_range`` / ``mag_z_range`` (Table 1: 21.3-29.5 and 20.3-28.3) are drawn again;
    - ``r_e``: circularised half-light radius [arcsec], truncated log-normal (median 0.35",
      sigma_ln 0.6) on [0.02, 1.68] (Table 1: 0.00-1.68; zero is not a valid Sérsic size);
    - ``q``: axis ratio, truncated normal (0.7, 0.2) on [0.2, 1.0];
    - ``redshift``: truncated normal (1.0, 0.35) on [0.034, 1.495] (Table 1's range);
    - ``sersic_n``: truncated log-normal (median 1.2, sigma_ln 0.6) on [0.4, 4.0], the
      disc-dominated, skewed-to-high-n shape of z = 1-2 star-forming galaxies (see docs);
    - ``phi``: position angle [deg], uniform on [-90, 90).
    """

    mag_r: Distribution = field(default_factory=lambda: TruncatedNormal(24.5, 1.2, 21.0, 28.0))
    mag_g_range: tuple[float, float] = (21.3, 29.5)
    mag_z_range: tuple[float, float] = (20.3, 28.3)
    g_minus_r: tuple[tuple[float, float], ...] = ((1.3, 2.0), (0.8, 1.3), (0.0, 0.8))
    r_minus_z: tuple[tuple[float, float], ...] = ((0.7, 1.5), (0.3, 1.0), (-0.2, 0.6))
    colour_weights: tuple[float, float, float] = (1.0, 1.0, 2.0)
    r_e: Distribution = field(default_factory=lambda: TruncatedLogNormal(0.35, 0.6, 0.02, 1.68))
    q: Distribution = field(default_factory=lambda: TruncatedNormal(0.7, 0.2, 0.2, 1.0))
    redshift: Distribution = field(default_factory=lambda: TruncatedNormal(1.0, 0.35, 0.034, 1.495))
    sersic_n: Distribution = field(default_factory=lambda: TruncatedLogNormal(1.2, 0.6, 0.4, 4.0))
    phi: Distribution = field(default_factory=lambda: Uniform(-90.0, 90.0))

    def __post_init__(self):
        owner = "SourcePopulationConfig"
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("mag_r", "r_e", "q", "redshift", "sersic_n", "phi"):
                if not isinstance(v, Uniform | TruncatedNormal):
                    raise ParameterError(
                        f"The {f.name!r} parameter of {owner} must be a Uniform, "
                        f"TruncatedNormal or TruncatedLogNormal. Got {v!r} instead."
                    )
        _interval(self.mag_g_range, "mag_g_range", owner)
        _interval(self.mag_z_range, "mag_z_range", owner)
        for name in ("g_minus_r", "r_minus_z"):
            v = getattr(self, name)
            if len(v) != 3:
                raise ParameterError(
                    f"The {name!r} parameter of {owner} must hold 3 (low, high) ranges, one "
                    f"per colour class {COLOUR_CLASSES}. Got {v!r} instead."
                )
            object.__setattr__(
                self,
                name,
                tuple(
                    _interval(r, f"{name}[{c}]", owner)
                    for r, c in zip(v, COLOUR_CLASSES, strict=True)
                ),
            )
        w = np.asarray(self.colour_weights, dtype=float)
        if w.shape != (3,) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ParameterError(
                f"The 'colour_weights' parameter of {owner} must be 3 non-negative finite "
                f"weights (red, green, blue) with a positive sum. Got {self.colour_weights!r}."
            )
        if not (0.2 <= self.sersic_n.low and self.sersic_n.high <= 10.0):
            raise ParameterError(
                f"The 'sersic_n' parameter of {owner} must stay within [0.2, 10]. "
                f"Got [{self.sersic_n.low}, {self.sersic_n.high}]."
            )
        if not (0.0 < self.q.low and self.q.high <= 1.0):
            raise ParameterError(
                f"The 'q' parameter of {owner} must stay within (0, 1]. "
                f"Got [{self.q.low}, {self.q.high}]."
            )
        if not 0.0 < self.r_e.low:
            raise ParameterError(
                f"The 'r_e' parameter of {owner} must stay above 0 arcsec. Got low={self.r_e.low}."
            )


def _interval(value, name, owner):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be a (low, high) pair of finite floats "
            f"with low < high. Got {value!r} instead."
        )
    return (lo, hi)


@dataclass(frozen=True)
class DrawnSource:
    """One drawn source: its light profile, redshift and colour class."""

    profile: Sersic
    redshift: float
    colour_class: str

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
        }


_TABLE_COLUMNS = ("mag_g", "mag_r", "mag_z", "r_e", "n", "q", "phi", "redshift", "colour_class")


class _Population:
    """Shared drawing logic: subclasses implement ``draw_table``."""

    def draw_table(self, size: int, rng=None, *, min_redshift: float | None = None) -> Table:
        raise NotImplementedError

    def draw(self, rng=None, *, center=(0.0, 0.0), min_redshift: float | None = None):
        """Draw one source centred at ``center`` (source plane, arcsec).

        Parameters
        ----------
        rng : numpy.random.Generator or int or None
        center : (float, float)
            Source-plane position [arcsec] of the Sérsic centre.
        min_redshift : float, optional
            Only sources behind this redshift (e.g. the lens redshift plus a margin).

        Returns
        -------
        DrawnSource
        """
        row = self.draw_table(1, rng, min_redshift=min_redshift)[0]
        cx, cy = center
        profile = Sersic.from_magnitudes(
            [row["mag_g"], row["mag_r"], row["mag_z"]],
            x=cx,
            y=cy,
            r_e=row["r_e"],
            n=row["n"],
            q=row["q"],
            phi=row["phi"],
        )
        return DrawnSource(profile, float(row["redshift"]), str(row["colour_class"]))


def _check_size(size, owner):
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 0:
        raise ParameterError(
            f"The 'size' parameter of {owner} must be a non-negative integer. Got {size!r}."
        )
    return int(size)


class SourcePopulation(_Population):
    """Sources drawn from parametric distributions (defaults: the paper's Table 1).

    Parameters
    ----------
    config : SourcePopulationConfig, optional

    Examples
    --------
    >>> from clusterlens.sources import SourcePopulation
    >>> src = SourcePopulation().draw(42, center=(0.3, -0.1), min_redshift=0.6)
    >>> src.redshift > 0.6
    True
    """

    def __init__(self, config: SourcePopulationConfig | None = None):
        if config is None:
            config = SourcePopulationConfig()
        if not isinstance(config, SourcePopulationConfig):
            raise ParameterError(
                "The 'config' parameter of SourcePopulation must be a SourcePopulationConfig. "
                f"Got {type(config).__name__} instead."
            )
        self.config = config

    def draw_table(self, size: int, rng=None, *, min_redshift: float | None = None) -> Table:
        """Draw ``size`` sources; returns a Table with columns ``mag_g, mag_r, mag_z`` [AB],
        ``r_e`` [arcsec], ``n``, ``q``, ``phi`` [deg], ``redshift``, ``colour_class``."""
        owner = "SourcePopulation.draw_table"
        size = _check_size(size, owner)
        rng = _rng(rng)
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
        zdist = cfg.redshift
        if min_redshift is not None:
            zmin = check_scalar(min_redshift, "min_redshift", owner)
            if zmin >= zdist.high:
                raise ParameterError(
                    f"The 'min_redshift' parameter of {owner} must be below the population's "
                    f"highest redshift {zdist.high}. Got {zmin} instead."
                )
            if zmin > zdist.low:
                zdist = _with_low(zdist, zmin)
        return Table(
            {
                "mag_g": mags[0],
                "mag_r": mags[1],
                "mag_z": mags[2],
                "r_e": cfg.r_e.sample(rng, size),
                "n": cfg.sersic_n.sample(rng, size),
                "q": cfg.q.sample(rng, size),
                "phi": cfg.phi.sample(rng, size),
                "redshift": zdist.sample(rng, size),
                "colour_class": np.array(COLOUR_CLASSES)[cls],
            },
            units={"r_e": "arcsec", "phi": "deg", "mag_g": "mag", "mag_r": "mag", "mag_z": "mag"},
        )


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
        self._classes = np.where(gr >= 1.3, 0, np.where(gr <= 0.8, 2, 1))
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
        size = _check_size(size, owner)
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
            units={"r_e": "arcsec", "phi": "deg", "mag_g": "mag", "mag_r": "mag", "mag_z": "mag"},
        )
