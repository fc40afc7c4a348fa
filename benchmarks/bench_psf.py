"""Time the PSF step of a mock: convolving a 3 x 253 x 253 arc, Gaussian vs Moffat PSFs.

clusterlens: :func:`clusterlens.observe.convolve` with the nominal DECaLS FWHM (1.45, 1.35,
1.20"): Gaussian PSFs (two separable 1-D passes, numba), Moffat PSFs with beta 2.5 / 3.5 /
4.5 (a real FFT per band; the kernel transforms cached, as for every arc of a field after
the first) and the same Moffat kernels as :class:`PixelPSF` (no cache).
Baseline: ``scipy.signal.fftconvolve`` per band with the Moffat kernels.  The script also
times the per-field work that Moffat conditions add: building the conditions and their
``N_eff`` (sky noise), and measuring the conditions of a 371 x 371 cutout from its stars.

CPU time per call (``time.process_time``, best of ``--repeat`` batches): the machine is
shared, and wall time would count waiting for the cores.  glibc malloc tunables are left at
their defaults.

Run: ``PYTHONPATH=. python benchmarks/bench_psf.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.signal import fftconvolve  # noqa: E402

from clusterlens.observe import (  # noqa: E402
    SURVEYS,
    GaussianPSF,
    MoffatPSF,
    PixelPSF,
    SurveyConditions,
    convolve,
    measure_conditions,
)

PIX = 0.262
FWHM = SURVEYS["decals"].fwhm_median


def cpu_ms(fn, repeat, inner=10):
    fn()  # compile / warm caches
    best = np.inf
    for _ in range(repeat):
        t = time.process_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.process_time() - t) / inner)
    return best * 1e3


def arc(n=253, seed=0):
    """A smooth arc-like test image: a thin ring segment per band."""
    y, x = np.mgrid[:n, :n] - n // 2
    r, t = np.hypot(x, y), np.arctan2(y, x)
    ring = np.exp(-0.5 * ((r - 40) / 2.0) ** 2) * np.exp(-0.5 * (t / 0.4) ** 2)
    return np.stack([ring * f for f in (0.5, 1.0, 1.5)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    img = arc()
    rows = [("gaussian (separable)", [GaussianPSF(f) for f in FWHM])]
    for beta in (2.5, 3.5, 4.5):
        rows.append((f"moffat beta={beta}", [MoffatPSF(f, beta) for f in FWHM]))
    pixel = [PixelPSF(MoffatPSF(f, 2.5).image(PIX)) for f in FWHM]
    rows.append(("pixel PSF (moffat 2.5 kernels, no cache)", pixel))
    print(f"convolve, 3 x 253 x 253, FWHM {FWHM} arcsec, CPU ms per call:")
    for name, psfs in rows:
        sizes = [p.image(PIX).shape[0] for p in psfs]
        t = cpu_ms(lambda psfs=psfs: convolve(img, psfs), args.repeat)
        print(f"  {name:42s} {t:7.2f} ms   kernels {sizes}")
    kernels = [MoffatPSF(f, 2.5).image(PIX) for f in FWHM]
    t = cpu_ms(
        lambda: [fftconvolve(b, k, mode="same") for b, k in zip(img, kernels, strict=True)],
        args.repeat,
    )
    print(f"  {'scipy fftconvolve per band (moffat 2.5)':42s} {t:7.2f} ms")

    def conditions(model):
        return SurveyConditions(psf_fwhm=FWHM, psf_model=model, psf_beta=3.0).sky_sigma

    print("per field:")
    for model in ("gaussian", "moffat"):
        t = cpu_ms(lambda model=model: conditions(model), args.repeat, inner=5)
        print(f"  SurveyConditions + N_eff ({model:8s})          {t:7.2f} ms")
    from clusterlens.fields import FieldConfig, SyntheticClusterField

    fld = SyntheticClusterField(
        redshift=0.3,
        m500=5e14,
        size=371,
        conditions=SurveyConditions(psf_fwhm=FWHM, psf_model="moffat", psf_beta=3.0),
        config=FieldConfig(star_density=3.0),
    ).draw(1)
    t0 = time.process_time()
    cond, record = measure_conditions(fld.image)
    t = (time.process_time() - t0) * 1e3
    print(
        f"  measure_conditions, 371 x 371 cutout        {t:7.0f} ms   "
        f"FWHM {tuple(round(f, 3) for f in cond.psf_fwhm)} from {record['psf_source']}, "
        f"stars {record['n_stars']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
