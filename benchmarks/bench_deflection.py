"""Deflection and magnification of a cluster lens: clusterlens vs lenstronomy, one run.

The lens is one pseudo-elliptical NFW halo plus 100 member SIEs (seeded), evaluated on
223 x 223 and 371 x 371 grids of 0.262" pixels.  Each timing is the best of ``--repeat``
calls, ours and lenstronomy's alternating (after a warm-up call, so numba compilation is
excluded).  Magnification
is mu = 1 / det(I - H) from the Hessian for both codes (lenstronomy's ``magnification``).

A second table times the 100 members alone as truncated dPIEs (``DPIEPopulation``, core
0.05", cuts 2-15") against the same members as SIEs (``SIEPopulation``) and against
lenstronomy, where the same elliptical dPIE is ``s/(s - a)`` times a pair of ``NIE``
(cores a and s; lenstronomy's ``PJAFFE`` is its spherical case and its
``PJAFFE_ELLIPSE_POTENTIAL`` has the ellipticity in the potential, another profile), on the
223 x 223 grid, best of ``--repeat``.

A last line gives the SIE kernel's cost per pixel-member pair: the CPU time of the 100
members' deflection on the 223 x 223 grid on one thread, divided by the 4.97 million pairs.

``--busy`` keeps the other core busy for the whole run (a ``while True: pass`` process at
the same priority), the condition under which a statically scheduled two-thread kernel runs
at the speed of one (see docs/profiles.md).

Usage::

    PYTHONPATH=. python benchmarks/bench_deflection.py            # print the table
    PYTHONPATH=. python benchmarks/bench_deflection.py --check    # exit 1 below the floors
    PYTHONPATH=. python benchmarks/bench_deflection.py --busy     # with one core kept busy
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time

import numpy as np

from clusterlens.profiles import ENFW, DPIEPopulation, SIEPopulation

#: Smallest acceptable speed-up (lenstronomy time / clusterlens time) per quantity.
FLOORS = {"deflection": 5.0, "magnification": 10.0}
GRIDS = (223, 371)
PIXEL_SCALE = 0.262  # arcsec, DESI Legacy Surveys
N_MEMBERS = 100


def build_lens(seed: int = 1):
    """The benchmark lens as (clusterlens profile, lenstronomy LensModel, its kwargs)."""
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.Util import param_util

    rng = np.random.default_rng(seed)
    halo = dict(rs=40.0, alpha_rs=9.0, q=0.7, phi=30.0, x0=0.3, y0=-0.2)
    te = rng.uniform(0.1, 1.5, N_MEMBERS)
    q = rng.uniform(0.4, 0.95, N_MEMBERS)
    phi = rng.uniform(-90.0, 90.0, N_MEMBERS)
    x0 = rng.uniform(-30.0, 30.0, N_MEMBERS)
    y0 = rng.uniform(-30.0, 30.0, N_MEMBERS)
    ours = ENFW(**halo) + SIEPopulation(te, q, phi, x0, y0)

    e1, e2 = param_util.phi_q2_ellipticity(np.deg2rad(halo["phi"]), halo["q"])
    kwargs = [
        dict(
            Rs=halo["rs"],
            alpha_Rs=halo["alpha_rs"],
            e1=e1,
            e2=e2,
            center_x=halo["x0"],
            center_y=halo["y0"],
        )
    ]
    for i in range(N_MEMBERS):
        e1, e2 = param_util.phi_q2_ellipticity(np.deg2rad(phi[i]), q[i])
        kwargs.append(dict(theta_E=te[i], e1=e1, e2=e2, center_x=x0[i], center_y=y0[i]))
    model = LensModel(["NFW_ELLIPSE_POTENTIAL"] + ["SIE"] * N_MEMBERS)
    return ours, model, kwargs


def build_members(seed: int = 1):
    """The benchmark's members as (SIEPopulation, DPIEPopulation, {name: (lenstronomy model,
    kwargs)}): ``nie``, the same elliptical dPIEs as NIE pairs, and ``pjaffe``, round dPIEs
    of the same theta_E and radii (lenstronomy's PJAFFE)."""
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.Util import param_util

    rng = np.random.default_rng(seed)
    te = rng.uniform(0.1, 1.5, N_MEMBERS)
    q = rng.uniform(0.4, 0.95, N_MEMBERS)
    phi = rng.uniform(-90.0, 90.0, N_MEMBERS)
    x0 = rng.uniform(-30.0, 30.0, N_MEMBERS)
    y0 = rng.uniform(-30.0, 30.0, N_MEMBERS)
    core, cut = 0.05, rng.uniform(2.0, 15.0, N_MEMBERS)
    sie = SIEPopulation(te, q, phi, x0, y0)
    dpie = DPIEPopulation(te, core, cut, q, phi, x0, y0)
    kwargs = []
    for i in range(N_MEMBERS):
        e1, e2 = param_util.phi_q2_ellipticity(np.deg2rad(phi[i]), q[i])
        f = cut[i] / (cut[i] - core)
        common = dict(e1=e1, e2=e2, center_x=x0[i], center_y=y0[i])
        kwargs.append(dict(theta_E=te[i] * f, s_scale=core, **common))
        kwargs.append(dict(theta_E=-te[i] * f, s_scale=cut[i], **common))
    pjaffe = [
        dict(sigma0=te[i] / (2 * core), Ra=core, Rs=cut[i], center_x=x0[i], center_y=y0[i])
        for i in range(N_MEMBERS)
    ]
    models = {
        "nie": (LensModel(["NIE"] * (2 * N_MEMBERS)), kwargs),
        "pjaffe": (LensModel(["PJAFFE"] * N_MEMBERS), pjaffe),
    }
    return sie, dpie, models


def run_members(repeat: int, n: int = 223) -> list[tuple]:
    """``(quantity, dPIE, SIE, lenstronomy NIE pairs, lenstronomy PJAFFE)`` times for the
    members alone."""
    sie, dpie, models = build_members()
    half = 0.5 * (n - 1) * PIXEL_SCALE
    y, x = np.mgrid[-half : half : n * 1j, -half : half : n * 1j]
    ax, ay = dpie.deflection(x, y)
    nie, nie_kw = models["nie"]
    pj, pj_kw = models["pjaffe"]
    lx, ly = nie.alpha(x, y, nie_kw)
    err = np.max(np.hypot(ax - lx, ay - ly))
    if err > 1e-10:
        raise RuntimeError(f"dPIE deflections differ by {err:.2e} arcsec")
    rows = []
    for name, f_d, f_s, f_n, f_p in (
        (
            "deflection",
            lambda: dpie.deflection(x, y),
            lambda: sie.deflection(x, y),
            lambda: nie.alpha(x, y, nie_kw),
            lambda: pj.alpha(x, y, pj_kw),
        ),
        (
            "hessian",
            lambda: dpie.hessian(x, y),
            lambda: sie.hessian(x, y),
            lambda: nie.hessian(x, y, nie_kw),
            lambda: pj.hessian(x, y, pj_kw),
        ),
    ):
        t_d, t_n = best_times(f_d, f_n, repeat)
        t_s, t_p = best_times(f_s, f_p, repeat)
        rows.append((name, t_d, t_s, t_n, t_p))
    return rows


def magnification(profile, x, y):
    """mu = 1 / ((1 - f_xx)(1 - f_yy) - f_xy^2)."""
    fxx, fxy, fyy = profile.hessian(x, y)
    return 1.0 / ((1.0 - fxx) * (1.0 - fyy) - fxy * fxy)


def best_times(f_ours, f_ref, repeat: int) -> tuple[float, float]:
    """Best wall-clock time of each function, calls alternating so that both see the same
    machine load (this machine is shared; the minimum is the least-disturbed run)."""
    f_ours(), f_ref()
    t_ours, t_ref = [], []
    for _ in range(repeat):
        for func, times in ((f_ref, t_ref), (f_ours, t_ours)):
            t0 = time.perf_counter()
            func()
            times.append(time.perf_counter() - t0)
    return min(t_ours), min(t_ref)


def run(repeat: int) -> list[tuple[str, int, float, float]]:
    ours, model, kwargs = build_lens()
    rows = []
    for n in GRIDS:
        half = 0.5 * (n - 1) * PIXEL_SCALE
        y, x = np.mgrid[-half : half : n * 1j, -half : half : n * 1j]
        # same numbers from both codes before timing them
        ax, ay = ours.deflection(x, y)
        lx, ly = model.alpha(x, y, kwargs)
        err = np.max(np.hypot(ax - lx, ay - ly) / np.hypot(lx, ly))
        if err > 1e-8:
            raise RuntimeError(f"deflections differ by {err:.2e} (relative)")
        cases = {
            "deflection": (
                lambda x=x, y=y: ours.deflection(x, y),
                lambda x=x, y=y: model.alpha(x, y, kwargs),
            ),
            "magnification": (
                lambda x=x, y=y: magnification(ours, x, y),
                lambda x=x, y=y: model.magnification(x, y, kwargs),
            ),
        }
        for name, (f_ours, f_ref) in cases.items():
            t_ours, t_ref = best_times(f_ours, f_ref, repeat)
            rows.append((name, n, t_ours, t_ref))
    return rows


def ns_per_pair(repeat: int, n: int = 223) -> float:
    """CPU nanoseconds per pixel-member pair of the members' deflection on one thread."""
    import numba

    ours, _, _ = build_lens()
    members = ours.components[1]
    half = 0.5 * (n - 1) * PIXEL_SCALE
    y, x = np.mgrid[-half : half : n * 1j, -half : half : n * 1j]
    xf, yf = x.ravel(), y.ravel()
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        members._deflection(xf, yf)
        times = []
        for _ in range(repeat):
            t0 = time.process_time()
            members._deflection(xf, yf)
            times.append(time.process_time() - t0)
    finally:
        numba.set_num_threads(threads)
    return min(times) / (xf.size * len(members)) * 1e9


@contextlib.contextmanager
def busy_core(enabled: bool):
    """A process spinning on one core for the duration of the block (when ``enabled``)."""
    if not enabled:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it start spinning before the first timing
        yield
    finally:
        spinner.kill()
        spinner.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a ratio < its floor")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls per case (best)")
    parser.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    args = parser.parse_args(argv)
    with busy_core(args.busy):
        return _report(args)


def _report(args) -> int:
    import numba

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    busy = ", one core kept busy" if args.busy else ""
    print(f"numba threads: {numba.get_num_threads()}, load average (1 min): {load:.2f}{busy}")
    print(f"{'quantity':<14}{'grid':>9}{'clusterlens':>14}{'lenstronomy':>14}{'ratio':>8}")
    failed = []
    for name, n, t_ours, t_ref in run(args.repeat):
        ratio = t_ref / t_ours
        print(f"{name:<14}{n:>5}^2{t_ours * 1e3:>11.2f} ms{t_ref * 1e3:>11.2f} ms{ratio:>7.1f}x")
        if ratio < FLOORS[name]:
            failed.append(f"{name} {n}^2: {ratio:.1f}x < floor {FLOORS[name]:.0f}x")
    print(f"\n{N_MEMBERS} members alone, 223^2: dPIE vs SIE vs lenstronomy")
    print(
        f"{'quantity':<12}{'dPIE':>11}{'SIE':>11}{'dPIE/SIE':>9}"
        f"{'2 x NIE':>12}{'ratio':>7}{'PJAFFE':>12}{'ratio':>7}"
    )
    for name, t_d, t_s, t_n, t_p in run_members(max(3, args.repeat // 3)):
        print(
            f"{name:<12}{t_d * 1e3:>8.2f} ms{t_s * 1e3:>8.2f} ms{t_d / t_s:>9.2f}"
            f"{t_n * 1e3:>9.1f} ms{t_n / t_d:>6.1f}x{t_p * 1e3:>9.1f} ms{t_p / t_d:>6.1f}x"
        )
    pair_ns = ns_per_pair(max(3, args.repeat // 3))
    print(f"\nSIE deflection kernel: {pair_ns:.2f} ns per pixel-member pair (1 thread, CPU time)")
    if failed and args.check:
        print("below the floor: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
