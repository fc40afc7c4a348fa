"""Where the clusters of a mock dataset come from: the built-in synthetic sky or a catalog.

A *sky* answers ``draw(rng, role) -> ClusterScene``: ``role`` is ``"lens"`` for a cluster
that will get an arc and ``"non-lens"`` for an untouched negative.  The synthetic sky draws
a new cluster field for every call; :class:`CatalogSky` splits a catalog's clusters into two
disjoint pools so that negatives are *other* clusters, as in the paper.

The synthetic sky paints confusers (``clusterlens.confusers``: spirals, edge-on discs, rings,
mergers, arc-like blue galaxies, bright stars, masked patches) on any field with probability
``config.sky.confuser_rate``, and makes a fraction ``config.sky.hard_negative_fraction`` of
its negatives *hard negatives* with at least one arc-like confuser on top.  Its scenes are
:class:`SkyScene` objects whose :attr:`SkyScene.sky_params` (``sky_hard_negative``,
``sky_confusers``, ``sky_n_<kind>``) say what was painted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
from astropy.cosmology import FlatLambdaCDM

from clusterlens.confusers import CONFUSER_KINDS
from clusterlens.errors import ParameterError
from clusterlens.fields import FieldConfig, SyntheticClusterField
from clusterlens.mock.config import MockConfig
from clusterlens.mock.simulator import ClusterScene
from clusterlens.observe import SurveyConditions

__all__ = ["SyntheticSky", "SkyScene", "CatalogSky", "synthetic_scene", "sky_params", "ROLES"]

ROLES = ("lens", "non-lens")


def _check_role(role):
    if role not in ROLES:
        raise ParameterError(f"The 'role' parameter must be one of {ROLES}. Got {role!r}.")


@dataclass(frozen=True)
class SkyScene(ClusterScene):
    """A :class:`ClusterScene` of the synthetic sky, with what its field holds.

    Attributes
    ----------
    sky_params : dict
        Flat scalars for a dataset's parameter table (:func:`sky_params`).
    """

    sky_params: dict = field(default_factory=dict)


def sky_params(fld) -> dict:
    """The record of a :class:`~clusterlens.fields.SyntheticField`'s content: whether it is a
    hard negative (``sky_hard_negative``), the kinds of its confusers joined by commas
    (``sky_confusers``, "" for none), their number (``sky_n_confusers``) and one count per
    kind (``sky_n_spiral``, ...), with the BCG's ``sky_icl_fraction`` (0 without ICL) and the
    number of blue members ``sky_n_blue_members``."""
    counts = fld.confuser_counts()
    meta = fld.members.meta
    out = {
        "sky_hard_negative": bool(fld.hard_negative),
        "sky_confusers": ",".join(c.kind for c in fld.confusers),
        "sky_n_confusers": len(fld.confusers),
        **{f"sky_n_{k}": int(counts[k]) for k in CONFUSER_KINDS},
        "sky_icl_fraction": float(meta.get("icl_fraction", 0.0)),
        "sky_n_blue_members": int(np.sum(fld.members["is_blue"])),
    }
    return out


def _simulated_size(config: MockConfig) -> int:
    return config.image.crop_size + 2 * config.psf_margin


def synthetic_scene(
    config: MockConfig | None = None,
    *,
    z_lens,
    m500,
    seed=None,
    size=None,
    field_config: FieldConfig | None = None,
    cosmology=None,
    conditions: SurveyConditions | None = None,
    hard_negative: bool = False,
    confusers=None,
    trim: int = 0,
) -> SkyScene:
    """A :class:`ClusterScene` from a :class:`~clusterlens.fields.SyntheticClusterField`.

    Parameters
    ----------
    config : MockConfig, optional
        Sets the survey conditions and, unless ``size`` is given, the size: the final crop
        plus the PSF margin (pixels further out would be cut away, so they are not drawn).
    z_lens : float
        Cluster redshift.
    m500 : float
        M500c [Msun].
    seed : numpy.random.Generator, int or None
    size : int, optional
        Cutout side [pixels].
    conditions : SurveyConditions, optional
        The field's PSFs and depth; default: one draw of ``config.observation``
        (:meth:`~clusterlens.observe.ConditionsDistribution.draw`) from ``seed``'s stream,
        before the field.  The field's galaxies, stars and noise and the scene's arc get them.
    field_config : FieldConfig, optional
        The field's content; default ``config.sky``.
    hard_negative : bool
        Draw the field as a hard negative (confusers on top of the base rate).
    confusers : sequence of str, optional
        Paint exactly these confuser kinds instead of drawing them.
    trim : int
        Pixels cut from each side of the scene's image [pixels]: the field is drawn and
        convolved at ``size`` and its centred ``size - 2 trim`` square kept
        (:meth:`~clusterlens.fields.SyntheticClusterField.draw`).  :class:`SyntheticSky`
        trims the PSF margin, which the simulator would crop away.
    """
    config = MockConfig() if config is None else config
    size = _simulated_size(config) if size is None else size
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if conditions is None:
        conditions = config.observation.draw(rng)
    elif not isinstance(conditions, SurveyConditions):
        raise ParameterError(
            "The 'conditions' parameter of synthetic_scene must be a SurveyConditions. "
            f"Got {type(conditions).__name__} instead."
        )
    fld = SyntheticClusterField(
        redshift=z_lens,
        m500=m500,
        size=size,
        conditions=conditions,
        config=config.sky if field_config is None else field_config,
        cosmology=cosmology,
    )._draw(rng, hard_negative=hard_negative, confusers=confusers, trim=trim)  # no Tables
    base = ClusterScene.from_members_table(
        fld.image, fld.members, z_lens=z_lens, m500=m500, conditions=conditions
    )
    # every field of the base scene, whatever the simulator's ClusterScene holds
    inherited = {f.name: getattr(base, f.name) for f in fields(ClusterScene) if f.init}
    return SkyScene(**inherited, sky_params=sky_params(fld))


class SyntheticSky:
    """The built-in sky: clusters with log10 M500 and z uniform in ``config.clusters``.

    Every field gets its own observing conditions, drawn from ``config.observation``
    (:class:`~clusterlens.observe.ConditionsDistribution`): its galaxies, stars, noise and
    arc share them.

    Each field is drawn at the simulated size (final crop plus PSF margin): the pixels of a
    371-pixel cutout outside it would be cropped away.  Only members inside that box carry
    mass (members further out add a little shear; real catalogs give all of them).  The
    scenes' images are the final crop: the margin's light is in them (drawn and convolved),
    its own pixels, which the simulator crops away, are not returned.

    Every field carries confusers with probability ``sky.confuser_rate``; a negative is
    made a hard negative (confusers on top, at least one arc-like) with probability
    ``sky.hard_negative_fraction``, so a network can learn neither "confuser => non-lens"
    nor "no confuser => lens".

    Parameters
    ----------
    config : MockConfig
    field_config : FieldConfig, optional
        The fields' content; default ``config.sky``.
    cosmology : astropy.cosmology.Cosmology, optional
    """

    def __init__(self, config: MockConfig | None = None, *, field_config=None, cosmology=None):
        self.config = MockConfig() if config is None else config
        self.field_config = self.config.sky if field_config is None else field_config
        if not isinstance(self.field_config, FieldConfig):
            raise ParameterError(
                "The 'field_config' parameter of SyntheticSky must be a FieldConfig. "
                f"Got {type(self.field_config).__name__} instead."
            )
        # one cosmology object: building a FlatLambdaCDM costs ~70 ms
        self.cosmology = FlatLambdaCDM(H0=70.0, Om0=0.3) if cosmology is None else cosmology
        self.size = _simulated_size(self.config)

    def draw(self, rng: np.random.Generator, role: str = "lens") -> SkyScene:
        """A new cluster; a ``"non-lens"`` one is a hard negative with probability
        ``sky.hard_negative_fraction``."""
        _check_role(role)
        c = self.config.clusters
        log_m = float(rng.uniform(*c.log_m500_range))
        z = float(rng.uniform(*c.redshift_range))
        hnf = self.field_config.hard_negative_fraction
        # no draw when off, so that the paper preset's stream is unchanged
        hard = role == "non-lens" and hnf > 0 and bool(rng.uniform() < hnf)
        return synthetic_scene(
            self.config,
            z_lens=z,
            m500=10.0**log_m,
            seed=rng,
            size=self.size,
            field_config=self.field_config,
            cosmology=self.cosmology,
            hard_negative=hard,
            trim=self.config.psf_margin,
        )

    def __repr__(self) -> str:
        return f"SyntheticSky(clusters={self.config.clusters})"


class CatalogSky:
    """Clusters from a catalog, cutouts from a :class:`~clusterlens.survey.CutoutSource`.

    Clusters are split into two disjoint pools by their position in ``clusters`` (even rows
    for lenses, odd rows for non-lenses), so that negatives are other clusters than the
    lensed ones.

    Parameters
    ----------
    cutouts : clusterlens.survey.CutoutSource
        ``get(ra, dec, size, bands, cluster_id=...) -> (image, header)``.
    clusters : astropy.table.Table
        Canonical cluster catalog (:func:`clusterlens.survey.read_cluster_catalog`: needs
        ``cluster_id, ra, dec, z, m500``).
    members : astropy.table.Table
        Canonical member catalog (:func:`clusterlens.survey.read_member_catalog`).
    config : MockConfig
        Cutout size (``image.cutout_size``) and ``observation`` (pixel scale, PSF model,
        fallback medians).
    measure : bool
        Give every scene the conditions of its cutout
        (:func:`~clusterlens.observe.measure_conditions`: the PSF FWHM from the cluster
        table's ``psfsize_g/r/z`` columns where present, else from the cutout's stars, else
        the median of DECaLS, or of BASS/MzLS north of Dec 32.375 deg; the noise measured on
        the cutout), cached per cluster.  ``False``: the simulator's nominal conditions.
    """

    def __init__(
        self, cutouts, clusters, members, config: MockConfig | None = None, *, measure=True
    ):
        if not hasattr(cutouts, "get"):
            raise ParameterError(
                "The 'cutouts' parameter of CatalogSky must be a CutoutSource (with get). "
                f"Got {type(cutouts).__name__} instead."
            )
        for name in ("cluster_id", "ra", "dec", "z", "m500"):
            if name not in clusters.colnames:
                raise ParameterError(
                    f"The 'clusters' table of CatalogSky lacks the column {name!r} (read it "
                    "with clusterlens.survey.read_cluster_catalog)."
                )
        if len(clusters) < 2:
            raise ParameterError(
                "The 'clusters' table of CatalogSky needs at least 2 clusters (lenses and "
                f"non-lenses are different clusters). Got {len(clusters)}."
            )
        self.cutouts, self.clusters, self.members = cutouts, clusters, members
        self.config = MockConfig() if config is None else config
        n = len(clusters)
        self._pools = {"lens": np.arange(0, n, 2), "non-lens": np.arange(1, n, 2)}
        self.measure = bool(measure)
        self._conditions: dict = {}
        self.records: dict = {}
        """Per catalog row: where its PSF and noise came from (``measure_conditions``)."""

    def _scene_conditions(self, index, row, image):
        if not self.measure:
            return None
        if index not in self._conditions:
            from clusterlens.observe import measure_conditions

            # the DR9 boundary: DECaLS south of Dec 32.375 deg, BASS/MzLS north of it
            survey = "bass_mzls" if float(row["dec"]) > 32.375 else "decals"
            cond, record = measure_conditions(
                image, row=row, distribution=self.config.observation, survey=survey
            )
            self._conditions[index] = cond
            self.records[index] = record
        return self._conditions[index]

    def scene(self, index: int) -> ClusterScene:
        """The scene of catalog row ``index``."""
        from clusterlens.survey.members import cluster_inputs

        row = self.clusters[int(index)]
        size = self.config.image.cutout_size
        half_diag = math.sqrt(2.0) * 0.5 * size * self.config.observation.pixel_scale
        inputs = cluster_inputs(row, self.members, max_radius=half_diag)
        image, _ = self.cutouts.get(
            float(row["ra"]), float(row["dec"]), size, "grz", cluster_id=row["cluster_id"]
        )
        image = np.asarray(image)
        if image.shape != (3, size, size):
            raise ParameterError(
                f"The cutout of cluster {row['cluster_id']!r} has shape {image.shape}; the "
                f"configuration expects (3, {size}, {size}) (image.cutout_size, bands g, r, z)."
            )
        m500 = float(row["m500"])
        if not math.isfinite(m500):
            raise ParameterError(f"Cluster {row['cluster_id']!r} has no M500 (NaN) in the catalog.")
        return ClusterScene.from_inputs(
            inputs, image, m500=m500, conditions=self._scene_conditions(int(index), row, image)
        )

    def draw(self, rng: np.random.Generator, role: str = "lens") -> ClusterScene:
        """A random cluster of the ``role``'s pool."""
        _check_role(role)
        pool = self._pools[role]
        return self.scene(int(pool[rng.integers(pool.size)]))

    def __repr__(self) -> str:
        return f"CatalogSky({len(self.clusters)} clusters)"
