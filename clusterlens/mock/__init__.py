"""Mock cluster lenses at scale: the simulator, synthetic and catalog skies, datasets, plots.

See ``docs/mock.md``.  The paper's section 2.2 and Table 1 (Zhang et al.) are the defaults.
"""

from clusterlens.mock.config import (
    BCGConfig,
    ClusterSamplingConfig,
    HaloConfig,
    ImageConfig,
    MembersConfig,
    MockConfig,
    PlacementConfig,
    SelectionConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    preset_config,
)
from clusterlens.mock.dataset import acceptance_summary, image_rng, make_image, simulate_dataset
from clusterlens.mock.plots import FIGURE2_COLUMNS, plot_mock, plot_parameter_distributions
from clusterlens.mock.presets import PRESETS
from clusterlens.mock.simulator import (
    ClusterScene,
    LensMaps,
    LensRejected,
    MockLensSimulator,
    MockResult,
    mass_budget,
)
from clusterlens.mock.sky import CatalogSky, SyntheticSky, synthetic_scene

__all__ = [
    "PRESETS",
    "preset_config",
    "BCGConfig",
    "ClusterSamplingConfig",
    "HaloConfig",
    "ImageConfig",
    "MembersConfig",
    "MockConfig",
    "PlacementConfig",
    "SelectionConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "ClusterScene",
    "LensMaps",
    "LensRejected",
    "MockLensSimulator",
    "MockResult",
    "mass_budget",
    "CatalogSky",
    "SyntheticSky",
    "synthetic_scene",
    "image_rng",
    "make_image",
    "simulate_dataset",
    "acceptance_summary",
    "FIGURE2_COLUMNS",
    "plot_mock",
    "plot_parameter_distributions",
]
