"""Time Sérsic rendering + PSF for a lensed 223 x 223 g/r/z image: clusterlens vs numpy.

clusterlens: :func:`render_sersic_adaptive` (numba kernel, quadtree sub-sampling only where
the lensed source is steep) followed by :func:`clusterlens.observe.convolve`.
Baseline: the same Sérsic written in plain numpy on a fixed 4 x 4 supersampled grid, block
averaged, then ``scipy.signal.fftconvolve`` per band.  Both ray-trace through the same SIS
(numpy) so the lens costs the same per traced point; the adaptive path traces far fewer
points.  The script also prints each method's error on the total flux against a 16 x 16
brute-force render.  A last row times a structured source (an n = 1 body plus four
Gaussian clumps of 0.05-0.15") against the body alone, both adaptive.

Run: ``PYTHONPATH=. python benchmarks/bench_render.py [--check]``; ``--check`` exits 1 when
clusterlens is slower than the baseline (ratio below the floor of 1.0).  glibc malloc
tunables (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_) are left at their defaults.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
from scipy.signal import fftconvolve
from scipy.special import gammaincinv, gammaln

from clusterlens.lensing import pixel_grid
from clusterlens.observe import SurveyConditions, convolve
from clusterlens.sources import Sersic, StructuredSource, render_sersic, render_sersic_adaptive

SHAPE = (223, 223)
PIX = 0.262
FLOOR = 1.0


def sis(theta_e, x0=0.7, y0=-0.4):
    def trace(x, y):
        dx, dy = x - x0, y - y0
        r = np.maximum(np.hypot(dx, dy), 1e-12)
        return x - theta_e * dx / r, y - theta_e * dy / r

    return trace


def numpy_sersic(src, bx, by):
    n, q = src.n, src.q
    b = gammaincinv(2 * n, 0.5)
    log_i0 = 2 * n * math.log(b) - math.log(2 * math.pi * n * src.r_e**2) - gammaln(2 * n)
    c, s = math.cos(math.radians(src.phi)), math.sin(math.radians(src.phi))
    dx, dy = bx - src.x, by - src.y
    xp, yp = c * dx + s * dy, -s * dx + c * dy
    r = np.sqrt(q * xp**2 + yp**2 / q) / src.r_e
    return np.exp(log_i0 - b * r ** (1 / n))


def baseline(src, trace, kernels, supersample=4):
    x, y = pixel_grid(SHAPE, PIX, supersample=supersample)
    bx, by = trace(x, y)
    unit = numpy_sersic(src, bx, by).reshape(SHAPE[0], supersample, SHAPE[1], supersample)
    pix = unit.mean(axis=(1, 3)) * PIX**2
    return np.stack(
        [fftconvolve(f * pix, k, mode="same") for f, k in zip(src.fluxes, kernels, strict=True)]
    )


def ours(src, trace, cond):
    img = render_sersic_adaptive(src, trace, shape=SHAPE, pixel_scale=PIX)
    return convolve(img, cond.psfs, pixel_scale=PIX)


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 below the ratio floor")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    cond = SurveyConditions()
    kernels = [p.image(PIX) for p in cond.psfs]
    trace = sis(8.0)
    ratios = []
    for n, r_e in ((1.0, 0.4), (4.0, 0.2)):
        src = Sersic(x=0.3, y=0.2, r_e=r_e, n=n, q=0.7, phi=30, fluxes=(1.0, 2.0, 3.0))
        ours(src, trace, cond)  # compile / warm caches
        t_ours, img_ours = best_of(lambda src=src: ours(src, trace, cond), args.repeat)
        t_base, img_base = best_of(lambda src=src: baseline(src, trace, kernels), args.repeat)
        x, y = pixel_grid(SHAPE, PIX, supersample=16)
        bx, by = trace(x, y)
        truth = render_sersic(src, bx, by, pixel_scale=PIX, supersample=16)[1].sum()
        err_ours = img_ours[1].sum() / truth - 1
        err_base = img_base[1].sum() / truth - 1
        ratio = t_base / t_ours
        ratios.append(ratio)
        print(
            f'n={n:g} r_e={r_e:g}": clusterlens {t_ours * 1e3:7.1f} ms (flux err {err_ours:+.1e})'
            f" | numpy 4x4 {t_base * 1e3:7.1f} ms (flux err {err_base:+.1e})"
            f" | speed-up x{ratio:.2f}"
        )
    body = Sersic(x=0.3, y=0.2, r_e=0.4, n=1.0, q=0.7, phi=30, fluxes=(0.7, 1.4, 2.1))
    clumps = tuple(
        Sersic(x=0.3 + dx, y=0.2 + dy, r_e=r, n=0.5, q=0.8, phi=10.0, fluxes=(0.1, 0.15, 0.2))
        for dx, dy, r in (
            (0.3, 0.1, 0.05),
            (-0.2, 0.25, 0.1),
            (0.1, -0.3, 0.15),
            (-0.35, -0.1, 0.08),
        )
    )
    clumpy = StructuredSource(body, clumps)
    ours(clumpy, trace, cond)
    t_body, _ = best_of(lambda: ours(body, trace, cond), args.repeat)
    t_clumpy, img = best_of(lambda: ours(clumpy, trace, cond), args.repeat)
    x, y = pixel_grid(SHAPE, PIX, supersample=16)
    bx, by = trace(x, y)
    truth = render_sersic(clumpy, bx, by, pixel_scale=PIX, supersample=16)[1].sum()
    print(
        f"body + 4 clumps: {t_clumpy * 1e3:7.1f} ms (flux err {img[1].sum() / truth - 1:+.1e})"
        f" | body alone {t_body * 1e3:7.1f} ms | cost x{t_clumpy / t_body:.2f}"
    )
    if args.check and min(ratios) < FLOOR:
        print(f"FAIL: a speed-up fell below the floor {FLOOR}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
