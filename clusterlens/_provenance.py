"""Where a table or file the library writes for users came from, in one set of metadata keys.

Every output table (scores, the loop's catalogue export, cross-matches, grading tables, a mock
dataset's metadata) carries

* ``clusterlens_version``: the version that wrote it;
* ``cosmology``: the astropy cosmology its physical quantities assume, name and parameters
  as one line (``FlatLambdaCDM(H0=70 km / (Mpc s), Om0=0.3, Tcmb0=0 K, ...)``);
* ``model_sha256``: the SHA-256 of the model (checkpoint) file, where a model made the table;
* ``created``: when, an ISO 8601 UTC string (``2026-12-03T17:40:00+00:00``).

Dates are ISO strings in everything written for users; :func:`unix_time` still reads the
Unix floats older files hold.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re
from numbers import Real
from pathlib import Path

__all__ = [
    "PROVENANCE_KEYS",
    "cosmology_description",
    "iso_utc",
    "parquet_schema_metadata",
    "provenance",
    "restore_parquet_metadata",
    "sha256_file",
    "table_for_fits",
    "unix_time",
]

#: The metadata keys :func:`provenance` writes (``model_sha256`` only where a model was used).
PROVENANCE_KEYS = ("clusterlens_version", "cosmology", "model_sha256", "created")

# a FITS keyword that needs no HIERARCH card: up to 8 of A-Z, 0-9, '-' and '_'
_FITS_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")


def iso_utc(when=None) -> str:
    """``when`` (Unix seconds, an aware or naive-UTC datetime, or an ISO string; default now)
    as an ISO 8601 UTC string to the second, ``YYYY-MM-DDTHH:MM:SS+00:00``."""
    if when is None:
        moment = datetime.datetime.now(datetime.UTC)
    elif isinstance(when, datetime.datetime):
        moment = when if when.tzinfo else when.replace(tzinfo=datetime.UTC)
    elif isinstance(when, str):
        return iso_utc(unix_time(when))
    else:
        moment = datetime.datetime.fromtimestamp(float(when), datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


def unix_time(value) -> float:
    """Unix seconds from an ISO 8601 string (what the library writes now) or a number, or a
    number as a string (what older files hold); NaN for None or an empty string.

    A string without a time zone is taken to be UTC.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    if isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 date (2026-12-03T17:40:00+00:00) nor Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _format_parameter(value) -> str:
    unit = getattr(value, "unit", None)
    if unit is not None:
        number = value.value
        text = (
            f"{float(number):g}"
            if getattr(number, "ndim", 0) == 0
            else "[" + ", ".join(f"{float(v):g}" for v in number) + "]"
        )
        return f"{text} {unit.to_string()}".rstrip()
    return f"{value:g}" if isinstance(value, float) else str(value)


def cosmology_description(cosmology=None) -> str:
    """The cosmology's class, name and parameters on one line, e.g.
    ``FlatLambdaCDM(H0=70 km / (Mpc s), Om0=0.3, Tcmb0=0 K, Neff=3.04, m_nu=None, Ob0=0)``;
    the library's default cosmology when None."""
    if cosmology is None:
        from clusterlens.cosmology import DEFAULT_COSMOLOGY as cosmology
    parameters = getattr(cosmology, "parameters", None)
    if parameters is None:  # astropy < 6
        parameters = {k: getattr(cosmology, k) for k in cosmology.__parameters__}
    parts = [f"name={cosmology.name!r}"] if cosmology.name else []
    parts += [f"{k}={_format_parameter(v)}" for k, v in dict(parameters).items()]
    return f"{type(cosmology).__name__}({', '.join(parts)})"


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(*, cosmology=None, model_sha256=None, model_path=None, created=None) -> dict:
    """The provenance metadata of a table or file, ready to ``table.meta.update``.

    Parameters
    ----------
    cosmology : astropy.cosmology.Cosmology, optional
        The cosmology of the table's physical quantities; the library default when None.
    model_sha256 : str, optional
        Checksum of the model file that made the table (or give ``model_path``).
    model_path : str or Path, optional
        The model file, hashed here when ``model_sha256`` is not given.
    created : float, datetime or str, optional
        When the table was made; now when None.

    Returns
    -------
    dict
        ``clusterlens_version``, ``cosmology``, ``model_sha256`` (when a model was given)
        and ``created`` (ISO 8601 UTC), all strings.
    """
    from clusterlens import __version__

    meta = {"clusterlens_version": __version__, "cosmology": cosmology_description(cosmology)}
    if model_sha256 is None and model_path is not None:
        model_sha256 = sha256_file(model_path)
    if model_sha256 is not None:
        meta["model_sha256"] = str(model_sha256)
    meta["created"] = iso_utc(created)
    return meta


def table_for_fits(table):
    """A copy of ``table`` whose metadata keys that are not FITS keywords (longer than 8
    characters, lower case) are written as HIERARCH cards: astropy reads them back under
    their own names, without the warning a plain long key gives on writing."""
    out = table.copy(copy_data=False)
    out.meta.clear()
    for key, value in table.meta.items():
        if isinstance(value, dict | list | tuple):
            continue  # not a header value; a FITS header holds scalars
        if isinstance(key, str) and not _FITS_KEYWORD.fullmatch(key) and " " not in key:
            key = f"HIERARCH {key}"
        out.meta[key] = value
    return out


def parquet_schema_metadata(table) -> dict[bytes, bytes]:
    """The Parquet schema metadata astropy's own Parquet writer stores (``table_meta_yaml``:
    column units, descriptions and the table's meta), so that astropy's reader restores them
    and :func:`restore_parquet_metadata` does without pandas."""
    from astropy.table import meta

    text = "\n".join(meta.get_yaml_from_table(table))
    return {b"table_meta_yaml": text.encode("utf-8")}


def restore_parquet_metadata(table, schema_metadata) -> None:
    """Set the units, descriptions and meta that :func:`parquet_schema_metadata` stored onto
    ``table``, an astropy Table built from the Parquet file's columns (pyarrow, no pandas)."""
    raw = (schema_metadata or {}).get(b"table_meta_yaml")
    if raw is None:
        return
    from astropy.table import meta

    header = meta.get_header_from_yaml(raw.decode("utf-8").split("\n"))
    for column in header.get("datatype", []):
        name = column.get("name")
        if name not in table.colnames:
            continue
        if column.get("unit"):
            table[name].unit = column["unit"]
        if column.get("description"):
            table[name].description = column["description"]
    table.meta.update(header.get("meta", {}))
