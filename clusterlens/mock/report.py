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

This module writes the report (the galleries, the manifest, the swap into place); the
quantities, the statistics and the hard negatives live in ``_report_stats.py`` and the
distributions figure in ``_report_figures.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clusterlens._validation import check_int
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.mock._report_figures import plot_realism
from clusterlens.mock._report_stats import CANDIDATE_SUMMARY as _CANDIDATE_SUMMARY
from clusterlens.mock._report_stats import QUANTITIES as _QUANTITIES
from clusterlens.mock._report_stats import (
    Quantity,
    _column,
    _lens_rows,
    _load_candidates,
    _summarise,
    format_range,
    format_stats,
    hard_negatives,
    measure_arc,
    summary_table,
)

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

# The two tables are defined in _report_stats.py; bound here again under their doc comments,
# which the API pages read from this module.
#: What the report shows, in order.
QUANTITIES = _QUANTITIES
#: The 485 published candidates (``zhang2026_cluster_lens_candidates.csv``), summarised for
#: when the file is not at hand: ``n``, ``median``, ``p16``, ``p84``, ``min``, ``max`` per
#: candidates column (``m500`` as log10 Msun).  Checked against the file by the tests.
CANDIDATE_SUMMARY = _CANDIDATE_SUMMARY

# The quantities, statistics and hard negatives live in _report_stats.py, the distributions
# figure in _report_figures.py; this module writes the report (galleries, manifest) and stays
# the public home of their names: their __module__ says so, which keeps their reprs and API
# pages what they were before the split.  The dataclass Quantity keeps its own module: Sphinx
# reads its fields' docs from its source.
for _public in (
    measure_arc, format_stats, format_range, summary_table, hard_negatives,
    plot_realism,
):  # fmt: skip
    _public.__module__ = __name__
del _public

_MANIFEST = "complete.json"
_FORMAT = "clusterlens-realism-report"
_FORMAT_VERSION = 1


class ReportError(ClusterlensError):
    """A realism report on disk is missing, incomplete or damaged."""


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
