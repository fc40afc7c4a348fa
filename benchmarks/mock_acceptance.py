"""Acceptance rate of the paper's 5" Einstein-radius cut, measured on the lens maps.

For the 485 published candidates (M500, BCG redshift from ``shared/data``) and for the
default synthetic sky, each cluster gets a synthetic member table
(:class:`~clusterlens.fields.SyntheticClusterField`), one halo draw (q, phi, concentration
scatter of ``HaloConfig``) and a source redshift from the default population; the Einstein
radius is read off the cluster's map rescaled to that redshift
(:class:`clusterlens.mock.LensMaps`).  Printed: the median Einstein radius, the fraction of
(cluster, source) draws with theta_E >= 5" (what naive rejection would keep), the fraction
of clusters that reach 5" at the population's highest redshift, and, for comparison with
FACTS.md, the spherical NFW alone (q = 1, mean concentration, no members) at z_s = 1.5.

Run: ``PYTHONPATH=. python benchmarks/mock_acceptance.py [--n N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from clusterlens.mock import HaloConfig, MockConfig, MockLensSimulator, synthetic_scene  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the repository
CANDIDATES = SHARED_DATA / "zhang2026_cluster_lens_candidates.csv"


def measure(sim, clusters, rng):
    theta_src, theta_max, theta_nfw = [], [], []
    nfw_only = MockLensSimulator(
        MockConfig(halo=HaloConfig(q_mean=1.0, q_sigma=0.0, concentration_scatter_dex=0.0))
    )
    for z, m500 in clusters:
        scene = synthetic_scene(sim.config, z_lens=z, m500=m500, seed=rng)
        if z >= sim.z_ref - 0.05:
            continue
        maps, _ = next(sim.lens_maps(scene, rng))
        z_s = float(sim.population.draw_table(1, rng, min_redshift=z + 0.05)["redshift"][0])
        ref = sim._distance_ratio(z, sim.z_ref)
        theta_src.append(maps.einstein_radius(float(sim._distance_ratio(z, z_s) / ref)))
        theta_max.append(maps.einstein_radius(1.0))
        # the spherical NFW alone at z_s = 1.5 (massless members)
        bare = type(scene)(scene.image, z, m500, [0.0], [0.0], [1.0], [1.0], [0.0])
        maps0, _ = next(nfw_only.lens_maps(bare, rng))
        theta_nfw.append(maps0.einstein_radius(float(sim._distance_ratio(z, 1.5) / ref)))
    return np.array(theta_src), np.array(theta_max), np.array(theta_nfw)


def report(name, ts, tm, tn, cut):
    print(f"{name} ({ts.size} clusters):")
    print(f"  median theta_E, spherical NFW only, z_s = 1.5   : {np.median(tn):5.2f} arcsec")
    print(f"  median theta_E, ENFW + members, drawn z_s      : {np.median(ts):5.2f} arcsec")
    print(f'  accepted by the {cut}" cut at the drawn z_s     : {np.mean(ts >= cut):6.1%}')
    print(f'  can reach {cut}" at z_s = z_max (not skipped)   : {np.mean(tm >= cut):6.1%}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=485, help="clusters per sample (485)")
    args = parser.parse_args(argv)
    sim = MockLensSimulator(MockConfig(image=MockConfig().image))
    cut = sim.config.selection.min_einstein_radius
    rng = np.random.default_rng(2026)
    if CANDIDATES.is_file():
        from astropy.table import Table

        t = Table.read(CANDIDATES, format="csv")[: args.n]
        pub = [(float(z), 10.0 ** float(m)) for z, m in zip(t["PZ_BCG"], t["M_500"], strict=True)]
        report("published candidates", *measure(sim, pub, rng), cut)
    c = sim.config.clusters
    sky = [
        (float(rng.uniform(*c.redshift_range)), 10.0 ** float(rng.uniform(*c.log_m500_range)))
        for _ in range(args.n)
    ]
    report("default synthetic sky", *measure(sim, sky, rng), cut)
    return 0


if __name__ == "__main__":
    sys.exit(main())
