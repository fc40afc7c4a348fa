"""Background sources: the Sérsic light profile, structured (clumpy) sources, their
rendering on ray-traced grids, the colours of star-forming SEDs in g, r, z, and populations of
sources to draw from (the realistic default, the paper's Table 1, or a user's own catalog)."""

from clusterlens.sources.population import (
    COLOUR_CLASSES,
    CatalogSourcePopulation,
    DrawnSource,
    SmailRedshift,
    SourcePopulation,
    SourcePopulationConfig,
    TruncatedLogNormal,
    TruncatedNormal,
    Uniform,
)
from clusterlens.sources.sed import PASSBANDS, igm_transmission, sed_colours, sed_fnu
from clusterlens.sources.sersic import (
    BANDS,
    Sersic,
    StructuredSource,
    render_sersic,
    render_sersic_adaptive,
    sersic_b,
)

__all__ = [
    "BANDS",
    "Sersic",
    "StructuredSource",
    "sersic_b",
    "render_sersic",
    "render_sersic_adaptive",
    "SourcePopulation",
    "SourcePopulationConfig",
    "CatalogSourcePopulation",
    "DrawnSource",
    "COLOUR_CLASSES",
    "Uniform",
    "TruncatedNormal",
    "TruncatedLogNormal",
    "SmailRedshift",
    "PASSBANDS",
    "igm_transmission",
    "sed_fnu",
    "sed_colours",
]
