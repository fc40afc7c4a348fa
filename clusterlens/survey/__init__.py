"""Survey data: cluster catalogs, cutouts, cross-matching and colour composites.

* :mod:`~clusterlens.survey.catalogs`: read cluster and member catalogs (Zou et al. 2021
  by default, any format through a column mapping) and the Zhang et al. candidates;
* :mod:`~clusterlens.survey.members`: sky -> image-plane offsets and the mass model's inputs;
* :mod:`~clusterlens.survey.crossmatch`: matched / new / missed objects between catalogs;
* :mod:`~clusterlens.survey.cutouts`: the :class:`CutoutSource` interface, validation,
  cutouts on disk; :mod:`~clusterlens.survey.legacy`: the Legacy Surveys cutout service;
* :mod:`~clusterlens.survey.synthetic`: the built-in synthetic sky as a cutout source;
* :mod:`~clusterlens.survey.fetch`: resumable bulk fetching of a catalog's cutouts;
* :mod:`~clusterlens.survey.rgb`: g, r, z colour images, PNGs and galleries.
"""

from clusterlens.survey.catalogs import (
    ZHANG2026_CANDIDATES,
    ZOU2021_CLUSTERS,
    ZOU2021_MEMBERS,
    CatalogError,
    ClusterColumns,
    MemberColumns,
    read_cluster_catalog,
    read_member_catalog,
    read_table,
    read_zhang2026_candidates,
    write_table,
)
from clusterlens.survey.crossmatch import CrossmatchResult, crossmatch
from clusterlens.survey.cutouts import (
    PIXEL_SCALE,
    CutoutError,
    CutoutSource,
    FitsDirectoryCutouts,
    IncompleteFitsError,
    read_cutout_fits,
    validate_cutout,
    write_cutout_fits,
)
from clusterlens.survey.fetch import FetchSummary, fetch_cutouts
from clusterlens.survey.legacy import DEFAULT_BASE_URL, LAYERS, LegacySurveyCutouts
from clusterlens.survey.members import (
    ClusterInputs,
    cluster_inputs,
    pa_to_phi,
    phi_to_pa,
    sky_to_image,
)
from clusterlens.survey.rgb import LEGACY_SCALES, gallery, make_rgb, save_png
from clusterlens.survey.synthetic import SyntheticCutouts

__all__ = [
    "SyntheticCutouts",
    "CatalogError",
    "ClusterColumns",
    "MemberColumns",
    "ZOU2021_CLUSTERS",
    "ZOU2021_MEMBERS",
    "ZHANG2026_CANDIDATES",
    "read_table",
    "write_table",
    "read_cluster_catalog",
    "read_member_catalog",
    "read_zhang2026_candidates",
    "ClusterInputs",
    "cluster_inputs",
    "sky_to_image",
    "pa_to_phi",
    "phi_to_pa",
    "CrossmatchResult",
    "crossmatch",
    "PIXEL_SCALE",
    "CutoutError",
    "CutoutSource",
    "FitsDirectoryCutouts",
    "IncompleteFitsError",
    "validate_cutout",
    "read_cutout_fits",
    "write_cutout_fits",
    "LegacySurveyCutouts",
    "LAYERS",
    "DEFAULT_BASE_URL",
    "FetchSummary",
    "fetch_cutouts",
    "LEGACY_SCALES",
    "make_rgb",
    "save_png",
    "gallery",
]
