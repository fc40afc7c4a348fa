"""The realism report of a mock dataset: do the simulated lenses look like the real ones?

:func:`realism_report` reads a finished dataset (:class:`clusterlens.datasets.LensDataset`)
and writes, into one folder:

``distributions.png``
    One histogram per quantity of :data:`QUANTITIES` (the lenses' rows of the parameter
    table), with the paper's figures (Table 1 ranges, the 5" cut: grey bands and lines) and
    the 485 published candidates (Zhang et al.; red outline, or their 16-84% band when only
    the built-in summary is at hand) beside them.
``summary.json``, ``summary.md``
    Median and 16/84 percentiles (and range) of every quantity for the mocks, the paper's
    figure and the candidates'; a quantity the parameter table lacks is ``null`` / "n/a".
``gallery_positives.png``, ``gallery_negatives.png``
    Colour composites (:func:`clusterlens.survey.rgb.gallery`) of lenses spread over the
    range of theta_E, and of hard negatives (negatives whose parameters name confusers, e.g.
    a ``confusers`` column); without such a record, random negatives, and the caption says
    so.
``complete.json``
    Written last: the list of the files with their sizes and SHA-256, and a fingerprint of
    the dataset.  The files are first written into a hidden temporary folder beside the
    report, which replaces the old report only once complete, so a killed run never leaves a
    folder that :func:`report_is_complete` accepts.

Arc measures (:func:`measure_arc`, stored by the simulator as ``arc_radius`` and
``arc_surface_brightness``): the pixels of the noiseless, PSF-convolved arc whose r-band flux
exceeds the r-band sky noise per pixel (1 sigma) are "the arc"; its radius is the r-flux
weighted mean distance of those pixels from the lens centre (the image centre), the
observable analogue of the candidates' ``R_EIN`` (the mean BCG-to-arc distance), and its
surface brightness is their mean r flux per arcsec^2 in AB mag / arcsec^2.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clusterlens._validation import check_int
from clusterlens.errors import ClusterlensError, ParameterError

__all__ = [
    "QUANTITIES",
    "CANDIDATE_SUMMARY",
    "Quantity",
    "RealismReport",
    "ReportError",
    "dataset_fingerprint",
    "format_range",
    "format_stats",
    "hard_negatives",
    "measure_arc",
    "plot_realism",
    "realism_report",
    "report_is_complete",
    "load_report",
    "summary_table",
]

_MANIFEST = "complete.json"
_FORMAT = "clusterlens-realism-report"
_FORMAT_VERSION = 1
_ZP = 22.5
# The synthetic sky's record of what it painted: a flag for the negatives made hard on
# purpose, and the confusers' kinds; the first column found of each is used.
_HARD_FLAG_COLUMNS = ("sky_hard_negative", "hard_negative")
_CONFUSER_COLUMNS = ("sky_confusers", "confusers", "confuser", "confuser_kinds", "confuser_kind")
_FALSE_WORDS = {"", "none", "0", "false", "[]", "nan", "-", "n/a"}


class ReportError(ClusterlensError):
    """A realism report on disk is missing, incomplete or damaged."""


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
def _hist_panel(ax, q: Quantity, mock, cand_values, row, bins):
    values = None if mock is None else mock[np.isfinite(mock)]
    have_cand = cand_values is not None and np.isfinite(cand_values).any()
    pool = [
        v
        for v in (values, cand_values[np.isfinite(cand_values)] if have_cand else None)
        if v is not None and v.size
    ]
    if pool:
        allv = np.concatenate(pool)
        lo, hi = np.percentile(allv, [0.5, 99.5])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
    else:
        edges = None
    if values is not None and values.size:
        ax.hist(
            np.clip(values, edges[0], edges[-1]),
            bins=edges,
            density=True,
            histtype="stepfilled",
            color="0.75",
            edgecolor="k",
            label=f"mocks ({values.size})",
        )
    else:
        ax.text(
            0.03,
            0.93,
            "mocks: n/a",
            transform=ax.transAxes,
            ha="left",
            va="top",
            color="0.3",
            fontsize=8,
        )
    if have_cand:
        cv = cand_values[np.isfinite(cand_values)]
        ax.hist(
            np.clip(cv, edges[0], edges[-1]),
            bins=edges,
            density=True,
            histtype="step",
            color="tab:red",
            lw=1.5,
            label=f"candidates ({cv.size})",
        )
    elif row["candidates"]:
        c = row["candidates"]
        ax.axvspan(c["p16"], c["p84"], color="tab:red", alpha=0.15, label="candidates 16-84%")
        ax.axvline(c["median"], color="tab:red", lw=1.5)
    p = row["paper"]
    if p:
        for end in (p["low"], p["high"]):
            if end is not None:
                ax.axvline(end, color="tab:blue", ls="--", lw=1.2)
        ax.plot([], [], color="tab:blue", ls="--", label=f"paper {format_range(p)}")
    ax.set_xlabel(q.label, fontsize=9)
    ax.set_yticks([])
    ax.tick_params(labelsize=8)
    title = f"mocks {format_stats(row['mocks'])}"
    if row["candidates"]:
        title += f"   cand. {format_stats(row['candidates'])}"
    ax.set_title(title, fontsize=7.5)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6.5, loc="upper right", frameon=False)


def plot_realism(params, candidates=None, *, summary=None, fig=None, bins: int = 25):
    """The report's multi-panel figure: one histogram per quantity of :data:`QUANTITIES`.

    Parameters
    ----------
    params : astropy.table.Table
        ``LensDataset.params`` (the lenses' rows are drawn).
    candidates : astropy.table.Table, optional
        The published candidates (:func:`~clusterlens.survey.read_zhang2026_candidates`);
        without it, their built-in 16-84% band.
    summary : dict, optional
        The report's summary (computed when not given).
    fig : matplotlib.figure.Figure, optional
    bins : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    summary = _summarise(params, candidates) if summary is None else summary
    lens = _lens_rows(params)
    ncol = 4
    nrow = -(-len(QUANTITIES) // ncol)
    fig = fig if fig is not None else Figure(figsize=(3.3 * ncol, 2.5 * nrow))
    axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
    for ax, q in zip(axes, QUANTITIES, strict=False):
        row = summary[q.name]
        mock = None
        if row["column"] is not None:
            v = _column(params, row["column"])
            mock = None if v is None else v[lens]
        _hist_panel(ax, q, mock, _candidate_values(candidates, q), row, bins)
    for ax in axes[len(QUANTITIES) :]:
        ax.set_visible(False)
    # a fixed layout: tight_layout costs seconds for eleven panels and gains nothing here
    fig.subplots_adjust(left=0.02, right=0.99, bottom=0.09, top=0.95, wspace=0.08, hspace=0.5)
    return fig


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


def _short_kinds(text: str, width: int = 26) -> str:
    """``"merger,merger,edge_on"`` -> ``"2 merger, edge_on"``, cut to fit a panel."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    counts = {k: kinds.count(k) for k in dict.fromkeys(kinds)}
    out = ", ".join(k if n == 1 else f"{n} {k}" for k, n in counts.items()) or text
    return out if len(out) <= width else out[: width - 1] + "…"


def _gallery(dataset, indices, ids, notes, caption, path, ncols):
    from clusterlens.survey.rgb import gallery

    images = [np.asarray(dataset.images[int(i)], dtype=np.float32) for i in indices]
    images = [np.nan_to_num(im, nan=0.0, posinf=0.0, neginf=0.0) for im in images]
    fig = gallery(images, ids, notes, ncols=ncols, panel_size=2.4)
    # room for the caption above the grid
    nrows = -(-len(images) // min(ncols, len(images)))
    top = 1.0 - 0.45 / (nrows * 2.4 + 0.45)
    fig.set_size_inches(fig.get_size_inches()[0], nrows * 2.4 + 0.45)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=top, wspace=0.02, hspace=0.02)
    fig.suptitle(caption, fontsize=9, y=0.995, va="top")
    fig.savefig(path, format="png", dpi=80)
    return fig


def _spread(values, n):
    """Up to ``n`` positions spread evenly over the sorted order of ``values``."""
    order = np.argsort(values, kind="stable")
    if order.size <= n:
        return order
    return order[np.round(np.linspace(0, order.size - 1, n)).astype(int)]


def _gallery_positives(dataset, params, path, n, ncols):
    lens = _lens_rows(params)
    index = np.asarray(params["index"])[lens]
    if not index.size:
        return None
    theta = _column(params, "einstein_radius")
    theta = np.zeros(index.size) if theta is None else np.nan_to_num(theta[lens], nan=0.0)
    pick = _spread(theta, n)

    def val(name, k, fmt):
        v = _column(params, name)
        return "" if v is None or not np.isfinite(v[lens][k]) else fmt.format(v[lens][k])

    ids = [f"#{index[k]} " + val("einstein_radius", k, 'θE {:.1f}"') for k in pick]
    notes = [
        " ".join(
            s
            for s in (
                val("source_redshift", k, "zs {:.2f}"),
                val("arc_snr", k, "S/N {:.0f}"),
                val("arc_mag_r", k, "r {:.1f}"),
            )
            if s
        )
        for k in pick
    ]
    caption = (
        f"{pick.size} of {index.size} mock lenses, spread over theta_E (top: index, theta_E; "
        "bottom: source z, arc S/N, arc r mag)"
    )
    _gallery(dataset, index[pick], ids, notes, caption, path, ncols)
    return {"n_shown": int(pick.size), "n_lenses": int(index.size), "caption": caption}


def _gallery_negatives(dataset, params, path, n, ncols, seed):
    neg = ~_lens_rows(params)
    all_neg = np.asarray(params["index"])[neg]
    if not all_neg.size:
        return None
    rows, texts, column = hard_negatives(params)
    if rows.size:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(rows.size, size=min(n, rows.size), replace=False))
        indices = rows[pick]
        notes = [_short_kinds(texts[k]) for k in pick]
        caption = (
            f"{indices.size} of {rows.size} hard negatives ({rows.size} of {all_neg.size} "
            f"negatives are hard by '{column}'; bottom: their confusers)"
        )
        hard = True
    else:
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(all_neg, size=min(n, all_neg.size), replace=False))
        notes = None
        why = (
            f"no negative is a hard one by '{column}'"
            if column is not None
            else "the parameter table has no record of confusers"
        )
        caption = f"{indices.size} random negatives of {all_neg.size}: {why}"
        hard = False
    ids = [f"#{i}" for i in indices]
    _gallery(dataset, indices, ids, notes, caption, path, ncols)
    return {
        "n_shown": int(indices.size),
        "n_negatives": int(all_neg.size),
        "n_hard": int(rows.size),
        "hard": hard,
        "confuser_column": column,
        "caption": caption,
    }


# ------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dataset_fingerprint(path) -> str:
    """SHA-256 of a finished dataset's ``complete.json`` and ``params.parquet``: a report
    made from another dataset (or an older state of this path) has another fingerprint."""
    path = Path(path)
    h = hashlib.sha256()
    for name in ("complete.json", "params.parquet"):
        f = path / name
        h.update(name.encode())
        h.update(_sha256(f).encode() if f.is_file() else b"-")
    return h.hexdigest()


def _read_manifest(path: Path) -> dict:
    f = path / _MANIFEST
    if not f.is_file():
        raise ReportError(f"The realism report at {path} is incomplete: it has no {_MANIFEST}.")
    try:
        manifest = json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"The manifest {f} cannot be read: {exc}") from exc
    if manifest.get("format") != _FORMAT:
        raise ReportError(f"{f} is not the manifest of a clusterlens realism report.")
    for name, info in manifest.get("files", {}).items():
        g = path / name
        if not g.is_file() or g.stat().st_size != info["bytes"] or _sha256(g) != info["sha256"]:
            raise ReportError(
                f"The realism report at {path} is damaged: {name} is missing or differs from "
                "the one it was written with."
            )
    return manifest


def report_is_complete(path, *, dataset=None) -> bool:
    """Whether ``path`` holds a complete, undamaged realism report (of ``dataset``'s current
    state, when a dataset directory is given)."""
    try:
        manifest = _read_manifest(Path(path))
    except ReportError:
        return False
    if dataset is not None:
        return manifest.get("dataset_fingerprint") == dataset_fingerprint(dataset)
    return True


@dataclass
class RealismReport:
    """A realism report written by :func:`realism_report` (or read by :func:`load_report`).

    Attributes
    ----------
    path : Path
        The report folder.
    summary : dict
        Per quantity: ``label``, ``column``, and ``mocks``, ``paper``, ``candidates`` (each
        a dict of ``median``, ``p16``, ``p84``, ... or None for n/a).
    galleries : dict
        ``positives`` / ``negatives``: what each gallery shows (``caption``, counts,
        ``hard``: whether the negatives are hard ones).
    files : dict
        Name -> path of every file of the report.
    dataset : str
        The dataset it describes.
    """

    path: Path
    summary: dict
    galleries: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    dataset: str = ""

    def table(self, title: str | None = None) -> str:
        """The summary as a Markdown table (:func:`summary_table`)."""
        return summary_table(self.summary, title=title)


def load_report(path) -> RealismReport:
    """Read a complete report; :class:`ReportError` when it is incomplete or damaged."""
    path = Path(path)
    manifest = _read_manifest(path)
    summary = json.loads((path / "summary.json").read_text())
    return RealismReport(
        path=path,
        summary=summary["quantities"],
        galleries=summary.get("galleries", {}),
        files={name: path / name for name in manifest["files"]},
        dataset=manifest.get("dataset", ""),
    )


def _check_replaceable(final: Path) -> None:
    """Refuse to replace a folder that is not a realism report (a dataset, say)."""
    if not final.exists():
        return
    if final.is_dir() and not any(final.iterdir()):
        return
    try:
        fmt = json.loads((final / _MANIFEST).read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        fmt = None
    if fmt != _FORMAT:
        raise ParameterError(
            f"The 'out_dir' parameter of realism_report names {str(final)!r}, which exists and "
            "is not a realism report; it would be replaced. Give a new or a report folder."
        )


def _publish(tmp: Path, final: Path) -> None:
    """Swap the finished temporary folder in for ``final`` (old report removed after)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def realism_report(
    dataset,
    out_dir=None,
    *,
    candidates=None,
    n_gallery: int = 8,
    gallery_columns: int = 4,
    seed: int = 0,
) -> RealismReport:
    """Write the realism report of a finished mock dataset.

    Parameters
    ----------
    dataset : LensDataset, str or Path
        A complete dataset (:func:`clusterlens.mock.simulate_dataset`).
    out_dir : str or Path, optional
        The report folder; default ``<dataset>/report``.  It is replaced as a whole once
        the new report is complete.
    candidates : str, Path or astropy.table.Table, optional
        The published candidate catalog (``zhang2026_cluster_lens_candidates.csv``) for
        the candidates' histograms; without it the report uses :data:`CANDIDATE_SUMMARY`.
    n_gallery : int
        Images per gallery.
    gallery_columns : int
        Panels per gallery row.
    seed : int
        Which negatives the gallery picks.

    Returns
    -------
    RealismReport
    """
    from clusterlens.datasets import LensDataset

    n_gallery = check_int(n_gallery, "n_gallery", "realism_report", low=1)
    gallery_columns = check_int(gallery_columns, "gallery_columns", "realism_report", low=1)
    seed = check_int(seed, "seed", "realism_report", low=0)
    ds = dataset if isinstance(dataset, LensDataset) else LensDataset(dataset)
    if not ds.complete:
        raise ParameterError(
            f"The dataset at {ds.path} is not complete; the realism report needs a finished one."
        )
    final = Path(out_dir) if out_dir is not None else ds.path / "report"
    _check_replaceable(final)
    table = _load_candidates(candidates)
    params = LensDataset(ds.path).params  # the whole dataset, not a view
    summary = _summarise(params, table)
    final.parent.mkdir(parents=True, exist_ok=True)
    # what a killed run left behind: its temporary folder, or the old report it had set aside
    for pattern in (f".{final.name}.*.tmp", f".{final.name}.*.old"):
        for leftover in final.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir()
    try:
        fig = plot_realism(params, table, summary=summary)
        fig.savefig(tmp / "distributions.png", format="png", dpi=90)
        galleries = {}
        pos = _gallery_positives(
            ds, params, tmp / "gallery_positives.png", n_gallery, gallery_columns
        )
        if pos is not None:
            galleries["positives"] = pos
        neg = _gallery_negatives(
            ds, params, tmp / "gallery_negatives.png", n_gallery, gallery_columns, seed
        )
        if neg is not None:
            galleries["negatives"] = neg
        lens = _lens_rows(params)
        doc = {
            "dataset": str(ds.path),
            "n_images": len(params),
            "n_lenses": int(lens.sum()),
            "candidates": "file" if table is not None else "built-in summary",
            "quantities": summary,
            "galleries": galleries,
        }
        (tmp / "summary.json").write_text(json.dumps(doc, indent=1))
        md = [
            f"# Realism report of {ds.path.name}",
            "",
            f"{int(lens.sum())} lenses and {int((~lens).sum())} negatives. Mocks: the lenses' "
            'parameters; paper: Table 1 ranges and the 5" cut of Zhang et al.; candidates: '
            "the 485 published candidates (R_EIN, their mean BCG-to-arc distance, beside "
            "theta_E and the arc radius). n/a: not in this dataset's parameters or not given.",
            "",
            summary_table(summary),
            "![distributions](distributions.png)",
            "",
        ]
        for key, info in galleries.items():
            md += [f"![{key}](gallery_{key}.png)", "", f"*{info['caption']}*", ""]
        (tmp / "summary.md").write_text("\n".join(md))
        files = {
            p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(tmp.iterdir())
        }
        manifest = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "dataset": str(ds.path),
            "dataset_fingerprint": dataset_fingerprint(ds.path),
            "files": files,
        }
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RealismReport(
        path=final,
        summary=summary,
        galleries=galleries,
        files={name: final / name for name in files},
        dataset=str(ds.path),
    )
