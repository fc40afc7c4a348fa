"""
A cluster's convergence, critical curves and caustics
=====================================================

The mass model of a galaxy cluster built as the paper builds it from a catalog entry: an
elliptical NFW halo from M500 = 6e14 Msun at z = 0.35, plus 30 member galaxies as SIEs whose
Einstein radii follow from their stellar masses, for a source plane at z = 2. The map is the
paper's 100 arcsec field (Figure 1, middle panel): convergence on a log stretch, tangential
and radial critical curves (red), caustics (green), members (orange crosses).
"""

import numpy as np

from clusterlens.lensing import critical_curves, einstein_radius
from clusterlens.plotting import plot_lens_maps
from clusterlens.profiles import ENFW, SIEPopulation

z_lens, z_source = 0.35, 2.0
halo = ENFW.from_m500(6e14, z_lens, z_source, q=0.75, phi=35.0)

# members, more concentrated towards the centre (arcsec from the BCG), BCG at the centre
rng = np.random.default_rng(1)
n = 30
radius = 40.0 * rng.uniform(0, 1, n) ** 0.8
angle = rng.uniform(0, 2 * np.pi, n)
x, y = radius * np.cos(angle), radius * np.sin(angle)
x[0] = y[0] = 0.0
stellar_mass = 10 ** rng.uniform(9.5, 11.0, n)  # Msun
stellar_mass[0] = 10**11.5
members = SIEPopulation.from_stellar_masses(
    stellar_mass, x, y, z_lens, z_source, q=rng.uniform(0.6, 1.0, n), phi=rng.uniform(0, 180, n)
)
lens = halo + members

curves = critical_curves(lens, n_pix=400, pixel_scale=0.25)
print(f"{len(curves.tangential)} tangential and {len(curves.radial)} radial critical curves")
print(f"effective Einstein radius: {einstein_radius(lens, critical=curves):.1f} arcsec")

fig, ax = plot_lens_maps(
    lens, n_pix=400, pixel_scale=0.25, critical=curves, members=np.column_stack([x, y])
)
ax.set_title("M500 = 6e14 Msun, z = 0.35, source at z = 2")
