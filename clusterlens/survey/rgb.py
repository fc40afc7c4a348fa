"""Colour composites of g, r, z cutouts, PNG output and galleries like the paper's Figure 7.

g, r and z go to blue, green and red, as in the paper. Two scalings:

``"legacy"`` (default): the Legacy Surveys viewer's own asinh scaling. Each band is weighted
(``g x 6.0``, ``r x 3.4``, ``z x 2.2``) and offset by ``m = 0.03``:
``v_b = img_b * scale_b + m``; with ``I = mean_b max(0, v_b)`` each plane is
``v_b * asinh(Q I) / (sqrt(Q) I)`` (``Q = 20``), clipped to [0, 1]. Because every plane is
multiplied by the same factor of ``I``, colours are preserved while brightness is
compressed (Lupton et al. 2004).

``"lupton"``: :func:`astropy.visualization.make_lupton_rgb` on the same weighted bands
(``stretch``, ``Q`` selectable).

Images come in FITS order (row 0 = south); the RGB arrays returned here are in display
order (row 0 = north), so ``plt.imshow(rgb)`` and the PNG files show north up, east left.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clusterlens._io import atomic_path
from clusterlens._validation import check_int, check_scalar
from clusterlens.errors import ParameterError

__all__ = ["LEGACY_SCALES", "make_rgb", "save_png", "gallery"]

#: Band weights of the Legacy Surveys viewer: band -> multiplier (plane: g blue, r green,
#: z red).
LEGACY_SCALES = {"g": 6.0, "r": 3.4, "z": 2.2}
_PLANE = {"z": 0, "r": 1, "g": 2}  # red, green, blue
_METHODS = ("legacy", "lupton")


def _check_image(image, bands, owner: str) -> np.ndarray:
    data = np.asarray(image, dtype=np.float64)
    bands = tuple(bands)
    if data.ndim != 3 or data.shape[0] != len(bands) or sorted(bands) != ["g", "r", "z"]:
        raise ParameterError(
            f"The 'image' parameter of {owner} must be a (3, y, x) array of bands g, r, z "
            f"(in the order of 'bands'). Got shape {data.shape} with bands {bands!r}."
        )
    if not np.isfinite(data).all():
        raise ParameterError(
            f"The 'image' parameter of {owner} holds NaN/inf pixels; repair them first "
            "(clusterlens.survey.validate_cutout)."
        )
    return data


def make_rgb(
    image,
    *,
    bands="grz",
    method: str = "legacy",
    scales: dict | None = None,
    Q: float | None = None,
    m: float = 0.03,
    stretch: float = 0.5,
) -> np.ndarray:
    """A uint8 RGB image (display order, north up) from a g, r, z cutout.

    Parameters
    ----------
    image : array_like
        ``(3, y, x)`` [nanomaggies], FITS order.
    bands : str or sequence
        Band of each plane of ``image`` (any order of g, r, z).
    method : {"legacy", "lupton"}
        Scaling, see the module docstring.
    scales : dict, optional
        Band weights; default :data:`LEGACY_SCALES`.
    Q : float, optional
        asinh softening; default 20 (legacy) or 8 (lupton).
    m : float
        Offset added to every weighted band (legacy only).
    stretch : float
        Linear stretch of :func:`~astropy.visualization.make_lupton_rgb` (lupton only).

    Returns
    -------
    ndarray
        uint8 ``(y, x, 3)``, planes red (z), green (r), blue (g), row 0 = north.
    """
    bands = tuple(bands)
    data = _check_image(image, bands, "make_rgb")
    if method not in _METHODS:
        raise ParameterError(
            f"The 'method' parameter of make_rgb must be one of {_METHODS}. Got {method!r}."
        )
    scales = dict(LEGACY_SCALES if scales is None else scales)
    weighted = np.empty_like(data)
    for i, b in enumerate(bands):
        weighted[_PLANE[b]] = data[i] * check_scalar(
            scales.get(b), f"scales[{b!r}]", "make_rgb", low=0, low_inclusive=False
        )
    if method == "legacy":
        Q = check_scalar(20.0 if Q is None else Q, "Q", "make_rgb", low=0, low_inclusive=False)
        m = check_scalar(m, "m", "make_rgb")
        v = weighted + m
        intensity = np.maximum(v, 0.0).mean(axis=0)
        intensity = np.where(intensity == 0.0, 1e-6, intensity)  # 0/0 -> 0, not NaN
        rgb = np.clip(v * (np.arcsinh(Q * intensity) / np.sqrt(Q) / intensity), 0.0, 1.0)
        out = np.round(rgb * 255.0).astype(np.uint8).transpose(1, 2, 0)
    else:
        from astropy.visualization import make_lupton_rgb

        Q = check_scalar(8.0 if Q is None else Q, "Q", "make_rgb", low=0, low_inclusive=False)
        stretch = check_scalar(stretch, "stretch", "make_rgb", low=0, low_inclusive=False)
        out = make_lupton_rgb(weighted[0], weighted[1], weighted[2], stretch=stretch, Q=Q)
    return np.ascontiguousarray(out[::-1])


def save_png(rgb, path) -> Path:
    """Write a uint8 ``(y, x, 3)`` RGB array (display order) as PNG, atomically."""
    import matplotlib.image

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ParameterError(
            "The 'rgb' parameter of save_png must be a uint8 (y, x, 3) array (make_rgb's "
            f"output). Got {rgb.dtype} {rgb.shape}."
        )
    path = Path(path)
    with atomic_path(path) as tmp:
        matplotlib.image.imsave(tmp, rgb, format="png")
    return path


def gallery(
    images,
    ids,
    grades=None,
    *,
    bands="grz",
    method: str = "legacy",
    ncols: int = 4,
    panel_size: float = 2.5,
    path=None,
    **rgb_options,
):
    """Lay out many cutouts as a grid of colour images, labelled like the paper's Figure 7.

    Each panel shows one cutout north up, east left, its id in the top-left corner and its
    grade (when given) in the bottom-left corner.

    Parameters
    ----------
    images : sequence of array_like
        ``(3, y, x)`` cutouts [nanomaggies], FITS order.
    ids : sequence
        Label of each cutout (the cluster id).
    grades : sequence, optional
        Grade of each cutout (``"A"``, ``"B"``, ``"C"`` or any text).
    bands, method, **rgb_options
        Passed to :func:`make_rgb`.
    ncols : int
        Panels per row.
    panel_size : float
        Side of a panel [inches].
    path : str or path-like, optional
        Save the figure there (PNG by suffix), atomically.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    images = list(images)
    ids = list(ids)
    if not images or len(ids) != len(images):
        raise ParameterError(
            "The 'images' and 'ids' parameters of gallery must be non-empty and of the same "
            f"length. Got {len(images)} images and {len(ids)} ids."
        )
    if grades is not None and len(grades) != len(images):
        raise ParameterError(
            f"The 'grades' parameter of gallery must have one grade per image ({len(images)}). "
            f"Got {len(grades)}."
        )
    ncols = check_int(ncols, "ncols", "gallery", low=1)
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    fig = Figure(figsize=(ncols * panel_size, nrows * panel_size))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1, wspace=0.02, hspace=0.02)
    text = {"color": "white", "fontsize": 9, "fontweight": "bold"}
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k >= len(images):
            continue
        ax.imshow(make_rgb(images[k], bands=bands, method=method, **rgb_options))
        ax.text(0.03, 0.97, str(ids[k]), transform=ax.transAxes, va="top", ha="left", **text)
        if grades is not None:
            ax.text(0.03, 0.03, str(grades[k]), transform=ax.transAxes, va="bottom", **text)
    if path is not None:
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=100)
    return fig
