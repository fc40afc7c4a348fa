"""Benchmark: critical curves and caustics of a cluster lens, clusterlens vs lenstronomy.

The lens is one pseudo-elliptical NFW halo (M500 = 5e14 Msun, z = 0.4, z_s = 2) plus 100
member SIEs from stellar masses; both codes trace its critical curves and caustics over the
same 100 arcsec field at the same resolution (800 x 800 pixels of 0.125 arcsec) in one run:
lenstronomy with its ``LensModelExtensions.critical_curve_caustics`` (magnification on every
pixel, contour of 1/mu, ray shooting), clusterlens with :func:`critical_curves` and
:func:`caustics`. Times are the best of ``--repeat`` runs each, interleaved.

Usage::

    PYTHONPATH=. python benchmarks/bench_critical_curves.py [--repeat 5] [--check]

With ``--check`` the script exits with status 1 when the speed-up is below the floor (10x).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from clusterlens.lensing import caustics, critical_curves
from clusterlens.profiles import ENFW, SIEPopulation

FLOOR = 10.0
N_PIX, PIXEL_SCALE = 800, 0.125  # a 100 arcsec field


def build_lens(n_members: int = 100, seed: int = 2):
    """The benchmark cluster: (our lens, lenstronomy model names, lenstronomy kwargs)."""
    rng = np.random.default_rng(seed)
    halo = ENFW.from_m500(5e14, 0.4, 2.0, q=0.7, phi=30.0)
    radius = 45.0 * np.sqrt(rng.uniform(0, 1, n_members))
    angle = rng.uniform(0, 2 * np.pi, n_members)
    members = SIEPopulation.from_stellar_masses(
        10 ** rng.uniform(9.5, 11.5, n_members),
        radius * np.cos(angle),
        radius * np.sin(angle),
        0.4,
        2.0,
        q=rng.uniform(0.5, 1.0, n_members),
        phi=rng.uniform(0.0, 180.0, n_members),
    )

    def e1e2(q, phi_deg):
        e = (1 - q) / (1 + q)
        return e * np.cos(2 * np.radians(phi_deg)), e * np.sin(2 * np.radians(phi_deg))

    e1, e2 = e1e2(halo.q, halo.phi)
    kwargs = [dict(Rs=halo.rs, alpha_Rs=halo.alpha_rs, e1=e1, e2=e2, center_x=0.0, center_y=0.0)]
    for t, q, p, x, y in zip(
        members.theta_e, members.q, members.phi, members.x0, members.y0, strict=True
    ):
        m1, m2 = e1e2(q, p)
        kwargs.append(dict(theta_E=t, e1=m1, e2=m2, center_x=x, center_y=y))
    return halo + members, ["NFW_ELLIPSE_POTENTIAL"] + ["SIE"] * n_members, kwargs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each code (best kept)")
    parser.add_argument("--check", action="store_true", help=f"fail below {FLOOR:g}x")
    args = parser.parse_args(argv)

    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LensModel.lens_model_extensions import LensModelExtensions

    lens, models, kwargs = build_lens()
    extensions = LensModelExtensions(LensModel(models))

    def ours():
        crit = critical_curves(lens, n_pix=N_PIX, pixel_scale=PIXEL_SCALE)
        return crit, caustics(lens, crit)

    def theirs():
        return extensions.critical_curve_caustics(
            kwargs, compute_window=N_PIX * PIXEL_SCALE, grid_scale=PIXEL_SCALE
        )

    critical_curves(lens, n_pix=64, pixel_scale=1.0)  # compile the numba kernels first
    t_ours, t_theirs = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        crit, _ = ours()
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = theirs()
        t_theirs.append(time.perf_counter() - t0)
    best_ours, best_theirs = min(t_ours), min(t_theirs)
    ratio = best_theirs / best_ours

    print(f'critical curves + caustics, 1 ENFW + 100 SIE, {N_PIX}x{N_PIX} px of {PIXEL_SCALE}"')
    print(
        f"  threads: NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}, "
        f"cpus={os.cpu_count()}"
    )
    print(
        f"  clusterlens: {best_ours * 1e3:8.1f} ms  ({len(crit.tangential)} tangential, "
        f"{len(crit.radial)} radial curves)"
    )
    print(f"  lenstronomy: {best_theirs * 1e3:8.1f} ms  ({len(ref[0])} curves of 1/mu = 0)")
    print(f"  speed-up:    {ratio:8.1f}x  (floor {FLOOR:g}x)")
    if args.check and ratio < FLOOR:
        print(f"FAIL: speed-up {ratio:.1f}x is below the floor {FLOOR:g}x", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
