"""Predicted Einstein radii of the 485 published cluster lenses against their measured arcs.

For every candidate of Zhang et al. (``shared/data/zhang2026_cluster_lens_candidates.csv``:
``M_500`` in log10 Msun, ``PZ_BCG`` the redshift, ``R_EIN`` the measured arc radius in
arcsec) the script draws a synthetic member population with
:class:`clusterlens.fields.SyntheticClusterField` (BCG stellar mass from M500, a Schechter
member function, NFW-distributed positions; seeded by the row), one halo realisation (q,
phi, concentration scatter) and measures the effective Einstein radius ``sqrt(A / pi)`` of
the tangential critical region (:meth:`MockLensSimulator.einstein_radius`) for

* the default (realistic) mass model: eNFW minus the galaxies' mass inside R500, truncated
  dPIE members, a dPIE BCG;
* the same without the BCG component (the BCG an ordinary dPIE member: with the default
  BCG radii, the members' scaling extended to its sigma, this is the same lens);
* the same with a massless BCG (r_cut = 1 pc), to show what the BCG contributes;
* the ``paper`` preset: eNFW holding the whole M500 plus untruncated SIE members;
* the halo alone (the paper's eNFW, no galaxies);

at fixed source redshifts (default 1.5 and 2.5).  It prints the medians, the ratio of each
median to the measured 6.5", and the Spearman rank correlation with ``R_EIN``.  Nothing is
fitted: the model's parameters are the literature values documented in ``docs/mock.md``.

Run: ``PYTHONPATH=. python benchmarks/bench_einstein_radii.py [--n N] [--z-source 1.5 2.5]``
(485 haloes x 3 models x 2 redshifts: a few minutes on one core).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from astropy.table import Table  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from clusterlens.mock import MockLensSimulator, preset_config, synthetic_scene  # noqa: E402

_NAME = "zhang2026_cluster_lens_candidates.csv"
CATALOG = next(
    (
        p
        for p in (
            Path(__file__).resolve().parents[1].parent / "shared" / "data" / _NAME,
            Path("/work/shared/data") / _NAME,
        )
        if p.is_file()
    ),
    None,
)
# 160 pixels of 0.4": the critical region of the largest lenses (R_EIN up to ~30") fits
GRID = (160, 0.4)

MODELS = {
    "realistic": {},
    "no BCG": {"bcg": {"enabled": False}},
    "BCG massless": {"bcg": {"r_core_kpc": 0.0, "r_cut_kpc": 1e-3}},
    "paper": {},
    "halo alone": {"members": {"min_stellar_mass": 1e20}},
}
BASES = {
    "realistic": "realistic",
    "no BCG": "realistic",
    "BCG massless": "realistic",
    "paper": "paper",
    "halo alone": "paper",
}


def load_candidates(n: int | None = None, *, seed: int = 0) -> Table:
    """The published candidates (all, or a seeded random subset of ``n``)."""
    if CATALOG is None:
        raise SystemExit(f"{_NAME} not found beside the repository")
    table = Table.read(CATALOG, format="ascii.csv")
    if n is not None and n < len(table):
        rows = np.sort(np.random.default_rng(seed).choice(len(table), n, replace=False))
        table = table[rows]
    return table


def predicted_radii(table: Table, z_sources, *, grid=GRID, models=MODELS) -> dict:
    """``{(model, z_s): theta_E array}`` for the candidates of ``table``."""
    sims = {
        name: MockLensSimulator(preset_config(BASES[name], overrides))
        for name, overrides in models.items()
    }
    out = {(m, z): np.empty(len(table)) for m in models for z in z_sources}
    out["galaxies_fraction"] = np.empty(len(table))
    base_cfg = sims["realistic" if "realistic" in sims else next(iter(sims))].config
    for i, row in enumerate(table):
        z_l, m500 = float(row["PZ_BCG"]), 10.0 ** float(row["M_500"])
        scene = synthetic_scene(base_cfg, z_lens=z_l, m500=m500, seed=int(row["CLUSTER_ID"]))
        if "realistic" in sims:
            real = sims["realistic"]
            gal = real.members_lens(scene, z_sources[0])
            out["galaxies_fraction"][i] = 1.0 - real.halo_mass_fraction(scene, gal, z_sources[0])[0]
        for name, sim in sims.items():
            for z_s in z_sources:
                # one halo draw per cluster, the same for every model and redshift
                out[(name, z_s)][i] = sim.einstein_radius(scene, z_s, seed=i, grid=grid)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="a random subset of N candidates")
    parser.add_argument("--z-source", type=float, nargs="+", default=[1.5, 2.5])
    args = parser.parse_args(argv)
    table = load_candidates(args.n)
    measured = np.asarray(table["R_EIN"], float)
    t0 = time.perf_counter()
    radii = predicted_radii(table, args.z_source)
    elapsed = time.perf_counter() - t0
    med = float(np.median(measured))
    print(f'{len(table)} published candidates; measured R_EIN median {med:.2f}"')
    header = ("model", "z_s", "median", "/ meas", "spearman", "f(>=5)")
    print("{:<13} {:>5} {:>8} {:>6} {:>9} {:>6}".format(*header))
    frac = radii.pop("galaxies_fraction")
    for (name, z_s), theta in radii.items():
        rho = spearmanr(theta, measured).statistic
        print(
            f'{name:<12} {z_s:5.2f} {np.median(theta):7.2f}" {np.median(theta) / med:6.2f} '
            f"{rho:9.3f} {np.mean(theta >= 5.0):6.2f}"
        )
    lo, mid, hi = np.percentile(frac, [5, 50, 95])
    print(f"mass budget: galaxies hold {mid:.3f} of M500 (5-95%: {lo:.3f}-{hi:.3f})")
    print(f"({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
