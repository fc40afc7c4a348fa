"""From a cluster row and its member galaxies to the mass model's inputs.

Image-plane convention (the one of every clusterlens image)
-----------------------------------------------------------
Cutouts are north-up, east-left, with a TAN projection centred on the BCG. In the numpy
array ``image[band, row, col]`` (FITS order), the column index grows to the **west** and the
row index grows to the **north** (row 0 is the southern edge: display with
``origin="lower"``). clusterlens's image-plane coordinates, in arcsec, with the origin at
the cutout centre (the BCG), are therefore::

    x = -(offset to the east)  = -dRA cos(Dec)   (in the small-angle limit)
    y = +(offset to the north) = +dDec

computed exactly as the gnomonic (tangent-plane) offsets of
:meth:`astropy.coordinates.SkyCoord.spherical_offsets_to`.

A position angle measured east of north (``pa``, the astronomers' convention) becomes the
clusterlens angle ``phi`` (deg, counter-clockwise from +x) as ``phi = pa + 90`` (mod 180):
north (pa = 0) points along +y (phi = 90), east (pa = 90) along -x (phi = 180).
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Row, Table

from clusterlens._validation import check_array, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.survey.catalogs import CatalogError

__all__ = [
    "sky_to_image",
    "pa_to_phi",
    "phi_to_pa",
    "ClusterInputs",
    "cluster_inputs",
]


def sky_to_image(ra, dec, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Image-plane offsets (arcsec) of sky positions from a centre, north-up east-left.

    Parameters
    ----------
    ra, dec : array_like
        Positions [deg].
    ra0, dec0 : float
        The centre (the cutout centre, usually the BCG) [deg].

    Returns
    -------
    x, y : ndarray
        ``x = -east offset`` (grows with the column index), ``y = north offset`` (grows
        with the row index), both in arcsec, tangent-plane (gnomonic) offsets.
    """
    ra = check_array(ra, "ra", "sky_to_image")
    dec = check_array(dec, "dec", "sky_to_image", low=-90, high=90)
    ra0 = check_scalar(ra0, "ra0", "sky_to_image")
    dec0 = check_scalar(dec0, "dec0", "sky_to_image", low=-90, high=90)
    centre = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    east, north = centre.spherical_offsets_to(SkyCoord(ra * u.deg, dec * u.deg))
    return -east.to_value(u.arcsec), north.to_value(u.arcsec)


def pa_to_phi(pa) -> float | np.ndarray:
    """Position angle east of north [deg] -> clusterlens angle CCW from +x [deg, 0-180)."""
    return np.mod(np.asarray(pa, dtype=np.float64) + 90.0, 180.0)


def phi_to_pa(phi) -> float | np.ndarray:
    """clusterlens angle CCW from +x [deg] -> position angle east of north [deg, 0-180)."""
    return np.mod(np.asarray(phi, dtype=np.float64) - 90.0, 180.0)


@dataclass(frozen=True)
class ClusterInputs:
    """Everything the mass model of one cluster needs, as plain numbers and arrays.

    The halo goes into ``ENFW.from_m500(m500, z_lens, z_source, q, phi, ...)`` (the halo's
    own q and phi are not in the catalogs: draw them), the members into
    ``SIEPopulation.from_stellar_masses(...)`` via :meth:`members_kwargs`.

    Attributes
    ----------
    cluster_id : int or str
    ra, dec : float
        Cutout centre (the BCG) [deg].
    z_lens : float
        Cluster (BCG) photometric redshift.
    m500 : float
        Halo mass inside R500 [Msun, no h]; NaN when the catalog has none.
    r500 : float
        R500 [physical Mpc]; NaN when the catalog has none.
    x, y : ndarray
        Member positions [arcsec] in the image plane (see the module docstring).
    stellar_mass : ndarray
        Member stellar masses [Msun].
    q : ndarray
        Member axis ratios b/a in (0, 1].
    phi : ndarray
        Member major-axis angles [deg, CCW from +x].
    z_members : ndarray
        Member photometric redshifts.
    """

    cluster_id: object
    ra: float
    dec: float
    z_lens: float
    m500: float
    r500: float
    x: np.ndarray
    y: np.ndarray
    stellar_mass: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    z_members: np.ndarray

    def __post_init__(self):
        n = len(self.x)
        for name in ("y", "stellar_mass", "q", "phi", "z_members"):
            if len(getattr(self, name)) != n:
                raise ParameterError(
                    f"The {name!r} parameter of ClusterInputs must have the length of 'x' "
                    f"({n}). Got {len(getattr(self, name))} instead."
                )

    @property
    def n_members(self) -> int:
        """Number of member galaxies."""
        return len(self.x)

    def halo_kwargs(self) -> dict:
        """``{"m500": ..., "z_lens": ...}`` for ``ENFW.from_m500``."""
        return {"m500": self.m500, "z_lens": self.z_lens}

    def members_kwargs(self) -> dict:
        """``stellar_mass, x0, y0, q, phi, z_lens``: the keyword arguments of
        ``SIEPopulation.from_stellar_masses`` but the source redshift, which the caller
        chooses (``from_stellar_masses(**inputs.members_kwargs(), z_source=2.0)``)."""
        return {
            "x0": self.x,
            "y0": self.y,
            "stellar_mass": self.stellar_mass,
            "q": self.q,
            "phi": self.phi,
            "z_lens": self.z_lens,
        }

    def members_table(self) -> Table:
        """The members as a Table (``x, y`` [arcsec], ``stellar_mass`` [Msun], ``q``,
        ``phi`` [deg], ``z``)."""
        t = Table(
            {
                "x": self.x * u.arcsec,
                "y": self.y * u.arcsec,
                "stellar_mass": self.stellar_mass * u.Msun,
                "q": self.q,
                "phi": self.phi * u.deg,
                "z": self.z_members,
            }
        )
        t.meta["cluster_id"] = self.cluster_id
        return t


def cluster_inputs(
    cluster: Row,
    members: Table,
    *,
    max_radius: float | None = None,
    exclude_bcg: bool = False,
    bcg_tolerance: float = 0.5,
) -> ClusterInputs:
    """Turn one canonical cluster row and its members into the mass model's inputs.

    Parameters
    ----------
    cluster : astropy.table.Row
        A row of :func:`~clusterlens.survey.read_cluster_catalog`'s output.
    members : Table
        Canonical member catalog (:func:`~clusterlens.survey.read_member_catalog`); only the
        rows whose ``cluster_id`` equals the cluster's are used, so the whole member
        catalog can be passed.
    max_radius : float, optional
        Keep only members within this distance of the centre [arcsec] (e.g. the cutout's
        half-diagonal).
    exclude_bcg : bool
        Drop the member at the centre (within ``bcg_tolerance`` arcsec), for models that
        treat the BCG separately.
    bcg_tolerance : float
        [arcsec], see ``exclude_bcg``.

    Returns
    -------
    ClusterInputs
    """
    if not isinstance(cluster, Row):
        raise ParameterError(
            "The 'cluster' parameter of cluster_inputs must be an astropy Table Row. "
            f"Got {type(cluster).__name__} instead."
        )
    for name in ("cluster_id", "ra", "dec", "z"):
        if name not in cluster.colnames:
            raise CatalogError(
                f"The cluster row lacks the canonical column {name!r}; read the catalog with "
                "read_cluster_catalog."
            )
    for name in ("cluster_id", "ra", "dec", "z", "stellar_mass", "q", "pa"):
        if name not in members.colnames:
            raise CatalogError(
                f"The member table lacks the canonical column {name!r}; read it with "
                "read_member_catalog."
            )
    cid = cluster["cluster_id"]
    sel = members[np.asarray(members["cluster_id"]) == cid]
    ra0, dec0 = float(cluster["ra"]), float(cluster["dec"])
    x, y = sky_to_image(np.asarray(sel["ra"]), np.asarray(sel["dec"]), ra0, dec0)
    keep = np.ones(len(sel), dtype=bool)
    r = np.hypot(x, y)
    if max_radius is not None:
        keep &= r <= check_scalar(max_radius, "max_radius", "cluster_inputs", low=0)
    if exclude_bcg:
        keep &= r > check_scalar(bcg_tolerance, "bcg_tolerance", "cluster_inputs", low=0)

    def col(name):
        return np.asarray(sel[name], dtype=np.float64)[keep]

    return ClusterInputs(
        cluster_id=cid.item() if hasattr(cid, "item") else cid,
        ra=ra0,
        dec=dec0,
        z_lens=float(cluster["z"]),
        m500=float(cluster["m500"]) if "m500" in cluster.colnames else float("nan"),
        r500=float(cluster["r500"]) if "r500" in cluster.colnames else float("nan"),
        x=x[keep],
        y=y[keep],
        stellar_mass=col("stellar_mass"),
        q=col("q"),
        phi=pa_to_phi(col("pa")),
        z_members=col("z"),
    )
