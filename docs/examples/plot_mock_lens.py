"""
A mock lens and its arc
=======================

One positive of the training set, drawn as the paper's Figure 1: a synthetic cluster (BCG at
z = 0.3, M500 = 6e14 Msun, its member galaxies and their light), a Sérsic source lensed by
the cluster's mass model where the magnification is high, observed with the survey's PSF and
noise, and added to the cutout. Left the cluster, middle the noiseless arc with the critical
curves (red), caustics (green), members (orange) and source (cyan), right the mock (g, r, z
in the Legacy Surveys' colours).
"""

import matplotlib.pyplot as plt

from clusterlens.mock import ImageConfig, MockConfig, MockLensSimulator, plot_mock, synthetic_scene

# Table 1 defaults on a smaller crop, so that this runs in seconds (the paper: 223 pixels)
config = MockConfig(image=ImageConfig(cutout_size=161, crop_size=131))
simulator = MockLensSimulator(config)
scene = synthetic_scene(config, z_lens=0.3, m500=6e14, seed=1)
mock = simulator.simulate(scene, seed=2)

p = mock.params
print(f"image {mock.image.shape} (bands, y, x) in nanomaggies")
print(
    f"theta_E = {p['einstein_radius']:.1f} arcsec, z_s = {p['source_redshift']:.2f}, "
    f"magnification {p['magnification']:.1f}, arc S/N = {p['arc_snr']:.0f}"
)

plot_mock(mock, fig=plt.figure(figsize=(12, 4.2)))
