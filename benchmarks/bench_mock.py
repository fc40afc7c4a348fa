"""Mock cluster lenses per second: clusterlens.mock vs the same mock built with lenstronomy.

clusterlens: :meth:`MockLensSimulator.simulate` on one 223 x 223 g/r/z cluster with 50
member galaxies: member and halo Hessian maps on the crop + PSF margin (253 x 253), the 5"
Einstein-radius test, source placement behind the high-magnification region, the
adaptive Sérsic render (one deflection map for all three bands), PSF, shot noise, S/N rule,
injection.  Each mock draws a new halo (q, phi, concentration) and source.

lenstronomy 1.14.2: ``LensModel(['NFW_ELLIPSE_POTENTIAL'] + 50 * ['SIE'])`` with the same
parameters, ``ImageModel`` with a ``SERSIC_ELLIPSE`` source, a Gaussian PSF per band and
``supersampling_factor=2`` (one ``ImageModel.image`` call per band, as the API requires), then
Poisson + background noise (``image_util``).  It does no selection and no placement, so it
does less work than ours per mock.

The lenstronomy comparison uses the ``paper`` preset (eNFW + SIE members, Gaussian PSFs,
single Sérsic sources), which is what the lenstronomy version builds; the realistic default
(dPIE members and BCG, Moffat PSFs per field, clumpy sources) is timed beside it.  The script
also times whole dataset images (synthetic cluster field + mock, and negatives) of both
configurations in one process, interleaved image by image, prints their CPU cost per image
and its ratio (realistic / paper preset: the figure that does not depend on the machine's
speed or load), and projects the time of a 100,000-image set (50,000 + 50,000) on 2 worker
processes.  One numba thread and one BLAS thread per process, and the glibc malloc settings
of the workers ``simulate_dataset`` starts (``clusterlens._malloc.MALLOC_ENV``; the script
restarts itself with them unless they are set or ``--default-malloc`` is given, which
measures glibc's defaults instead: 2x slower for the realistic model here, whose arrays'
sizes alternate with the paper preset's).

Run: ``PYTHONPATH=. python benchmarks/bench_mock.py [--check] [--n N] [--images M]``;
``--check`` exits 1 when the speed-up over lenstronomy is below 5.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from clusterlens._malloc import MALLOC_ENV  # noqa: E402
from clusterlens.mock import (  # noqa: E402
    ClusterScene,
    MockConfig,
    MockLensSimulator,
    SyntheticSky,
    make_image,
    preset_config,
    synthetic_scene,
)

FLOOR = 5.0
N_MEMBERS = 50


def cluster_with_50_members(config, seed=0) -> ClusterScene:
    """A synthetic field (z = 0.35, M500 = 8e14) whose member table is redrawn to 50."""
    base = synthetic_scene(config, z_lens=0.35, m500=8e14, seed=seed)
    rng = np.random.default_rng(seed)
    half = 0.5 * base.image.shape[-1] * config.observation.pixel_scale
    x = np.r_[0.0, rng.uniform(-half, half, N_MEMBERS - 1)]
    y = np.r_[0.0, rng.uniform(-half, half, N_MEMBERS - 1)]
    mstar = np.r_[4e11, 10 ** rng.uniform(10.0, 11.3, N_MEMBERS - 1)]
    return ClusterScene(
        base.image, base.z_lens, base.m500, x, y, mstar,
        rng.uniform(0.5, 1.0, N_MEMBERS), rng.uniform(-90, 90, N_MEMBERS),
    )  # fmt: skip


def time_ours(sim, scene, n):
    sim.simulate(scene, seed=0)  # warm-up: numba caches, colossus
    results, t0, c0 = [], time.perf_counter(), time.process_time()
    for i in range(n):
        results.append(sim.simulate(scene, seed=i + 1))
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n, results


def _e1e2(q, phi_deg):
    e = (1 - q) / (1 + q)
    a = 2 * math.radians(phi_deg)
    return e * math.cos(a), e * math.sin(a)


def time_lenstronomy(sim, results, n):
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel
    from lenstronomy.Util import image_util
    from lenstronomy.Util.simulation_util import data_configure_simple

    cond = sim.conditions
    npix, scale = sim.crop, cond.pixel_scale
    lens_model = LensModel(["NFW_ELLIPSE_POTENTIAL"] + ["SIE"] * N_MEMBERS)
    light = LightModel(["SERSIC_ELLIPSE"])
    rng = np.random.default_rng(0)
    models = []  # built once, as a user would: only the kwargs change per mock
    for band in range(3):
        data = ImageData(
            **data_configure_simple(npix, scale, exposure_time=1.0, background_rms=1.0)
        )
        psf = PSF(psf_type="GAUSSIAN", fwhm=cond.psf_fwhm[band], pixel_size=scale)
        models.append(ImageModel(data, psf, lens_model_class=lens_model, source_model_class=light,
                                 kwargs_numerics={"supersampling_factor": 2}))  # fmt: skip

    def one(res):
        halo, mem = res.lens.components[0], res.lens.components[1]
        e1, e2 = _e1e2(halo.q, halo.phi)
        kwargs_lens = [{"Rs": halo.rs, "alpha_Rs": halo.alpha_rs, "e1": e1, "e2": e2,
                        "center_x": 0.0, "center_y": 0.0}]  # fmt: skip
        for t, q, p, x, y in zip(mem.theta_e, mem.q, mem.phi, mem.x0, mem.y0, strict=True):
            m1, m2 = _e1e2(q, p)
            kwargs_lens.append({"theta_E": t, "e1": m1, "e2": m2, "center_x": x, "center_y": y})
        src = res.source
        s1, s2 = _e1e2(src.q, src.phi)
        out = []
        for band, model in enumerate(models):
            kwargs_src = [{"amp": float(src.fluxes[band]), "R_sersic": src.r_e,
                           "n_sersic": src.n, "e1": s1, "e2": s2,
                           "center_x": src.x, "center_y": src.y}]  # fmt: skip
            img = model.image(kwargs_lens, kwargs_source=kwargs_src)
            gain = float(cond.gain[band])
            img = img + image_util.add_poisson(np.clip(img, 0, None) * gain, 1.0) / gain
            img = img + image_util.add_background(img, float(cond.sky_sigma[band]))
            out.append(img)
        return np.stack(out) + res.cutout

    one(results[0])
    # lenstronomy's noise uses numpy's global RNG
    np.random.seed(int(rng.integers(1 << 31)))  # noqa: NPY002
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        one(results[i % len(results)])
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def time_dataset_images(configs, n):
    """CPU and wall seconds per positive and negative dataset image of each configuration,
    the configurations interleaved image by image (so that a change of the machine's load
    falls on all of them alike)."""
    makers = {}
    for label, config in configs.items():
        sim, sky = MockLensSimulator(config), SyntheticSky(config)
        for warm in range(2):  # numba caches, colossus, the kernels of both image kinds
            make_image(warm, seed=0, n_positive=1, simulator=sim, sky=sky)
        makers[label] = (sim, sky)
    wall = {label: {"pos": [], "neg": []} for label in configs}
    cpu = {label: {"pos": [], "neg": []} for label in configs}
    for i in range(n):
        for key, index in (("pos", i), ("neg", n + i)):
            for label, (sim, sky) in makers.items():
                t0, c0 = time.perf_counter(), time.process_time()
                make_image(index, seed=1, n_positive=n, simulator=sim, sky=sky)
                wall[label][key].append(time.perf_counter() - t0)
                cpu[label][key].append(time.process_time() - c0)
    mean = {
        label: (
            {k: float(np.mean(v)) for k, v in wall[label].items()},
            {k: float(np.mean(v)) for k, v in cpu[label].items()},
        )
        for label in configs
    }
    return mean


def hours_per_100k(t):
    """Hours for 100,000 images (50,000 + 50,000) on 2 workers at ``t`` s per image kind."""
    return 100_000 * 0.5 * (t["pos"] + t["neg"]) / 2 / 3600


def _with_worker_malloc(argv):
    """Restart this script with the Dask workers' malloc settings (they are read at start)."""
    if "--default-malloc" in argv or all(k in os.environ for k in MALLOC_ENV):
        return
    env = {**os.environ, **{k: str(v) for k, v in MALLOC_ENV.items()}}
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)


def main(argv=None) -> int:
    if argv is None:
        _with_worker_malloc(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 below the ratio floor")
    parser.add_argument(
        "--default-malloc", action="store_true", help="keep glibc's malloc defaults"
    )
    parser.add_argument("--n", type=int, default=20, help="mocks timed per method (20)")
    parser.add_argument(
        "--images", type=int, default=40, help="dataset positives (and negatives) per model (40)"
    )
    args = parser.parse_args(argv)
    # like for like with lenstronomy: the paper's model (eNFW + SIE members, one Gaussian PSF
    # per band, single Sersic sources), which is what the lenstronomy version builds
    paper = preset_config("paper")
    sim = MockLensSimulator(paper)
    scene = cluster_with_50_members(paper)
    ours, ours_cpu, results = time_ours(sim, scene, args.n)
    theirs, theirs_cpu = time_lenstronomy(sim, results, max(3, args.n // 4))
    ratio = theirs / ours
    realistic = MockConfig()
    real, real_cpu, _ = time_ours(
        MockLensSimulator(realistic), cluster_with_50_members(realistic), args.n
    )
    print(f"223x223 g/r/z mock, cluster with {N_MEMBERS} members (one process, 1 thread)")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    malloc = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in MALLOC_ENV)
    print(f"malloc settings: {malloc}")
    print("                                wall ms/mock  mocks/s   CPU ms/mock")
    print(
        f"  clusterlens.mock, paper    : {ours * 1e3:9.1f} {1 / ours:9.1f} {ours_cpu * 1e3:11.1f}"
    )
    print(
        f"  lenstronomy, the same mock : {theirs * 1e3:9.1f} {1 / theirs:9.1f} "
        f"{theirs_cpu * 1e3:11.1f}"
    )
    print(
        f"  speed-up                   : {ratio:9.1f}x "
        f"(CPU time {theirs_cpu / ours_cpu:.1f}x; floor {FLOOR}x)"
    )
    print(
        f"  clusterlens.mock, realistic: {real * 1e3:9.1f} {1 / real:9.1f} {real_cpu * 1e3:11.1f}"
    )
    configs = {"realistic (default)": realistic, "paper preset": paper}
    times = time_dataset_images(configs, args.images)
    print(
        f"dataset images, {args.images} positives + {args.images} negatives of each model, "
        "interleaved (synthetic field + mock incl. rejected clusters | negative field):"
    )
    for label, (wall, cpu) in times.items():
        print(f"  {label}:")
        for name, t in (("wall", wall), ("CPU", cpu)):
            per_image = 0.5 * (t["pos"] + t["neg"])
            print(
                f"    {name:4s}: positive {t['pos'] * 1e3:5.0f} ms, negative {t['neg'] * 1e3:4.0f} "
                f"ms, per image {per_image * 1e3:5.1f} ms -> 100,000 images (50k + 50k) on 2 "
                f"workers: {hours_per_100k(t):.2f} h"
            )
    (_, real_cpu_t), (_, paper_cpu_t) = times["realistic (default)"], times["paper preset"]
    cost = (real_cpu_t["pos"] + real_cpu_t["neg"]) / (paper_cpu_t["pos"] + paper_cpu_t["neg"])
    print(f"  realistic / paper preset, CPU per image, same run: {cost:.2f}x")
    if args.check and ratio < FLOOR:
        print(f"FAIL: speed-up {ratio:.1f}x below the floor {FLOOR}x", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
