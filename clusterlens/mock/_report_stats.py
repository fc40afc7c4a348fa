"""The realism report's numbers: the quantities it shows with the paper's figures and the
candidates', the arc measures, the statistics of the parameter table, which negatives are hard
ones, and the summary table.

Private module of :mod:`clusterlens.mock.report`, which is where these names are public.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clusterlens.errors import ParameterError

_ZP = 22.5
# The synthetic sky's record of what it painted: a flag for the negatives made hard on
# purpose, and the confusers' kinds; the first column found of each is used.
_HARD_FLAG_COLUMNS = ("sky_hard_negative", "hard_negative")
_CONFUSER_COLUMNS = ("sky_confusers", "confusers", "confuser", "confuser_kinds", "confuser_kind")
_FALSE_WORDS = {"", "none", "0", "false", "[]", "nan", "-", "n/a"}


@dataclass(frozen=True)
class Quantity:
    """One row of the report: a parameter of the mocks and its reference figures.

    Parameters
    ----------
    name : str
        Key in the summary.
    label : str
        Axis label (with unit).
    columns : tuple of str
        Parameter-table columns that hold it, first found wins.
    paper_range : (float or None, float or None)
        The paper's range (Table 1) or cut; ``None`` for an open end.
    paper_note : str
        Where the paper's figure comes from ("" when the paper gives none).
    candidates : str or None
        Column of :func:`clusterlens.survey.read_zhang2026_candidates`'s table.
    log10 : bool
        The candidates' column is linear and the quantity is its log10.
    """

    name: str
    label: str
    columns: tuple
    paper_range: tuple = (None, None)
    paper_note: str = ""
    candidates: str | None = None
    log10: bool = False


#: What the report shows, in order.
QUANTITIES = (
    Quantity(
        "einstein_radius",
        r"$\theta_E$ [arcsec]",
        ("einstein_radius",),
        (5.0, None),
        'sec. 2.2: clusters with theta_E < 5" excluded',
        "r_ein",
    ),
    Quantity(
        "arc_radius",
        "arc radius [arcsec]",
        ("arc_radius",),
        candidates="r_ein",
    ),
    Quantity("arc_mag_r", "arc r [AB mag]", ("arc_mag_r",)),
    Quantity(
        "arc_surface_brightness",
        r"arc SB r [mag/arcsec$^2$]",
        ("arc_surface_brightness",),
    ),
    Quantity("arc_snr", "arc S/N (g, r, z)", ("arc_snr",)),
    Quantity(
        "source_redshift",
        "source redshift",
        ("source_redshift",),
        (0.034, 1.495),
        "Table 1",
    ),
    Quantity(
        "source_mag_r",
        "source r (unlensed) [AB mag]",
        ("source_mag_r",),
        (21.0, 28.0),
        "Table 1",
    ),
    Quantity("magnification", "total magnification", ("magnification",)),
    Quantity(
        "log_m500",
        r"$\log_{10}(M_{500}/M_\odot)$",
        ("log_m500",),
        (12.58, 15.13),
        "Table 1; training-set peak ~14.2, candidates' ~14.6, sec. 4",
        "m500",
        log10=True,
    ),
    Quantity(
        "z_lens",
        "cluster (BCG) redshift",
        ("z_lens",),
        (0.01, 1.04),
        "Table 1",
        "z",
    ),
    Quantity(
        "bcg_r_e",
        "BCG effective radius [arcsec]",
        ("bcg_r_e", "bcg_shape_r", "shape_r_bcg"),
        candidates="shape_r_bcg",
    ),
)

#: The 485 published candidates (``zhang2026_cluster_lens_candidates.csv``), summarised for
#: when the file is not at hand: ``n``, ``median``, ``p16``, ``p84``, ``min``, ``max`` per
#: candidates column (``m500`` as log10 Msun).  Checked against the file by the tests.
CANDIDATE_SUMMARY = {
    "r_ein": {"n": 485, "median": 6.5, "p16": 4.1, "p84": 11.4, "min": 1.6, "max": 48.0},
    "m500": {
        "n": 485,
        "median": 14.3887,
        "p16": 14.1093,
        "p84": 14.6198,
        "min": 13.6683,
        "max": 14.9771,
    },
    "z": {"n": 485, "median": 0.4100, "p16": 0.2714, "p84": 0.5975, "min": 0.0437, "max": 0.8927},
    "shape_r_bcg": {
        "n": 485,
        "median": 3.178,
        "p16": 1.327,
        "p84": 6.441,
        "min": 0.298,
        "max": 13.834,
    },
}


# ------------------------------------------------------------------------------------------
def measure_arc(arc, sky_sigma, pixel_scale: float, *, band: int = 1) -> dict:
    """Radius and surface brightness of a noiseless arc image.

    Parameters
    ----------
    arc : array_like, shape ``(3, N, M)``
        Noiseless, PSF-convolved arc [nanomaggies per pixel], bands g, r, z, lens centre at
        the image centre.
    sky_sigma : float or array_like of 3 floats
        Sky noise per pixel [nanomaggies] (per band, or of ``band`` alone).
    pixel_scale : float
        [arcsec].
    band : int
        Plane used (1: r).

    Returns
    -------
    dict
        ``arc_radius`` [arcsec]: r-flux weighted mean distance from the centre of the pixels
        above 1 sigma of the sky (all pixels of positive flux when none is);
        ``arc_surface_brightness`` [AB mag / arcsec^2]: mean r surface brightness of those
        pixels (NaN when no pixel is above the noise); ``arc_area`` [arcsec^2]: their area.
    """
    img = np.asarray(arc, dtype=np.float64)
    if img.ndim != 3 or not 0 <= band < img.shape[0]:
        raise ParameterError(
            f"The 'arc' parameter of measure_arc must be a (band, y, x) array with plane "
            f"{band}. Got shape {img.shape}."
        )
    sigma = np.atleast_1d(np.asarray(sky_sigma, dtype=np.float64))
    sigma = float(sigma[band] if sigma.size > 1 else sigma[0])
    if not (pixel_scale > 0 and math.isfinite(pixel_scale)):
        raise ParameterError(
            f"The 'pixel_scale' parameter of measure_arc must be > 0 arcsec. Got {pixel_scale}."
        )
    plane = img[band]
    ny, nx = plane.shape
    y = (np.arange(ny) - 0.5 * (ny - 1)) * pixel_scale
    x = (np.arange(nx) - 0.5 * (nx - 1)) * pixel_scale
    r = np.hypot(x[None, :], y[:, None])
    sel = plane > sigma
    visible = bool(sel.any())
    if not visible:
        sel = plane > 0
    if not sel.any():
        return {"arc_radius": math.nan, "arc_surface_brightness": math.nan, "arc_area": 0.0}
    w = plane[sel]
    radius = float(np.sum(w * r[sel]) / np.sum(w))
    if visible:
        sb = float(_ZP - 2.5 * math.log10(float(w.mean()) / pixel_scale**2))
        area = float(w.size * pixel_scale**2)
    else:
        sb, area = math.nan, 0.0
    return {"arc_radius": radius, "arc_surface_brightness": sb, "arc_area": area}


# ------------------------------------------------------------------------------------------
def _stats(values) -> dict | None:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return None
    p16, p50, p84 = np.percentile(v, [16, 50, 84])
    return {
        "n": int(v.size),
        "median": float(p50),
        "p16": float(p16),
        "p84": float(p84),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def _column(table, name):
    """Float values of a table column (masked entries as NaN), or None."""
    if name not in table.colnames:
        return None
    col = table[name]
    mask = np.asarray(getattr(col, "mask", np.zeros(len(col), bool)), dtype=bool)
    try:
        values = np.asarray(getattr(col, "value", col), dtype=np.float64).copy()
    except (TypeError, ValueError):
        return None
    if mask.shape == values.shape:
        values[mask] = np.nan
    return values


def _load_candidates(candidates):
    """``None`` -> None; a path -> the published catalog read; a Table -> itself."""
    if candidates is None:
        return None
    if hasattr(candidates, "colnames"):
        return candidates
    from clusterlens.survey.catalogs import read_zhang2026_candidates

    path = Path(candidates)
    if not path.is_file():
        raise ParameterError(
            f"The 'candidates' parameter of realism_report must be the published candidate "
            f"catalog (zhang2026_cluster_lens_candidates.csv) or a Table. {str(path)!r} is "
            "not a file."
        )
    return read_zhang2026_candidates(path)


def _candidate_values(table, q: Quantity):
    if table is None or q.candidates is None:
        return None
    v = _column(table, q.candidates)
    if v is None:
        return None
    if q.log10:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log10(v)
    return v


def _lens_rows(params):
    names = params.colnames
    if "label" not in names:
        return np.ones(len(params), dtype=bool)
    return np.asarray(params["label"]) == 1


def _summarise(params, table):
    lens = _lens_rows(params)
    out = {}
    for q in QUANTITIES:
        column = next((c for c in q.columns if c in params.colnames), None)
        mock = None
        if column is not None:
            values = _column(params, column)
            mock = None if values is None else _stats(values[lens])
        cand_values = _candidate_values(table, q)
        if cand_values is not None:
            cand = _stats(cand_values)
            cand_source = "file"
        elif q.candidates is not None and table is None:
            cand = dict(CANDIDATE_SUMMARY[q.candidates])
            cand_source = "built-in summary"
        else:
            cand, cand_source = None, None
        lo, hi = q.paper_range
        paper = None
        if lo is not None or hi is not None:
            paper = {"low": lo, "high": hi, "source": q.paper_note}
        out[q.name] = {
            "label": q.label,
            "column": column,
            "mocks": mock,
            "paper": paper,
            "candidates": cand,
            "candidates_column": q.candidates,
            "candidates_source": cand_source,
        }
    return out


def format_stats(s: dict | None) -> str:
    """``"median (p16-p84)"`` of a summary entry, or ``"n/a"``."""
    if not s:
        return "n/a"
    return f"{s['median']:.3g} ({s['p16']:.3g}-{s['p84']:.3g})"


def format_range(p: dict | None) -> str:
    """The paper's range or cut of a summary entry (``"0.034-1.495"``, ``">= 5"``), or
    ``"n/a"``."""
    if not p:
        return "n/a"
    lo, hi = p["low"], p["high"]
    if hi is None:
        return f">= {lo:g}"
    if lo is None:
        return f"<= {hi:g}"
    return f"{lo:g}-{hi:g}"


def summary_table(summary: dict, *, title: str | None = None) -> str:
    """A Markdown table of a report's summary: median (16-84%) per quantity."""
    lines = [f"### {title}", ""] if title else []
    lines += [
        "| quantity | mocks: median (16-84%) | n | paper | 485 candidates: median (16-84%) |",
        "|---|---|---|---|---|",
    ]
    for name, row in summary.items():
        n = row["mocks"]["n"] if row["mocks"] else 0
        cand = format_stats(row["candidates"])
        if row["candidates"] and row["candidates_column"] not in (None, name):
            cand += f" [{row['candidates_column']}]"
        mock, paper = format_stats(row["mocks"]), format_range(row["paper"])
        if row["paper"] and row["paper"].get("source"):
            paper += f" ({row['paper']['source']})"
        lines.append(f"| {name} | {mock} | {n} | {paper} | {cand} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
def _confuser_text(value) -> str | None:
    """The confusers a negative's parameter names, or None when it names none."""
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, bool | np.bool_):
        return "confuser" if value else None
    if isinstance(value, int | float | np.integer | np.floating):
        if not np.isfinite(value) or value <= 0:
            return None
        return f"{value:g} confuser(s)"
    text = str(value).strip()
    return None if text.lower() in _FALSE_WORDS else text


def hard_negatives(params) -> tuple[np.ndarray, list[str], str | None]:
    """Rows of ``params`` that are hard negatives, with the confusers they carry.

    A negative is hard when its flag column (``sky_hard_negative``, ``hard_negative``) is
    true or, without a flag, when its confuser column (``sky_confusers``, ``confusers``, ...
    or any column whose name starts with ``confuser``) names any.

    Returns
    -------
    (indices, texts, column)
        Dataset indices of the hard negatives, what each carries (the confuser column's text,
        else "hard negative"), and the column that decided (None when the table has no record
        of confusers: then no row is a hard negative).
    """
    neg = ~_lens_rows(params)
    names = params.colnames
    flag = next((c for c in _HARD_FLAG_COLUMNS if c in names), None)
    text_col = next((c for c in _CONFUSER_COLUMNS if c in names), None)
    if text_col is None:
        text_col = next((c for c in names if c.startswith("confuser")), None)
    column = flag or text_col
    if column is None:
        return np.zeros(0, dtype=np.int64), [], None

    def cells(name):
        col = params[name]
        mask = np.asarray(getattr(col, "mask", np.zeros(len(col), bool)), dtype=bool)
        return [None if (mask.shape and mask[k]) else col[k] for k in range(len(col))]

    decide = cells(column)
    texts_all = cells(text_col) if text_col is not None else [None] * len(params)
    index = np.asarray(params["index"]) if "index" in names else np.arange(len(params))
    rows, texts = [], []
    for k in np.flatnonzero(neg):
        if _confuser_text(decide[k]) is None:
            continue
        rows.append(int(index[k]))
        texts.append(_confuser_text(texts_all[k]) or "hard negative")
    return np.asarray(rows, dtype=np.int64), texts, column
