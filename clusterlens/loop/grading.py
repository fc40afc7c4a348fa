"""The grading rules of Zhang et al. (2026, section 4.1) and measurements that help graders.

Criterion 1 (cluster): more than 10 member galaxies in the field of view.
Criterion 2 (arc prominence): a clearly observable lensed arc, bright, with a large
length-to-width ratio and a high circumferential completeness.

=====================  ======================  ===========
criterion 1 (cluster)  criterion 2 (arc)       grade
=====================  ======================  ===========
yes                    prominent               A
yes                    visible, not prominent  B
yes                    nearly invisible        C
no                     prominent               B
no                     not prominent           C
=====================  ======================  ===========

Several graders are combined as the paper does (:func:`aggregate_grades`): A and C votes
cancel in pairs, then the majority of the remaining votes wins.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from clusterlens._validation import as_value, check_array, check_int, check_scalar
from clusterlens.errors import ParameterError

__all__ = [
    "GRADES",
    "GRADE_VALUE",
    "MIN_MEMBERS",
    "check_grade",
    "cluster_criterion",
    "grade_from_criteria",
    "aggregate_grades",
    "grade_spread",
    "count_members",
    "count_members_in_cutout",
    "arc_length_width",
    "arc_colour",
    "einstein_radius_from_points",
]

#: The three grades, best first.
GRADES = ("A", "B", "C")
#: Numerical values used for the spread of grades (the paper's Figure 13).
GRADE_VALUE = {"A": 3, "B": 2, "C": 1}
#: Criterion 1 asks for *more than* this many member galaxies in the field.
MIN_MEMBERS = 10


def check_grade(grade, owner: str = "grading", name: str = "grade") -> str:
    """Return ``grade`` as ``"A"``, ``"B"`` or ``"C"`` (case-insensitive), or raise."""
    if isinstance(grade, str) and grade.strip().upper() in GRADES:
        return grade.strip().upper()
    raise ParameterError(
        f"The {name!r} parameter of {owner} must be 'A', 'B' or 'C'. Got {grade!r}."
    )


def cluster_criterion(n_members: int, *, min_members: int = MIN_MEMBERS) -> bool:
    """Criterion 1: ``True`` when more than ``min_members`` (default 10) members are seen."""
    return check_int(n_members, "n_members", "cluster_criterion", low=0) > min_members


def grade_from_criteria(is_cluster: bool, arc: str) -> str:
    """The paper's A/B/C table.

    Parameters
    ----------
    is_cluster : bool
        Criterion 1 (more than 10 member galaxies in the field; see :func:`cluster_criterion`).
    arc : {"prominent", "visible", "invisible"}
        Criterion 2 is met for ``"prominent"``; ``"visible"`` is an arc that is seen but not
        prominent; ``"invisible"`` an arc that is nearly invisible.

    Returns
    -------
    str
        ``"A"``, ``"B"`` or ``"C"``.
    """
    if arc not in ("prominent", "visible", "invisible"):
        raise ParameterError(
            "The 'arc' parameter of grade_from_criteria must be 'prominent', 'visible' or "
            f"'invisible'. Got {arc!r}."
        )
    if not isinstance(is_cluster, bool | np.bool_):
        raise ParameterError(
            f"The 'is_cluster' parameter of grade_from_criteria must be a bool. Got {is_cluster!r}."
        )
    if is_cluster:
        return {"prominent": "A", "visible": "B", "invisible": "C"}[arc]
    return "B" if arc == "prominent" else "C"


def aggregate_grades(grades: Iterable[str], *, tie: str = "lower") -> str:
    """Combine several graders' grades exactly as the paper does.

    1. A and C votes cancel each other in pairs (one A with one C).
    2. The majority of the remaining votes (now only A and B, or only B and C) wins.
       With the paper's seven graders an odd number of votes always remains, so there is
       no tie: 4A 2B 1C -> 3A 2B -> A.

    Cases the paper never met, decided here so that the result is always defined:

    * a tie between the two remaining grades (possible with an even number of graders,
      e.g. 2A 2B, or 3A 1B 2C -> 1A 1B) goes to the lower grade by default
      (``tie="lower"``, the conservative choice) or to the higher (``tie="higher"``);
    * if nothing remains (as many A as C votes and no B, e.g. 1A 1C), the grade is B: the
      votes are symmetric around B.

    Parameters
    ----------
    grades : iterable of {"A", "B", "C"}
        One grade per grader (case-insensitive); at least one.
    tie : {"lower", "higher"}
        How to break a tie between the remaining grades.
    """
    if tie not in ("lower", "higher"):
        raise ParameterError(
            f"The 'tie' parameter of aggregate_grades must be 'lower' or 'higher'. Got {tie!r}."
        )
    votes = Counter(check_grade(g, "aggregate_grades", "grades") for g in grades)
    if not votes:
        raise ParameterError("The 'grades' parameter of aggregate_grades is empty.")
    cancelled = min(votes["A"], votes["C"])
    a, b, c = votes["A"] - cancelled, votes["B"], votes["C"] - cancelled
    if a + b + c == 0:
        return "B"
    other, n_other = ("A", a) if a else ("C", c)  # at most one of a, c is non-zero
    if n_other > b:
        return other
    if n_other < b:
        return "B"
    # tie between B and the other grade
    better, worse = ("A", "B") if other == "A" else ("B", "C")
    return worse if tie == "lower" else better


def grade_spread(grades: Sequence[str], *, ddof: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of grades with A = 3, B = 2, C = 1 (the paper's Fig. 13).

    ``ddof=0`` (default) gives the population standard deviation of the graders' votes;
    ``ddof=1`` the sample one (then at least two grades are needed).
    """
    values = np.array([GRADE_VALUE[check_grade(g, "grade_spread", "grades")] for g in grades])
    if values.size <= ddof:
        raise ParameterError(
            f"The 'grades' parameter of grade_spread needs more than {ddof} grade(s). "
            f"Got {values.size}."
        )
    return float(values.mean()), float(values.std(ddof=ddof))


# ---------------------------------------------------------------------------------------------
# criterion 1: counting member galaxies


def count_members(
    catalog,
    ra: float,
    dec: float,
    z: float,
    *,
    radius_arcsec: float,
    dz: float = 0.04,
    ra_column: str = "ra",
    dec_column: str = "dec",
    z_column: str = "z",
) -> int:
    """Count the cluster's member galaxies in the field from a member/galaxy catalogue.

    A galaxy counts when it lies within ``radius_arcsec`` of (``ra``, ``dec``) and its
    (photometric) redshift satisfies ``|z_gal - z| <= dz * (1 + z)``. With a catalogue of
    members already assigned to the cluster (e.g. Zou et al. 2021) pass a large ``dz``.

    Parameters
    ----------
    catalog : astropy Table or mapping of columns
        Galaxies with right ascension and declination in degrees and redshifts.
    ra, dec : float
        Field centre (the BCG) in degrees.
    z : float
        Cluster redshift.
    radius_arcsec : float
        Half-size of the field that graders look at, arcsec (e.g. 0.262'' x 223 / 2 = 29'').
    dz : float
        Redshift window per unit (1 + z).
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    owner = "count_members"
    ra, dec = as_value(ra, "deg", "ra", owner), as_value(dec, "deg", "dec", owner)
    z = as_value(z, "", "z", owner)
    radius_arcsec = as_value(radius_arcsec, "arcsec", "radius_arcsec", owner)
    ra = check_scalar(ra, "ra", owner, low=0, high=360)
    dec = check_scalar(dec, "dec", owner, low=-90, high=90)
    z = check_scalar(z, "z", owner, low=0)
    radius = check_scalar(radius_arcsec, "radius_arcsec", owner, low=0, low_inclusive=False)
    dz = check_scalar(dz, "dz", owner, low=0)
    names = catalog.colnames if hasattr(catalog, "colnames") else list(catalog.keys())
    for col in (ra_column, dec_column, z_column):
        if col not in names:
            raise ParameterError(f"The 'catalog' parameter of {owner} has no column {col!r}.")
    g_ra = check_array(catalog[ra_column], "catalog[ra]", owner, ndim=1)
    g_dec = check_array(catalog[dec_column], "catalog[dec]", owner, ndim=1)
    g_z = check_array(catalog[z_column], "catalog[z]", owner, ndim=1)
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    sep = centre.separation(SkyCoord(g_ra * u.deg, g_dec * u.deg)).to_value(u.arcsec)
    return int(np.count_nonzero((sep <= radius) & (np.abs(g_z - z) <= dz * (1 + z))))


def count_members_in_cutout(
    image,
    *,
    bands: Sequence[str] = ("g", "r", "z"),
    colour: tuple[str, str] = ("r", "z"),
    colour_window: float = 0.25,
    reference_colour: float | None = None,
    nsigma: float = 3.0,
    npixels: int = 10,
):
    """Count red-sequence galaxies detected in a cutout, for criterion 1 without a catalogue.

    Sources are detected on the sum of all bands (photutils image segmentation: connected
    groups of at least ``npixels`` pixels above ``nsigma`` times the sigma-clipped
    background rms). Each source's colour, ``-2.5 log10(F_1 / F_2)`` from its summed flux in
    the two ``colour`` bands, is compared with the reference colour: members are the sources
    within ``colour_window`` magnitudes of it (cluster members form a red sequence of nearly
    the same colour at one redshift). The reference is the colour of the source at the
    cutout centre (the BCG) unless given. Overlapping galaxies are not deblended, so a
    crowded core can be undercounted; this is a grader's aid, not a membership catalogue.

    Parameters
    ----------
    image : array_like, shape (n_bands, ny, nx)
        Cutout in nanomaggies, BCG at the centre.
    bands : sequence of str
        The band of each image plane.
    colour : (str, str)
        The two bands whose magnitude difference is the colour (r - z suits z ~ 0.2-0.9).
    colour_window : float
        Half-width of the accepted colour range, mag.
    reference_colour : float, optional
        Red-sequence colour, mag; the central source's colour if omitted.
    nsigma : float
        Detection threshold in units of the background rms.
    npixels : int
        Minimum connected pixels of a source.

    Returns
    -------
    (int, astropy.table.Table)
        Number of members, and a table of all detected sources (``label``, ``x``, ``y`` in
        pixels, ``colour``, ``member``).
    """
    from astropy.stats import sigma_clipped_stats
    from astropy.table import Table
    from photutils.segmentation import detect_sources

    from clusterlens._provenance import provenance

    owner = "count_members_in_cutout"
    img = check_array(image, "image", owner, ndim=3)
    bands = list(bands)
    if img.shape[0] != len(bands):
        raise ParameterError(
            f"The 'image' parameter of {owner} has {img.shape[0]} planes but {len(bands)} "
            f"band names were given ({bands})."
        )
    for b in colour:
        if b not in bands:
            raise ParameterError(f"The 'colour' band {b!r} of {owner} is not in {bands}.")
    colour_window = as_value(colour_window, "mag", "colour_window", owner)
    reference_colour = as_value(reference_colour, "mag", "reference_colour", owner)
    window = check_scalar(colour_window, "colour_window", owner, low=0, low_inclusive=False)
    nsig = check_scalar(nsigma, "nsigma", owner, low=0, low_inclusive=False)
    detection = img.sum(axis=0)
    _, median, std = sigma_clipped_stats(detection, sigma=3.0)
    segm = detect_sources(detection - median, nsig * std, int(npixels))
    table = Table(
        names=("label", "x", "y", "colour", "member"),
        dtype=(int, float, float, float, bool),
        units={"x": "pix", "y": "pix", "colour": "mag"},
        meta=provenance(),
    )
    if segm is None:
        return 0, table
    labels = segm.data
    idx = np.asarray(segm.labels)
    from scipy import ndimage

    f1 = ndimage.sum_labels(img[bands.index(colour[0])], labels, idx)
    f2 = ndimage.sum_labels(img[bands.index(colour[1])], labels, idx)
    with np.errstate(divide="ignore", invalid="ignore"):
        col = np.where((f1 > 0) & (f2 > 0), -2.5 * np.log10(f1 / f2), np.nan)
    cy, cx = np.array(ndimage.center_of_mass(detection.clip(min=0), labels, idx)).reshape(-1, 2).T
    if reference_colour is None:
        centre_label = labels[labels.shape[0] // 2, labels.shape[1] // 2]
        if centre_label == 0:
            raise ParameterError(
                f"{owner}: no source at the cutout centre to take the red-sequence colour "
                "from; pass reference_colour."
            )
        ref = col[centre_label - 1]
    else:
        ref = check_scalar(reference_colour, "reference_colour", owner)
    member = np.abs(col - ref) <= window
    member[np.isnan(col)] = False
    for row in zip(idx, cx, cy, col, member, strict=True):
        table.add_row(row)
    return int(member.sum()), table


# ---------------------------------------------------------------------------------------------
# criterion 2 and the Einstein radius: measurements on the marked arc


def _skeleton_length(skeleton: np.ndarray) -> float:
    """Longest shortest path (pixels) through an 8-connected skeleton."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    ys, xs = np.nonzero(skeleton)
    n = ys.size
    if n <= 1:
        return float(n)
    index = -np.ones(skeleton.shape, dtype=np.int64)
    index[ys, xs] = np.arange(n)
    rows, cols, weights = [], [], []
    ny, nx = skeleton.shape
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        y2, x2 = ys + dy, xs + dx
        ok = (y2 >= 0) & (y2 < ny) & (x2 >= 0) & (x2 < nx)
        j = np.full(n, -1)
        j[ok] = index[y2[ok], x2[ok]]
        has = j >= 0
        rows.append(np.arange(n)[has])
        cols.append(j[has])
        weights.append(np.full(has.sum(), math.hypot(dy, dx)))
    graph = coo_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    ).tocsr()
    # two sweeps: the farthest point from any point is one end of the longest path in a tree
    d0 = dijkstra(graph, directed=False, indices=0)
    end = int(np.argmax(np.where(np.isfinite(d0), d0, -1)))
    d1 = dijkstra(graph, directed=False, indices=end)
    return float(np.max(d1[np.isfinite(d1)]))


def arc_length_width(mask, *, pixel_scale: float = 0.262) -> tuple[float, float, float]:
    """Length, width (arcsec) and length-to-width ratio of a segmented or painted arc.

    The length follows the arc's curve: the longest path ``D`` (pixels, diagonal steps
    counting sqrt 2) through the mask's skeleton (scikit-image ``skeletonize``), ``L = D``
    (at least one pixel); the skeleton's branches into the corners of a square-ended arc
    make up for the half-width it stops short of each end. The mean width is
    ``W = area / L``. On annular sectors (radius 40-70 px, thickness 2-10 px, opening
    0.6-2.5 rad) L is within 4 % of ``R phi`` and W within 7 % of the thickness.

    Parameters
    ----------
    mask : array_like of bool, shape (ny, nx)
        Pixels of one arc.
    pixel_scale : float
        Arcsec per pixel (0.262 for the DESI Legacy Surveys).

    Returns
    -------
    (length, width, ratio) : tuple of float
        Length and width in arcsec, and their ratio.
    """
    from skimage.morphology import skeletonize

    owner = "arc_length_width"
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        raise ParameterError(
            f"The 'mask' parameter of {owner} must be a 2-dimensional boolean array with at "
            f"least one True pixel. Got shape {m.shape} with {int(m.sum())} pixels."
        )
    pixel_scale = as_value(pixel_scale, ("arcsec / pix", "arcsec"), "pixel_scale", owner)
    scale = check_scalar(pixel_scale, "pixel_scale", owner, low=0, low_inclusive=False)
    d = _skeleton_length(skeletonize(m))
    area = float(m.sum())
    length = max(d, 1.0)
    width = area / length
    return length * scale, width * scale, length / width


def arc_colour(image, mask, *, bands: Sequence[str] = ("g", "r", "z"), colour=("g", "r")):
    """Colour of an arc, ``-2.5 log10(F_1 / F_2)`` (mag) from fluxes summed over its mask.

    Lensed background galaxies are usually bluer (smaller g - r) than the cluster members.
    Returns ``nan`` when either flux is not positive.
    """
    owner = "arc_colour"
    img = check_array(image, "image", owner, ndim=3)
    m = np.asarray(mask, dtype=bool)
    if m.shape != img.shape[1:]:
        raise ParameterError(
            f"The 'mask' parameter of {owner} must have the image's shape {img.shape[1:]}. "
            f"Got {m.shape}."
        )
    bands = list(bands)
    for b in colour:
        if b not in bands:
            raise ParameterError(f"The 'colour' band {b!r} of {owner} is not in {bands}.")
    f1 = float(img[bands.index(colour[0])][m].sum())
    f2 = float(img[bands.index(colour[1])][m].sum())
    return -2.5 * math.log10(f1 / f2) if f1 > 0 and f2 > 0 else float("nan")


def einstein_radius_from_points(points, bcg=(0.0, 0.0)) -> float:
    """Einstein radius (arcsec) as the paper measures it: mean distance of arc points to the BCG.

    Parameters
    ----------
    points : array_like, shape (n, 2)
        ``(x, y)`` arcsec of points a grader marked along the arcs (cutout-centred frame).
    bcg : (float, float)
        BCG position in the same frame (the cutout centre by default).
    """
    points = as_value(points, "arcsec", "points", "einstein_radius_from_points")
    bcg = as_value(bcg, "arcsec", "bcg", "einstein_radius_from_points")
    p = check_array(points, "points", "einstein_radius_from_points", ndim=2)
    if p.shape[1] != 2 or p.shape[0] == 0:
        raise ParameterError(
            "The 'points' parameter of einstein_radius_from_points must have shape (n, 2) with "
            f"n >= 1. Got {p.shape}."
        )
    c = check_array(bcg, "bcg", "einstein_radius_from_points", ndim=1)
    return float(np.hypot(p[:, 0] - c[0], p[:, 1] - c[1]).mean())
