"""
A training set: its parameters and how real its lenses look
===========================================================

A small training set on the built-in synthetic sky (half mock lenses, half untouched
clusters), then the two checks of its realism: the distributions of the lenses' parameters
(the paper's Figure 2) and the realism report's figure, each quantity of the mock arcs
(Einstein radius, arc length and width, colours, S/N...) against the published candidates'
16-84% range (red band, for the quantities the catalog has). The paper's training set has
100,000 images; 24 are enough to show the figures, not to judge the distributions.
"""

import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from clusterlens.mock import ImageConfig, MockConfig, plot_parameter_distributions, simulate_dataset
from clusterlens.mock.report import plot_realism

config = MockConfig(image=ImageConfig(cutout_size=161, crop_size=131))
folder = Path(tempfile.mkdtemp())  # the dataset is written to disk (Zarr + Parquet)
dataset = simulate_dataset(folder / "train", 24, config, seed=7, workers=0, progress=False)
print(f"{len(dataset)} images, {int(dataset.labels.sum())} lenses")
lenses = dataset.params[dataset.labels == 1]
for row in lenses[:4]:
    print(
        f"theta_E = {row['einstein_radius']:4.1f} arcsec, z_s = {row['source_redshift']:.2f}, "
        f"arc S/N = {row['arc_snr']:.0f}"
    )

# %%
# The lenses' parameters (Figure 2)
# ---------------------------------

plot_parameter_distributions(dataset.params, fig=plt.figure(figsize=(12, 6)))

# %%
# The realism figure
# ------------------

plot_realism(dataset.params, fig=plt.figure(figsize=(13, 8)))
shutil.rmtree(folder)  # the figures are drawn: the dataset on disk is no longer needed
