"""Figures of a finished search: the paper's Figure 9 (candidates' parameters against the
training set's) and Figure 13 (the candidates the graders disagreed on most).

Both read the candidate catalog written by
:meth:`clusterlens.loop.SearchProject.export_catalog` (columns ``M_500`` [log10 Msun],
``PZ_BCG``, ``SHAPE_R_BCG`` [arcsec], ``R_EIN`` [arcsec], ``GRADE``, ``GRADE_STD``,
``GRADE_<grader>``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clusterlens._validation import check_int
from clusterlens.errors import ParameterError

if TYPE_CHECKING:  # for annotations only
    from astropy.table import Table
    from matplotlib.figure import Figure

__all__ = ["FIGURE9_PANELS", "plot_candidate_parameters", "disputed_candidates", "grade_votes"]

#: Panels of Figure 9: (catalog column, training-set parameter column, axis label).
FIGURE9_PANELS = (
    ("M_500", "log_m500", r"$\log_{10}(M_{500}/M_\odot)$"),
    ("PZ_BCG", "z_lens", "BCG redshift"),
    ("SHAPE_R_BCG", None, "BCG effective radius [arcsec]"),
    ("R_EIN", "einstein_radius", "Einstein radius [arcsec]"),
)

_GRADE_COLOURS = {"A": "tab:red", "B": "tab:green", "C": "tab:orange"}


def _check_catalog(candidates, owner: str, columns) -> None:
    from astropy.table import Table

    if not isinstance(candidates, Table):
        raise ParameterError(
            f"The 'candidates' parameter of {owner} must be an astropy Table (the exported "
            f"candidate catalog). Got {type(candidates).__name__} instead."
        )
    missing = [c for c in columns if c not in candidates.colnames]
    if missing:
        raise ParameterError(
            f"The candidate catalog lacks the column(s) {missing}; write it with "
            "SearchProject.export_catalog."
        )


def plot_candidate_parameters(
    candidates: Table, training: Table | None = None, *, bins: int = 15, by_grade: bool = True
) -> Figure:
    """The paper's Figure 9: M500, BCG redshift, BCG size and Einstein radius of the candidates.

    Parameters
    ----------
    candidates : astropy Table
        The exported candidate catalog.
    training : astropy Table, optional
        A training set's parameter table (``LensDataset.params`` of the mock lenses: columns
        ``log_m500``, ``z_lens``, ``einstein_radius``), drawn in grey for comparison.
    bins : int
        Histogram bins per panel.
    by_grade : bool
        Stack the candidates' histograms by grade (A, B, C) instead of one colour.

    Returns
    -------
    matplotlib.figure.Figure
        Densities (each sample normalised to unit area); a panel without finite values says
        so instead of drawing an empty histogram.
    """
    import matplotlib.pyplot as plt

    _check_catalog(candidates, "plot_candidate_parameters", [p[0] for p in FIGURE9_PANELS])
    bins = check_int(bins, "bins", "plot_candidate_parameters", low=1)
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    grades = np.asarray(candidates["GRADE"]).astype(str) if "GRADE" in candidates.colnames else None
    for ax, (column, train_column, label) in zip(axes.flat, FIGURE9_PANELS, strict=True):
        values = np.asarray(candidates[column], dtype=float)
        finite = np.isfinite(values)
        reference = None
        if training is not None and train_column in getattr(training, "colnames", ()):
            reference = np.asarray(training[train_column], dtype=float)
            reference = reference[np.isfinite(reference)]
        if not finite.any():
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
            ax.set(xlabel=label)
            continue
        pooled = values[finite] if reference is None else np.r_[values[finite], reference]
        edges = np.histogram_bin_edges(pooled, bins=bins)
        if reference is not None and reference.size:
            ax.hist(reference, bins=edges, density=True, color="0.7", label="training mocks")
        if by_grade and grades is not None:
            groups = [(g, values[finite & (grades == g)]) for g in "ABC"]
            groups = [(g, v) for g, v in groups if v.size]
            if groups:
                weights = [
                    np.full(v.size, 1.0 / (finite.sum() * np.diff(edges)[0])) for _, v in groups
                ]
                ax.hist(
                    [v for _, v in groups],
                    bins=edges,
                    weights=weights,
                    stacked=True,
                    color=[_GRADE_COLOURS[g] for g, _ in groups],
                    label=[f"grade {g}" for g, _ in groups],
                    histtype="stepfilled",
                    alpha=0.8,
                )
        else:
            ax.hist(
                values[finite],
                bins=edges,
                density=True,
                histtype="step",
                color="tab:red",
                lw=2,
                label="candidates",
            )
        ax.set(xlabel=label, ylabel="density")
    axes.flat[0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def grade_votes(candidates: Table) -> list[str]:
    """Each candidate's individual grades as one string, best first (e.g. ``"AAABBC"``)."""
    _check_catalog(candidates, "grade_votes", [])
    columns = [
        c
        for c in candidates.colnames
        if c.startswith("GRADE_") and c not in ("GRADE_MEAN", "GRADE_STD")
    ]
    out = []
    for row in candidates:
        votes = "".join(str(row[c]).strip() for c in columns)
        out.append("".join(sorted(votes)))
    return out


def disputed_candidates(candidates: Table, n: int = 8) -> Table:
    """The ``n`` candidates whose graders disagreed most (largest ``GRADE_STD``; Figure 13).

    Returns the catalog rows sorted by decreasing spread, with a ``VOTES`` column
    (:func:`grade_votes`) to label a :func:`clusterlens.survey.gallery` with, as the paper's
    Figure 13 does.
    """
    _check_catalog(candidates, "disputed_candidates", ["GRADE_STD"])
    n = check_int(n, "n", "disputed_candidates", low=1)
    spread = np.asarray(candidates["GRADE_STD"], dtype=float)
    order = np.argsort(-np.nan_to_num(spread, nan=-1.0), kind="stable")[:n]
    rows = candidates[order]
    rows["VOTES"] = grade_votes(rows)
    return rows
