"""Background sources: the Sérsic light profile, its rendering on ray-traced grids, and
populations of sources to draw from (the paper's Table 1, or a user's own catalog)."""

from clusterlens.sources.population import (
    COLOUR_CLASSES,
    CatalogSourcePopulation,
    DrawnSource,
    SourcePopulation,
    SourcePopulationConfig,
    TruncatedLogNormal,
    TruncatedNormal,
    Uniform,
)
from clusterlens.sources.sersic import (
    BANDS,
    Sersic,
    render_sersic,
    render_sersic_adaptive,
    sersic_b,
)

__all__ = [
    "BANDS",
    "Sersic",
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
]
