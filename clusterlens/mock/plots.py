"""Figures of the mock program: the paper's Figure 1 (one mock) and Figure 2 (parameters)."""

from __future__ import annotations

import numpy as np

from clusterlens.errors import ParameterError
from clusterlens.mock.simulator import MockResult

__all__ = ["plot_mock", "plot_parameter_distributions", "FIGURE2_COLUMNS"]

#: Columns of a dataset's parameter table drawn by :func:`plot_parameter_distributions`
#: (the distributions Table 1 gives without analytic form), with axis labels.
FIGURE2_COLUMNS = {
    "log_m500": r"$\log_{10}(M_{500}/M_\odot)$",
    "z_lens": "BCG redshift",
    "members_log_mstar_total": r"$\log_{10}(\sum M_*/M_\odot)$ members",
    "source_mag_g": "source g [mag]",
    "source_mag_r": "source r [mag]",
    "source_mag_z": "source z [mag]",
    "source_r_e": "source $r_e$ [arcsec]",
    "source_q": "source axis ratio",
    "source_redshift": "source redshift",
    "source_n": "source Sérsic index",
    "einstein_radius": r"Einstein radius [arcsec]",
    "magnification": "total magnification",
    "arc_snr": "arc S/N (g, r, z)",
}


def _rgb(image):
    from clusterlens.survey.rgb import make_rgb

    return make_rgb(image)


def plot_mock(result: MockResult, *, pixel_scale: float = 0.262, fig=None, coarse: int = 4):
    """Redraw the paper's Figure 1 for one mock: cluster, arc with curves, final mock.

    Left: the cluster cutout (RGB, the Legacy Surveys' scaling).  Middle: the noiseless
    arc with the tangential and radial critical curves (red) and caustics (green), the
    member galaxies (orange crosses) and the source (cyan cross).  Right: the mock.

    Parameters
    ----------
    result : MockResult
    pixel_scale : float
        [arcsec].
    fig : matplotlib.figure.Figure, optional
    coarse : int
        Coarse step of the critical-curve tracer (:func:`clusterlens.lensing.critical_curves`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from clusterlens.lensing import caustics, critical_curves

    if not isinstance(result, MockResult):
        raise ParameterError(
            "The 'result' parameter of plot_mock must be a MockResult. "
            f"Got {type(result).__name__}."
        )
    n = result.image.shape[-1]
    half = 0.5 * n * pixel_scale
    extent = (-half, half, -half, half)
    crit = critical_curves(result.lens, n_pix=2 * n, pixel_scale=pixel_scale / 2, coarse=coarse)
    caus = caustics(result.lens, crit)
    fig = fig if fig is not None else plt.figure(figsize=(12, 4.2))
    axes = fig.subplots(1, 3)
    # make_rgb returns display order (north = row 0 at the top): imshow with origin="upper"
    axes[0].imshow(_rgb(result.cutout), extent=extent, origin="upper")
    axes[0].set_title("cluster")
    arc = result.arc.sum(axis=0)
    axes[1].imshow(
        np.arcsinh(arc / max(arc.max(), 1e-12) * 20), extent=extent, origin="lower", cmap="gray"
    )
    for curves, colour in ((crit, "red"), (caus, "lime")):
        for c in curves.all:
            axes[1].plot(c[:, 0], c[:, 1], color=colour, lw=0.8)
    xy = result.member_xy
    axes[1].plot(xy[:, 0], xy[:, 1], "x", color="orange", ms=5)
    axes[1].plot([result.source.x], [result.source.y], "x", color="cyan", ms=8, mew=2)
    axes[1].set_xlim(-half, half)
    axes[1].set_ylim(-half, half)
    axes[1].set_title(rf"arc, $\theta_E$ = {result.params['einstein_radius']:.1f}$''$")
    axes[2].imshow(_rgb(result.image), extent=extent, origin="upper")
    axes[2].set_title("mock lens")
    for ax in axes:
        ax.set_xlabel("x [arcsec]")
    axes[0].set_ylabel("y [arcsec]")
    fig.tight_layout()
    return fig


def plot_parameter_distributions(params, *, columns=None, fig=None, bins: int = 30):
    """Figure 2-style histograms of a dataset's parameter table (the lenses' rows).

    Parameters
    ----------
    params : astropy.table.Table or dict of arrays
        ``LensDataset.params`` or :meth:`MockResult.params` rows gathered in a table; rows
        with ``label == 0`` (negatives) are skipped when a ``label`` column is present.
    columns : dict or sequence of str, optional
        Columns to draw (default :data:`FIGURE2_COLUMNS` that are present).
    fig : matplotlib.figure.Figure, optional
    bins : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    names = list(getattr(params, "colnames", None) or params.keys())
    keep = None
    if "label" in names:
        keep = np.asarray(params["label"]) == 1
    if columns is None:
        columns = {k: v for k, v in FIGURE2_COLUMNS.items() if k in names}
    elif not isinstance(columns, dict):
        columns = {k: FIGURE2_COLUMNS.get(k, k) for k in columns}
    missing = [k for k in columns if k not in names]
    if missing or not columns:
        raise ParameterError(
            f"The parameter table lacks the column(s) {missing or list(FIGURE2_COLUMNS)}; it has "
            f"{names}."
        )
    ncol = 4
    nrow = int(np.ceil(len(columns) / ncol))
    fig = fig if fig is not None else plt.figure(figsize=(3.2 * ncol, 2.6 * nrow))
    axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
    colours = None
    if "source_colour" in names:
        colours = np.asarray(params["source_colour"]).astype(str)
        if keep is not None:
            colours = colours[keep]
    for ax, (key, label) in zip(axes, columns.items(), strict=False):
        values = np.asarray(params[key], dtype=float)
        if keep is not None:
            values = values[keep]
        finite = np.isfinite(values)
        values = values[finite]
        edges = np.histogram_bin_edges(values, bins=bins) if values.size else bins
        if key.startswith("source_mag") and colours is not None and colours.size == finite.size:
            colours_here = colours[finite]
            for cls, c in (("red", "tab:red"), ("green", "tab:green"), ("blue", "tab:blue")):
                sel = colours_here == cls
                if sel.any():
                    ax.hist(values[sel], bins=edges, histtype="step", color=c, label=cls)
            ax.legend(fontsize=7)
        else:
            ax.hist(values, bins=edges, histtype="stepfilled", color="0.6", edgecolor="k")
        ax.set_xlabel(label)
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
