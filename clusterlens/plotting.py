"""Figures of lens models: convergence, critical curves and caustics (matplotlib).

:func:`plot_lens_maps` draws the panel of the paper's Figure 1 (middle): the convergence
map on a log stretch, the critical curves in red and the caustics in green, member
galaxies as orange crosses and the source as a cyan cross. It returns the figure and axes
and never calls ``plt.show()``: save or show them yourself.
"""

from __future__ import annotations

import numpy as np

from clusterlens._validation import check_array, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.lensing import (
    LensCurves,
    _check_center,
    _check_lens,
    _check_shape,
    caustics,
    critical_curves,
    pixel_grid,
)

__all__ = ["plot_lens_maps"]


def _points(value, name: str) -> np.ndarray:
    arr = check_array(value, name, "plot_lens_maps")
    if arr.ndim == 1 and arr.size == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ParameterError(
            f"The {name!r} parameter of plot_lens_maps must be an (N, 2) array of (x, y) "
            f"positions in arcsec. Got shape {arr.shape} instead."
        )
    return arr


def plot_lens_maps(
    lens,
    *,
    n_pix=400,
    pixel_scale: float = 0.25,
    center=(0.0, 0.0),
    critical: LensCurves | None = None,
    members=None,
    source=None,
    show_caustics: bool = True,
    ax=None,
    cmap: str = "magma",
):
    """Draw the convergence map, critical curves and caustics of a lens.

    Parameters
    ----------
    lens : MassProfile
        The lens.
    n_pix : int or (int, int), optional
        Pixels per side of the map (and of the grid the curves are traced on when
        ``critical`` is not given). Default 400.
    pixel_scale : float, optional
        Pixel size in arcsec. Default 0.25 (a 100 arcsec field with 400 pixels).
    center : (float, float), optional
        Centre of the map in arcsec.
    critical : LensCurves, optional
        Critical curves from :func:`~clusterlens.lensing.critical_curves`; traced on the map's
        grid when not given.
    members : array_like, shape (N, 2), optional
        Member-galaxy positions (arcsec), drawn as orange crosses.
    source : array_like, shape (2,) or (N, 2), optional
        Source position(s) (arcsec), drawn as cyan crosses.
    show_caustics : bool, optional
        Draw the caustics (green). Default True.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is made when not given.
    cmap : str, optional
        Colour map of the convergence. Default ``"magma"``.

    Returns
    -------
    fig, ax : matplotlib.figure.Figure, matplotlib.axes.Axes
        The figure and axes drawn on. +x is to the right and +y up (``origin="lower"``).

    Examples
    --------
    >>> fig, ax = plot_lens_maps(halo + members, members=positions)  # doctest: +SKIP
    >>> fig.savefig("lens.png")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    owner = "plot_lens_maps"
    _check_lens(lens, owner)
    ny, nx = _check_shape(n_pix, owner)
    s = check_scalar(pixel_scale, "pixel_scale", owner, low=0.0, low_inclusive=False)
    cx, cy = _check_center(center, owner)
    if critical is not None and not isinstance(critical, LensCurves):
        raise ParameterError(
            "The 'critical' parameter of plot_lens_maps must be the LensCurves returned by "
            f"critical_curves. Got {type(critical).__name__} instead."
        )
    members = None if members is None else _points(members, "members")
    source = None if source is None else _points(source, "source")

    x, y = pixel_grid((ny, nx), s, center=(cx, cy))
    kappa = lens.convergence(x, y)
    if critical is None:
        critical = critical_curves(lens, n_pix=(ny, nx), pixel_scale=s, center=(cx, cy))

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 6))
    else:
        fig = ax.figure
    positive = kappa[kappa > 0]
    if positive.size:
        # clip the singular centres of isothermal members so the halo stays visible
        vmin, vmax = np.percentile(positive, [1.0, 99.9])
        norm = LogNorm(vmin=vmin, vmax=max(vmax, vmin * 1.0001))
    else:
        norm = None
    half_x, half_y = nx * s / 2, ny * s / 2
    image = ax.imshow(
        np.where(kappa > 0, kappa, np.nan),
        origin="lower",
        extent=(cx - half_x, cx + half_x, cy - half_y, cy + half_y),
        cmap=cmap,
        norm=norm,
        interpolation="nearest",
    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=r"convergence $\kappa$")
    for i, c in enumerate(critical.all):
        ax.plot(c[:, 0], c[:, 1], color="red", lw=1.0, label="critical curves" if i == 0 else None)
    if show_caustics:
        for i, c in enumerate(caustics(lens, critical).all):
            ax.plot(c[:, 0], c[:, 1], color="lime", lw=0.8, label="caustics" if i == 0 else None)
    if members is not None and len(members):
        ax.plot(members[:, 0], members[:, 1], "x", color="orange", ms=5, label="members")
    if source is not None:
        ax.plot(source[:, 0], source[:, 1], "x", color="cyan", ms=9, mew=2, label="source")
    ax.set_xlim(cx - half_x, cx + half_x)
    ax.set_ylim(cy - half_y, cy + half_y)
    ax.set_xlabel("x [arcsec]")
    ax.set_ylabel("y [arcsec]")
    ax.set_aspect("equal")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small", framealpha=0.6)
    return fig, ax
