"""The realism report's figure of distributions: one histogram per quantity, beside the
paper's figures and the candidates'.

Private module of :mod:`clusterlens.mock.report`, which is where :func:`plot_realism` is
public.
"""

from __future__ import annotations

import numpy as np

from clusterlens.mock._report_stats import (
    QUANTITIES,
    Quantity,
    _candidate_values,
    _column,
    _lens_rows,
    _summarise,
    format_range,
    format_stats,
)


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
