"""Cluster and member-galaxy catalogs: reading, column mappings, writing.

Every reader returns an :class:`astropy.table.Table` whose columns carry the canonical
clusterlens names and units below, whatever the file called them. The file's other columns
are kept unchanged after them.

Canonical cluster columns
    ``cluster_id`` (int or str), ``ra`` and ``dec`` of the BCG (deg, ICRS), ``z`` (BCG
    photometric redshift), ``richness`` (dimensionless), ``r500`` (physical Mpc) and
    ``m500`` (Msun, linear, no h).
Canonical member columns
    ``cluster_id`` (the host cluster), ``ra``, ``dec`` (deg), ``z`` (photometric redshift),
    ``stellar_mass`` (Msun, linear), ``q`` (axis ratio b/a in (0, 1]) and ``pa`` (position
    angle of the major axis, deg east of north).

A mapping (:class:`ClusterColumns`, :class:`MemberColumns`) names the file's column for each
canonical one and says whether masses are stored as log10. The defaults follow Zou et al.
(2021, ApJS 253, 56) as the upper-case names its authors' releases use (and that the
Zhang et al. candidate catalog keeps: ``CLUSTER_ID``, ``RA_BCG``, ``DEC_BCG``, ``PZ_BCG``,
``R_500``, ``M_500`` as log10); the VizieR copy (J/ApJS/253/56) spells them differently,
so pass a mapping for it. Files may be FITS, CSV, ECSV or Parquet.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from clusterlens._io import atomic_path
from clusterlens.errors import ClusterlensError, ParameterError

__all__ = [
    "ClusterColumns",
    "MemberColumns",
    "ZOU2021_CLUSTERS",
    "ZOU2021_MEMBERS",
    "ZHANG2026_CANDIDATES",
    "CatalogError",
    "read_table",
    "write_table",
    "COMMON_COLUMN_NAMES",
    "find_column",
    "read_cluster_catalog",
    "read_member_catalog",
    "read_zhang2026_candidates",
]

_FORMATS = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
    ".csv": "ascii.csv",
    ".ecsv": "ascii.ecsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class CatalogError(ClusterlensError):
    """A catalog file cannot be read or lacks the columns its mapping names."""


@dataclass(frozen=True)
class ClusterColumns:
    """Names of a cluster catalog's columns for each canonical clusterlens column.

    Parameters
    ----------
    cluster_id, ra, dec, z : str
        Columns of the cluster id, BCG right ascension and declination (deg) and BCG
        photometric redshift. Required.
    richness, r500, m500 : str or None
        Optional columns (``None`` when the file has none): richness, R500 (physical Mpc)
        and M500 (Msun, or log10 Msun when ``m500_is_log10``).
    m500_is_log10 : bool
        Whether the file stores log10(M500 / Msun).
    """

    cluster_id: str = "CLUSTER_ID"
    ra: str = "RA_BCG"
    dec: str = "DEC_BCG"
    z: str = "PZ_BCG"
    richness: str | None = "RICHNESS"
    r500: str | None = "R_500"
    m500: str | None = "M_500"
    m500_is_log10: bool = True

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "m500_is_log10":
                if not isinstance(v, bool):
                    raise ParameterError(
                        f"The 'm500_is_log10' parameter of ClusterColumns must be a bool. "
                        f"Got {v!r} instead."
                    )
            elif not (isinstance(v, str) and v) and not (
                v is None and f.name in ("richness", "r500", "m500")
            ):
                raise ParameterError(
                    f"The {f.name!r} parameter of ClusterColumns must be a column name "
                    f"(non-empty str). Got {v!r} instead."
                )


@dataclass(frozen=True)
class MemberColumns:
    """Names of a member-galaxy catalog's columns for each canonical clusterlens column.

    The shape is given either as an axis ratio and a position angle (``q``, ``pa``, deg
    east of north) or as Tractor-style ellipticity components (``e1``, ``e2``, with
    ``|e| = (1 - q) / (1 + q)`` and ``pa = atan2(e2, e1) / 2``); set the pair you have and
    leave the other ``None``.

    Parameters
    ----------
    cluster_id, ra, dec, z, stellar_mass : str
        Host cluster id, position (deg), photometric redshift and stellar mass (Msun, or
        log10 Msun when ``stellar_mass_is_log10``).
    q, pa, e1, e2 : str or None
        Shape columns, see above.
    stellar_mass_is_log10 : bool
        Whether the file stores log10(M* / Msun).
    """

    cluster_id: str = "CLUSTER_ID"
    ra: str = "RA"
    dec: str = "DEC"
    z: str = "PZ"
    stellar_mass: str = "MSTAR"
    q: str | None = "Q"
    pa: str | None = "PA"
    e1: str | None = None
    e2: str | None = None
    stellar_mass_is_log10: bool = True

    def __post_init__(self):
        for name in ("cluster_id", "ra", "dec", "z", "stellar_mass"):
            v = getattr(self, name)
            if not (isinstance(v, str) and v):
                raise ParameterError(
                    f"The {name!r} parameter of MemberColumns must be a column name "
                    f"(non-empty str). Got {v!r} instead."
                )
        has_qpa = self.q is not None and self.pa is not None
        has_e = self.e1 is not None and self.e2 is not None
        if has_qpa == has_e:
            raise ParameterError(
                "MemberColumns needs exactly one shape description: both 'q' and 'pa', or "
                f"both 'e1' and 'e2'. Got q={self.q!r}, pa={self.pa!r}, e1={self.e1!r}, "
                f"e2={self.e2!r}."
            )


#: Zou et al. (2021) clusters as the authors' release names them (M_500 in log10 Msun).
ZOU2021_CLUSTERS = ClusterColumns()
#: Zou et al. (2021) member galaxies (log10 stellar mass, axis ratio and PA east of north).
ZOU2021_MEMBERS = MemberColumns()
#: The Zhang et al. (2026) candidate catalog: Zou's columns without richness.
ZHANG2026_CANDIDATES = ClusterColumns(richness=None)


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        return format
    name = path.name.lower()
    for suffix, fmt in sorted(_FORMATS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return fmt
    raise CatalogError(
        f"Cannot tell the format of catalog {str(path)!r} from its name: expected one of "
        f"{', '.join(sorted(_FORMATS))}, or pass format= (an astropy Table format)."
    )


def read_table(path, *, format: str | None = None) -> Table:
    """Read a FITS, CSV, ECSV or Parquet file into an astropy Table.

    Parameters
    ----------
    path : str or path-like
        The file; its suffix chooses the format unless ``format`` is given.
    format : str, optional
        Any astropy ``Table.read`` format name (``"fits"``, ``"ascii.csv"``, ...).

    Raises
    ------
    CatalogError
        The file is missing, of unknown format, or cannot be parsed.
    """
    path = Path(path)
    fmt = _format_of(path, format)
    if not path.is_file():
        raise CatalogError(f"Catalog file {str(path)!r} does not exist.")
    try:
        if fmt == "parquet":
            return _read_parquet(path)
        return Table.read(path, format=fmt)
    except Exception as exc:  # astropy raises many types for malformed files
        raise CatalogError(f"Cannot read catalog {str(path)!r} as {fmt}: {exc}") from exc


def _read_parquet(path: Path) -> Table:
    """Parquet through pyarrow alone (astropy's reader needs pandas), units restored from
    the ``table_meta_yaml`` metadata that astropy writes."""
    import pyarrow.parquet as pq
    from astropy.table.meta import get_header_from_yaml

    arrow = pq.read_table(path)
    out = Table()
    for name in arrow.column_names:
        values = arrow.column(name).to_numpy(zero_copy_only=False)
        if values.dtype == object:
            values = values.astype(str)
        out[name] = values
    yaml = (arrow.schema.metadata or {}).get(b"table_meta_yaml")
    if yaml:
        header = get_header_from_yaml(yaml.decode().splitlines())
        for col in header.get("datatype", []):
            if col.get("unit") and col["name"] in out.colnames:
                out[col["name"]].unit = u.Unit(col["unit"])
        out.meta.update(header.get("meta", {}))
    return out


def write_table(table: Table, path, *, format: str | None = None, overwrite: bool = False) -> None:
    """Write a Table atomically (to a temporary name in the same folder, then renamed).

    A crash while writing never leaves a partial file under ``path``.
    """
    path = Path(path)
    fmt = _format_of(path, format)
    if path.exists() and not overwrite:
        raise CatalogError(f"{str(path)!r} exists; pass overwrite=True to replace it.")
    if fmt == "fits":  # long metadata keys (clusterlens_version...) as HIERARCH cards
        from clusterlens._provenance import table_for_fits

        table = table_for_fits(table)
    with atomic_path(path) as tmp:
        table.write(tmp, format=fmt, overwrite=True)


def _require(table: Table, columns: dict[str, str], what: str, source: str):
    missing = [
        f"{col!r} (for {canon})" for canon, col in columns.items() if col not in table.colnames
    ]
    if missing:
        raise CatalogError(
            f"The {what} catalog {source} lacks the column(s) {', '.join(missing)}. "
            f"It has: {', '.join(table.colnames)}. Pass a mapping that names its columns."
        )


def _finite(values, name: str, source: str, *, low=None, high=None) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if low is not None:
        bad |= arr < low
    if high is not None:
        bad |= arr > high
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CatalogError(
            f"Column {name!r} of catalog {source} must hold finite values"
            f"{'' if low is None else f' >= {low:g}'}{'' if high is None else f' <= {high:g}'};"
            f" row {i} holds {arr[i]!r} ({int(bad.sum())} bad row(s) in all)."
        )
    return arr


def _canonical(table: Table, renames: dict[str, str]) -> Table:
    """New table: canonical columns first (renamed copies), then the untouched rest."""
    out = Table(meta=dict(table.meta))
    used = set(renames.values())
    for canon, col in renames.items():
        out[canon] = table[col]
    for col in table.colnames:
        if col not in used and col not in out.colnames:
            out[col] = table[col]
    return out


def _as_table(catalog, format) -> tuple[Table, str]:
    if isinstance(catalog, Table):
        return catalog, "(in-memory table)"
    return read_table(catalog, format=format), repr(str(catalog))


def read_cluster_catalog(
    catalog, *, columns: ClusterColumns = ZOU2021_CLUSTERS, format: str | None = None
) -> Table:
    """Read a cluster catalog into a Table with the canonical clusterlens columns.

    Parameters
    ----------
    catalog : str, path-like or Table
        A FITS/CSV/ECSV/Parquet file, or a Table already in memory.
    columns : ClusterColumns
        Which file column holds each canonical column (default: Zou et al. 2021).
    format : str, optional
        astropy format name, when the file suffix does not tell.

    Returns
    -------
    Table
        ``cluster_id``, ``ra`` [deg], ``dec`` [deg], ``z``, and where mapped ``richness``,
        ``r500`` [Mpc], ``m500`` [Msun, linear], then the file's other columns.

    Raises
    ------
    CatalogError
        A mapped column is missing, or a position/redshift/mass is not finite or out of
        range (Dec outside [-90, 90], z < 0, M500 <= 0).
    """
    if not isinstance(columns, ClusterColumns):
        raise ParameterError(
            "The 'columns' parameter of read_cluster_catalog must be a ClusterColumns. "
            f"Got {type(columns).__name__} instead."
        )
    table, source = _as_table(catalog, format)
    renames = {
        name: getattr(columns, name)
        for name in ("cluster_id", "ra", "dec", "z", "richness", "r500", "m500")
        if getattr(columns, name) is not None
    }
    _require(table, renames, "cluster", source)
    out = _canonical(table, renames)
    out["ra"] = _finite(out["ra"], columns.ra, source) % 360.0
    out["dec"] = _finite(out["dec"], columns.dec, source, low=-90, high=90)
    out["z"] = _finite(out["z"], columns.z, source, low=0)
    out["ra"].unit = out["dec"].unit = u.deg
    if "r500" in out.colnames:
        out["r500"] = _finite(out["r500"], columns.r500, source, low=0)
        out["r500"].unit = u.Mpc
    if "m500" in out.colnames:
        m = _finite(out["m500"], columns.m500, source)
        m = 10.0**m if columns.m500_is_log10 else m
        if (m <= 0).any():
            raise CatalogError(f"Column {columns.m500!r} of catalog {source} has M500 <= 0.")
        out["m500"] = m
        out["m500"].unit = u.Msun
    return out


def _shape_from_e1e2(e1, e2) -> tuple[np.ndarray, np.ndarray]:
    e = np.hypot(e1, e2)
    q = (1.0 - e) / (1.0 + e)
    pa = 0.5 * np.degrees(np.arctan2(e2, e1))
    return q, pa


def read_member_catalog(
    catalog, *, columns: MemberColumns = ZOU2021_MEMBERS, format: str | None = None
) -> Table:
    """Read a member-galaxy catalog into a Table with the canonical clusterlens columns.

    Returns
    -------
    Table
        ``cluster_id``, ``ra`` [deg], ``dec`` [deg], ``z``, ``stellar_mass`` [Msun, linear],
        ``q`` (clipped to (0, 1]; a shape with ``|e| >= 1`` raises), ``pa`` [deg east of
        north, in [0, 180)], then the file's other columns.

    Raises
    ------
    CatalogError
        A mapped column is missing or holds non-finite or out-of-range values.
    """
    if not isinstance(columns, MemberColumns):
        raise ParameterError(
            "The 'columns' parameter of read_member_catalog must be a MemberColumns. "
            f"Got {type(columns).__name__} instead."
        )
    table, source = _as_table(catalog, format)
    shape = ("q", "pa") if columns.q is not None else ("e1", "e2")
    renames = {
        name: getattr(columns, name)
        for name in ("cluster_id", "ra", "dec", "z", "stellar_mass", *shape)
    }
    _require(table, renames, "member", source)
    out = _canonical(table, renames)
    out["ra"] = _finite(out["ra"], columns.ra, source) % 360.0
    out["dec"] = _finite(out["dec"], columns.dec, source, low=-90, high=90)
    out["z"] = _finite(out["z"], columns.z, source, low=0)
    mass = _finite(out["stellar_mass"], columns.stellar_mass, source)
    mass = 10.0**mass if columns.stellar_mass_is_log10 else mass
    if (mass <= 0).any():
        raise CatalogError(
            f"Column {columns.stellar_mass!r} of catalog {source} has stellar masses <= 0."
        )
    out["stellar_mass"] = mass
    if columns.q is not None:
        q = _finite(out["q"], columns.q, source, low=0, high=1)
        pa = _finite(out["pa"], columns.pa, source)
    else:
        e1 = _finite(out["e1"], columns.e1, source, low=-1, high=1)
        e2 = _finite(out["e2"], columns.e2, source, low=-1, high=1)
        q, pa = _shape_from_e1e2(e1, e2)
        del out["e1"], out["e2"]
    if (q <= 0).any():
        raise CatalogError(f"Catalog {source} has member axis ratios q <= 0 (|e| >= 1).")
    out["q"] = q
    out["pa"] = np.mod(pa, 180.0)
    out["ra"].unit = out["dec"].unit = out["pa"].unit = u.deg
    out["stellar_mass"].unit = u.Msun
    return out


def read_zhang2026_candidates(path) -> Table:
    """Read the published catalog of 485 cluster-lens candidates (Zhang et al. 2026).

    The file (``zhang2026_cluster_lens_candidates.csv``, released by the authors) has
    ``CLUSTER_ID, RA_BCG, DEC_BCG, PZ_BCG, R_500, M_500 (log10 Msun), SHAPE_R_BCG,
    R_EIN, GRADE``.

    Returns
    -------
    Table
        The canonical cluster columns (``m500`` in linear Msun, ``r500`` in Mpc) plus
        ``shape_r_bcg`` [arcsec] (BCG effective radius), ``r_ein`` [arcsec] (mean
        BCG-to-arc distance) and ``grade`` (``"A"``, ``"B"`` or ``"C"``).
    """
    table = read_cluster_catalog(path, columns=ZHANG2026_CANDIDATES, format="ascii.csv")
    missing = [c for c in ("SHAPE_R_BCG", "R_EIN", "GRADE") if c not in table.colnames]
    if missing:
        raise CatalogError(
            f"{str(path)!r} does not look like the Zhang et al. candidate catalog: it lacks "
            f"{', '.join(missing)}."
        )
    table.rename_columns(["SHAPE_R_BCG", "R_EIN", "GRADE"], ["shape_r_bcg", "r_ein", "grade"])
    table["shape_r_bcg"].unit = table["r_ein"].unit = u.arcsec
    grades = np.char.strip(np.asarray(table["grade"], dtype=str))
    bad = ~np.isin(grades, ["A", "B", "C"])
    if bad.any():
        raise CatalogError(
            f"Column 'GRADE' of {str(path)!r} must hold A, B or C; row "
            f"{int(np.flatnonzero(bad)[0])} holds {grades[bad][0]!r}."
        )
    table["grade"] = grades
    return table


#: Column names tried, in order, when a catalog's id or position column is not named.
COMMON_COLUMN_NAMES = {
    "id": ("cluster_id", "CLUSTER_ID", "id", "ID", "name", "NAME"),
    "ra": ("ra", "RA", "RA_BCG", "ra_bcg", "RAJ2000", "RAdeg"),
    "dec": ("dec", "DEC", "DEC_BCG", "dec_bcg", "DEJ2000", "DEdeg"),
}


def find_column(table, given: str | None, kind: str, option: str) -> str:
    """The catalog's ``kind`` column (``"id"``, ``"ra"`` or ``"dec"``).

    ``given`` if it is a column of ``table``, else the first of
    :data:`COMMON_COLUMN_NAMES` that is. ``option`` is how the user names the column (a
    command-line option or a keyword), quoted in the error message.
    """
    if given is not None:
        if given not in table.colnames:
            raise ParameterError(
                f"{option} {given!r} is not a column of the catalog "
                f"(columns: {', '.join(table.colnames)})."
            )
        return given
    for name in COMMON_COLUMN_NAMES[kind]:
        if name in table.colnames:
            return name
    raise ParameterError(
        f"Cannot find the catalog's {kind} column among "
        f"{', '.join(COMMON_COLUMN_NAMES[kind])} (columns: {', '.join(table.colnames)}); "
        f"name it with {option}."
    )
