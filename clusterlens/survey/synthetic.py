"""The built-in synthetic sky behind the :class:`~clusterlens.survey.cutouts.CutoutSource`
interface, so that every stage that reads survey cutouts (bulk fetching, scoring, the
inspection app) also runs where no survey is at hand.

Each object's field is drawn by :class:`clusterlens.fields.SyntheticClusterField` from its
catalog redshift and M500, with a seed derived from the source's seed and the object's id
(or, without an id, its position), so the same object always gives the same image.  The
fields' content (BCG, ICL, members, confusers at ``FieldConfig.confuser_rate``) is that of
the ``[sky]`` table (:class:`clusterlens.fields.FieldConfig`); a cutout source has no labels,
so it draws no hard negatives.
"""

from __future__ import annotations

import hashlib

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from clusterlens._validation import check_int, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.fields import FieldConfig, SyntheticClusterField
from clusterlens.observe import SurveyConditions
from clusterlens.survey.cutouts import (
    CutoutError,
    CutoutSource,
    check_bands,
    check_size,
    validate_cutout,
)

__all__ = ["SyntheticCutouts"]

_FIELD_BANDS = ("g", "r", "z")


class SyntheticCutouts(CutoutSource):
    """Synthetic cluster cutouts, one per catalog object, in nanomaggies.

    Parameters
    ----------
    catalog : astropy.table.Table, optional
        Clusters with columns ``cluster_id``, ``z`` and ``m500`` [Msun] (as
        :func:`~clusterlens.survey.read_cluster_catalog` returns them). A cutout asked for by
        ``cluster_id`` takes that row's redshift and mass; without a catalog, or for an id it
        does not hold, the defaults below are used.
    seed : int
        Seed of the whole synthetic sky; each object's image depends only on it and on the
        object's id (or position).
    redshift, m500 : float
        Cluster redshift and M500 [Msun] for objects without a catalog row.
    conditions : SurveyConditions, optional
        Pixel scale, PSFs and depths (the Legacy Surveys' by default).
    field_config : FieldConfig, optional
        The fields' content (default: the realistic sky).  The header's ``CONFUSE`` card
        lists the confusers painted.

    Examples
    --------
    >>> source = SyntheticCutouts(seed=1)
    >>> image, header = source.get(150.0, 2.0, 101, "grz", cluster_id="demo-1")
    >>> image.shape, header["BANDS"]
    ((3, 101, 101), 'grz')
    """

    def __init__(
        self,
        catalog=None,
        *,
        seed: int = 0,
        redshift: float = 0.3,
        m500: float = 3e14,
        conditions: SurveyConditions | None = None,
        field_config: FieldConfig | None = None,
    ):
        owner = "SyntheticCutouts"
        self.seed = check_int(seed, "seed", owner, low=0)
        self.redshift = check_scalar(redshift, "redshift", owner, low=0.02, high=1.5)
        self.m500 = check_scalar(m500, "m500", owner, low=0.0, low_inclusive=False)
        self.conditions = conditions if conditions is not None else SurveyConditions()
        self.pixel_scale = self.conditions.pixel_scale
        self.field_config = FieldConfig() if field_config is None else field_config
        if not isinstance(self.field_config, FieldConfig):
            raise ParameterError(
                f"The 'field_config' parameter of {owner} must be a FieldConfig. "
                f"Got {type(self.field_config).__name__} instead."
            )
        self._rows: dict[str, tuple[float, float]] = {}
        if catalog is not None:
            missing = {"cluster_id", "z", "m500"} - set(catalog.colnames)
            if missing:
                raise ParameterError(
                    f"The 'catalog' parameter of {owner} must have the columns cluster_id, z "
                    f"and m500. Missing: {', '.join(sorted(missing))}."
                )
            for row in catalog:
                self._rows[str(row["cluster_id"])] = (float(row["z"]), float(row["m500"]))

    def _object_seed(self, ra: float, dec: float, cluster_id) -> np.random.SeedSequence:
        key = f"id:{cluster_id}" if cluster_id is not None else f"pos:{ra:.7f},{dec:.7f}"
        digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        return np.random.SeedSequence([self.seed, digest])

    def get(
        self, ra: float, dec: float, size: int, bands="grz", *, cluster_id=None
    ) -> tuple[np.ndarray, fits.Header]:
        """The synthetic cutout of the object at (ra, dec) [deg], ``size`` pixels a side."""
        owner = "SyntheticCutouts.get"
        bands = check_bands(bands, owner)
        size = check_size(size, owner)
        ra = check_scalar(ra, "ra", owner, low=0.0, high=360.0)
        dec = check_scalar(dec, "dec", owner, low=-90.0, high=90.0)
        unknown = [b for b in bands if b not in _FIELD_BANDS]
        if unknown:
            raise CutoutError(
                f"SyntheticCutouts draws the bands g, r, z only; {', '.join(unknown)} asked for."
            )
        z, m500 = self._rows.get(str(cluster_id), (self.redshift, self.m500))
        rng = np.random.default_rng(self._object_seed(ra, dec, cluster_id))
        field = SyntheticClusterField(
            redshift=z, m500=m500, size=size, conditions=self.conditions, config=self.field_config
        ).draw(rng)
        image = field.image[[_FIELD_BANDS.index(b) for b in bands]]

        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [ra, dec]
        wcs.wcs.crpix = [(size + 1) / 2.0, (size + 1) / 2.0]
        scale_deg = self.pixel_scale / 3600.0
        wcs.wcs.cd = [[-scale_deg, 0.0], [0.0, scale_deg]]  # north up, east left
        header = wcs.to_header()
        header["SYNTHET"] = (True, "synthetic field (clusterlens.fields)")
        header["CLUSTZ"] = (z, "cluster redshift of the synthetic field")
        header["M500"] = (m500, "[Msun] cluster M500")
        kinds = ",".join(c.kind for c in field.confusers)
        header["CONFUSE"] = (kinds[:60], "confusers painted (clusterlens.confusers)")
        image, header, _ = validate_cutout(
            image, header, size=size, bands=bands, where=f"synthetic cutout of {cluster_id!r}"
        )
        return image, header
