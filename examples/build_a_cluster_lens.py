"""Build a cluster lens from catalog-like numbers and draw its critical curves.

The cluster: M500 = 6e14 Msun at z = 0.35 (an elliptical NFW halo with a colossus
concentration), plus 30 member galaxies as SIEs whose Einstein radii follow from their
stellar masses; the source plane is at z = 2. The script prints the halo, the members'
Einstein radii and the cluster's effective Einstein radius, and saves the convergence map
with critical curves (red), caustics (green) and members (orange) as a PNG.

Usage::

    python examples/build_a_cluster_lens.py [--out DIR] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from clusterlens.lensing import critical_curves, einstein_radius
from clusterlens.plotting import plot_lens_maps
from clusterlens.profiles import ENFW, SIEPopulation

M500, Z_LENS, Z_SOURCE = 6e14, 0.35, 2.0  # Msun, cluster and source redshifts
N_MEMBERS = 30
FIELD, PIXEL = 100.0, 0.25  # arcsec: the paper's 100" cutout


def build_cluster(rng: np.random.Generator):
    """The halo and its members (positions in arcsec, stellar masses in Msun)."""
    halo = ENFW.from_m500(M500, Z_LENS, Z_SOURCE, q=0.75, phi=35.0)
    # members: more concentrated towards the centre, stellar masses 10^9.5 - 10^11 Msun
    radius = 40.0 * rng.uniform(0, 1, N_MEMBERS) ** 0.8
    angle = rng.uniform(0, 2 * np.pi, N_MEMBERS)
    x, y = radius * np.cos(angle), radius * np.sin(angle)
    x[0] = y[0] = 0.0  # the brightest cluster galaxy sits at the halo centre
    stellar_mass = 10 ** rng.uniform(9.5, 11.0, N_MEMBERS)
    stellar_mass[0] = 10**11.5
    members = SIEPopulation.from_stellar_masses(
        stellar_mass,
        x,
        y,
        Z_LENS,
        Z_SOURCE,
        q=rng.uniform(0.6, 1.0, N_MEMBERS),
        phi=rng.uniform(0, 180, N_MEMBERS),
    )
    return halo, members


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the PNG")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the members")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")  # a script: write files, open no window

    start = time.perf_counter()
    halo, members = build_cluster(np.random.default_rng(args.seed))
    lens = halo + members
    print(f"halo: {halo}")
    print(
        f"members: {len(members)} SIEs, Einstein radii {members.theta_e.min():.2f}-"
        f"{members.theta_e.max():.2f} arcsec"
    )

    n_pix = int(round(FIELD / PIXEL))
    curves = critical_curves(lens, n_pix=n_pix, pixel_scale=PIXEL)
    theta_e = einstein_radius(lens, critical=curves)
    print(
        f"critical curves: {len(curves.tangential)} tangential, {len(curves.radial)} radial "
        f"(traced on {n_pix}x{n_pix} pixels of {PIXEL} arcsec)"
    )
    print(f"effective Einstein radius for z_s = {Z_SOURCE}: {theta_e:.2f} arcsec")

    fig, ax = plot_lens_maps(
        lens,
        n_pix=n_pix,
        pixel_scale=PIXEL,
        critical=curves,
        members=np.column_stack([members.x0, members.y0]),
    )
    ax.set_title(f"M500 = {M500:.1e} Msun, z = {Z_LENS}, z_s = {Z_SOURCE}")
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "cluster_lens_critical_curves.png"
    # write to a temporary name first so that a crash never leaves a half-written PNG
    partial = target.with_name(f".{target.stem}.partial.png")
    fig.savefig(partial, dpi=120, bbox_inches="tight")
    os.replace(partial, target)
    print(f"saved {target} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
